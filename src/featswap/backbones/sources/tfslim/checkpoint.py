"""Google's TF-slim checkpoints (a V1 single file such as `resnet_v2_152.ckpt`, or V2's `.index` + `.data-*`)
read with TensorFlow (the optional extra `featswap[tf]`, imported only here) and mapped onto the torch modules.

A module's state-dict key is the TF variable's name below the network's scope with `/` as `.` (see `ops.py`);
`tf_variable` of each network adds what the torch path leaves out (`bottleneck_v2`, `Logits/Logits`). Every
variable the network needs must be there with its shape; variables it does not need are accepted only when they
are training state (`global_step`, optimizer scalars, slots under a used variable such as
`.../weights/ExponentialMovingAverage` or `.../Momentum`) or `AuxLogits`; anything else is named in the error.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from featswap.errors import ModelError, few

#: The last 8 bytes of a V1 checkpoint (a TensorSliceReader table): LevelDB's table magic, little-endian.
V1_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")
TORCH_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
DATA_SHARD = re.compile(r"\.data-\d+-of-\d+$")

INSTALL_HINT = (
    "install the extra (pip install 'featswap[tf]') or give a file converted where TensorFlow is installed "
    "(featswap convert --model SPEC --weights CKPT --out FILE.safetensors)"
)


@dataclass(frozen=True)
class CheckpointFiles:
    """A TF checkpoint: `prefix` as TF reads it, `files` its files on disk, `version` 1 or 2."""

    prefix: Path
    files: tuple[Path, ...]
    version: int

    def sha256(self) -> str:
        """One digest over every file of the checkpoint, in name order."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.name.encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def is_v1(path: Path) -> bool:
    """A file ending in LevelDB's table magic (TF's V1 checkpoint format)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 48:
                return False
            f.seek(-8, os.SEEK_END)
            return f.read(8) == V1_MAGIC
    except OSError:
        return False


def find_checkpoint(path: Path) -> CheckpointFiles | None:
    """The TF checkpoint that `path` names (a V2 prefix, its `.index` or a `.data-*` shard, a V1 file, or a folder
    holding exactly one checkpoint), or None when `path` is not a TF checkpoint."""
    if path.suffix in TORCH_SUFFIXES:
        return None
    if path.suffix == ".index":
        path = path.with_suffix("")
    elif DATA_SHARD.search(path.name):
        path = path.with_name(DATA_SHARD.sub("", path.name))
    index = path.with_name(path.name + ".index")
    if index.is_file():
        shards = sorted(path.parent.glob(f"{path.name}.data-*"))
        return CheckpointFiles(path, (index, *shards), 2)
    if path.is_file() and is_v1(path):
        return CheckpointFiles(path, (path,), 1)
    if path.is_dir():
        found = sorted(
            {*(p.with_suffix("") for p in path.glob("*.index")), *(p for p in path.glob("*.ckpt") if is_v1(p))}
        )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise ModelError(f"{path} holds several TF checkpoints ({names}); give one of them as --weights.")
        if found:
            return find_checkpoint(found[0])
    return None


def read_variables(files: CheckpointFiles) -> tuple[dict[str, tuple[int, ...]], Callable[[str], np.ndarray]]:
    """The checkpoint's variables `{name: shape}` and a reader `name -> array`, through TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from tensorflow.python.training import py_checkpoint_reader
    except ImportError as err:
        raise ModelError(f"Reading the TensorFlow checkpoint {files.prefix} needs TensorFlow: {INSTALL_HINT}.") from err
    try:
        reader = py_checkpoint_reader.NewCheckpointReader(str(files.prefix))
    except Exception as err:  # TF raises its own error types (DataLossError, NotFoundError...)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelError(f"{files.prefix} is not a readable TensorFlow checkpoint: {first}") from err
    shapes = {str(k): tuple(int(d) for d in v) for k, v in reader.get_variable_to_shape_map().items()}
    return shapes, lambda name: np.asarray(reader.get_tensor(name))


