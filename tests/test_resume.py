"""An extraction killed with SIGKILL resumes from its finished chunks and ends identical to an
uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.store import FeatureStore
from killing import extract_until_killed

CONFIG = json.dumps({"input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})


def extract_args(store: Path, weights: Path) -> list[str]:
    return ["extract", "--model", "timm:resnet18", "--weights", str(weights), "--data-config", CONFIG,
            "--data", "digits", "--part", "fit", "--store", str(store), "--chunk-rows", "64", "--quiet"]  # fmt: skip


def test_sigkill_then_resume(tmp_path: Path, runner: CliRunner) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pt"
    torch.save(
        load_backbone("timm:resnet18", num_classes=10, data_config=json.loads(CONFIG)).module.state_dict(), weights
    )
    killed = tmp_path / "killed.zarr"
    finished_before = extract_until_killed(extract_args(killed, weights), killed, "resnet18", "train")

    result = runner.invoke(app, extract_args(killed, weights))  # takes over the dead writer's lock
    assert result.exit_code == 0, result.output
    recomputed = 1257 - 64 * int(finished_before.sum())
    assert f"1257 rows ({recomputed} computed)" in result.output

    whole = tmp_path / "whole.zarr"
    assert runner.invoke(app, extract_args(whole, weights)).exit_code == 0
    resumed = FeatureStore.open(killed).features("train", "resnet18")
    np.testing.assert_allclose(resumed, FeatureStore.open(whole).features("train", "resnet18"), rtol=1e-6, atol=1e-6)
