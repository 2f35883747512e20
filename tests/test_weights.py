"""Weight files the tests write themselves: safetensors, nested and DataParallel checkpoints, pickles."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from featswap.backbones.checkpoints import load_into, sha256
from featswap.backbones.sources import build_module, load_backbone
from featswap.errors import ModelError


def state(seed: int = 1) -> dict[str, torch.Tensor]:
    return build_module("tiny-resnet", seed=seed).state_dict()


def assert_loaded(path: Path) -> None:
    backbone = load_backbone("tiny-resnet", path)
    torch.testing.assert_close(backbone.module.state_dict()["head.weight"], state()["head.weight"])
    assert backbone.weights_sha256 == sha256(path)


def test_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state().items()}, str(path))
    assert_loaded(path)


@pytest.mark.parametrize("layout", ["bare", "state_dict", "model", "dataparallel"])
def test_pytorch_checkpoint_layouts(tmp_path: Path, layout: str) -> None:
    weights = state()
    if layout == "dataparallel":
        obj: object = {"state_dict": {f"module.{k}": v for k, v in weights.items()}, "best_prec1": 91.0}
    elif layout == "bare":
        obj = weights
    else:
        obj = {layout: weights, "epoch": 3}
    path = tmp_path / "w.pt"
    torch.save(obj, path)
    assert_loaded(path)


class Callback:
    """Any class: unpickling it would run code from the file, which weights_only refuses."""


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": state(), "callback": Callback()}, path)
    with pytest.raises(ModelError, match="refuses for safety"):
        load_backbone("tiny-resnet", path)


def test_missing_unexpected_and_misshapen_keys_are_listed(tmp_path: Path) -> None:
    weights = state()
    del weights["head.bias"]
    weights["extra.weight"] = torch.zeros(1)
    weights["stem.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "w.pt"
    torch.save(weights, path)
    with pytest.raises(ModelError, match=r"missing keys \[head.bias\].*unexpected keys \[extra.weight\].*wrong shapes"):
        load_into(build_module("tiny-resnet"), path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_backbone("tiny-resnet", tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        load_backbone("tiny-resnet", junk)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="not a readable safetensors"):
        load_backbone("tiny-resnet", bad)
    empty = tmp_path / "empty.pt"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(ModelError, match="holds no state dict"):
        load_backbone("tiny-resnet", empty)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    torch.save(state(), path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        load_backbone("tiny-resnet", path)


def test_old_checkpoints_without_batchnorm_counters_and_with_tensor_metadata(tmp_path: Path) -> None:
    weights = {k: v for k, v in state().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.th"
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}, "best_prec1": torch.tensor(91.7)}, path)
    assert_loaded(path)


def test_cli_error_lists_keys_in_brackets(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from featswap.cli import app

    weights = state()
    del weights["head.bias"]
    path = tmp_path / "w.pt"
    torch.save(weights, path)
    result = CliRunner().invoke(
        app,
        [
            "extract",
            "--model",
            "tiny-resnet",
            "--weights",
            str(path),
            "--data",
            "digits",
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 2 and "missing keys [head.bias]" in " ".join(result.output.split())