def to_torch(value: np.ndarray, like: torch.Tensor) -> torch.Tensor | None:
    """A TF variable in torch's layout, or None when its shape cannot be `like`'s: a kernel `(kh, kw, in, out)`
    -> `(out, in, kh, kw)`; a dense kernel `(D, C)` or a 1x1 convolution's `(1, 1, D, C)` -> `(C, D)`."""
    if like.ndim == 4 and value.ndim == 4:
        value = value.transpose(3, 2, 0, 1)
    elif like.ndim == 2 and value.ndim in (2, 4) and value.shape[:-2] in ((), (1, 1)):
        value = value.reshape(value.shape[-2:]).T
    if tuple(value.shape) != tuple(like.shape):
        return None
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def tf_shape(like: torch.Tensor, stored: tuple[int, ...]) -> str:
    """The shape TF-slim stores for a torch tensor, for messages: a dense kernel as `(D, C)`, or `(1, 1, D, C)`
    where the checkpoint holds a 1x1 convolution (ResNet-v2's `logits`, Inception-v3's `Conv2d_1c_1x1`)."""
    shape = tuple(like.shape)
    if like.ndim == 4:
        shape = (shape[2], shape[3], shape[1], shape[0])
    elif like.ndim == 2:
        shape = (1, 1, shape[1], shape[0]) if len(stored) == 4 else (shape[1], shape[0])
    return str(shape)


def is_training_state(name: str, scope: str, used: set[str]) -> bool:
    """Variables a network's forward pass never reads: training counters and optimizer scalars outside the
    network's scope, slots under a variable it uses (moving averages, momenta), the auxiliary head."""
    if not name.startswith(f"{scope}/"):
        return "/" not in name  # global_step, beta1_power, ...
    return name.startswith(f"{scope}/AuxLogits/") or any(name.startswith(f"{u}/") for u in _parents(name) if u in used)


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(2, len(parts))]


def load_checkpoint(module: nn.Module, files: CheckpointFiles, spec: str, tf_variable: Callable[[str], str]) -> str:
    """Copy a TF checkpoint into `module` (whose state-dict key `k` is TF's `tf_variable(k)`); returns its sha256.

    Refuses, naming them: variables missing or of the wrong shape, variables neither used nor training state,
    and NaN/inf values."""
    scope = tf_variable("").split("/")[0]
    shapes, get = read_variables(files)
    expected = module.state_dict()
    state: dict[str, torch.Tensor] = {}
    missing, misshapen, used = [], [], set()
    for key, like in expected.items():
        name = tf_variable(key)
        if name not in shapes:
            missing.append(name)
            continue
        used.add(name)
        value = to_torch(get(name), like)
        if value is None:
            misshapen.append(f"{name} {shapes[name]} (needs {tf_shape(like, shapes[name])})")
            continue
        state[key] = value
    unexpected = sorted(n for n in shapes if n not in used and not is_training_state(n, scope, used))
    if missing or misshapen or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {few(sorted(missing))}")
        if misshapen:
            parts.append(f"wrong shapes {few(sorted(misshapen))}")
        if unexpected:
            parts.append(f"not used by {spec} {few(unexpected)}")
        scopes = sorted({n.split("/")[0] for n in shapes if "/" in n})
        raise ModelError(
            f"{files.prefix} does not fit {spec}: {'; '.join(parts)}. It holds variables under "
            f"{', '.join(scopes) or 'no scope'}; is it the checkpoint of this network ({scope})?"
        )
    broken = sorted(tf_variable(k) for k, v in state.items() if not bool(torch.isfinite(v).all()))
    if broken:
        raise ModelError(f"{files.prefix} holds NaN or inf in {few(broken)}; the checkpoint is damaged.")
    module.load_state_dict(state, strict=True)
    return files.sha256()
