"""Loading weight files safely: safetensors, or PyTorch checkpoints with `weights_only=True` only."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.errors import ModelError, few

NESTED_KEYS = ("state_dict", "model", "model_state_dict", "module")


def sha256(path: Path) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weight file as a flat state dict.

    Accepts safetensors, and PyTorch checkpoints that load with `weights_only=True` (refusing arbitrary
    pickles); a state dict nested under `state_dict`/`model`, and keys prefixed `module.` (DataParallel).
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"Weight file {str(path)!r} does not exist.")
    if not path.is_file():
        raise ModelError(f"Weight file {str(path)!r} is not a file; give the path of a .safetensors or .pt file.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as err:
            raise ModelError(f"{path} is not a readable safetensors file: {err}") from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on pickle protocols says nothing a user can act on
            loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message suggests weights_only=False, which would run whatever code the file holds.
        if "unsupported global" in str(err).lower():  # a pickled object: a whole model, an optimizer, ...
            raise ModelError(
                f"{path} is not a plain-weights checkpoint: it holds Python objects that only unpickling with "
                "arbitrary code could restore, which featswap refuses for safety. Re-save it as a state dict "
                "(torch.save(model.state_dict(), ...)) or as safetensors."
            ) from err
        raise ModelError(
            f"{path} is not a readable PyTorch checkpoint or safetensors file (a plain pickle, or another format). "
            "featswap reads safetensors and checkpoints saved with torch.save(model.state_dict(), ...)."
        ) from err
    except Exception as err:
        raise ModelError(
            f"{path} is not a readable PyTorch checkpoint or safetensors file: {_first_line(err)}"
        ) from err
    return _flatten(loaded, path)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _flatten(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(loaded, Mapping):
        # Descend into e.g. {"state_dict": {...}, "best_prec1": tensor(91.7)}: the nested mapping holds the weights.
        nested = next((k for k in NESTED_KEYS if _holds_tensors(loaded.get(k))), None)
        if nested is None:
            break
        loaded = loaded[nested]
    if not isinstance(loaded, Mapping) or not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelError(f"{path} holds no state dict (a mapping of names to tensors).")
    state = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _holds_tensors(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, torch.Tensor | Mapping) for v in value.values())


def load_into(module: nn.Module, path: str | Path) -> str:
    """Load a weight file into `module` strictly; returns the file's sha256.

    Missing or unexpected keys, shape mismatches and NaN/inf values are an error that names them.
    """
    state = read_state_dict(path)
    broken = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:
        raise ModelError(
            f"{path} holds NaN or inf in {few(broken)}; the weight file is damaged or was saved mid-divergence."
        )
    expected = module.state_dict()
    # Checkpoints saved before PyTorch 0.4.1 lack BatchNorm's step counter, which evaluation never reads.
    for key in set(expected) - set(state):
        if key.endswith("num_batches_tracked"):
            state[key] = expected[key]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {few(unexpected)}")
        if wrong:
            parts.append(
                "wrong shapes " + few([f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong])
            )
        raise ModelError(
            f"{path} does not fit the model: {'; '.join(parts)}. Is it the right file for this architecture?"
        )
    module.load_state_dict(state, strict=True)
    return sha256(Path(path))
