"""An extraction killed with SIGKILL resumes from its finished chunks and ends identical to an
uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.store import FeatureStore

CONFIG = json.dumps({"input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})


def extract_args(store: Path, weights: Path) -> list[str]:
    return ["extract", "--model", "timm:resnet18", "--weights", str(weights), "--data-config", CONFIG,
            "--data", "digits", "--split", "train", "--store", str(store), "--chunk-rows", "64", "--quiet"]  # fmt: skip


def test_sigkill_then_resume(tmp_path: Path, runner: CliRunner) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pt"
    torch.save(
        load_backbone("timm:resnet18", num_classes=10, data_config=json.loads(CONFIG)).module.state_dict(), weights
    )
    killed = tmp_path / "killed.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "featswap.cli", *extract_args(killed, weights)], env=env)
    try:
        deadline = time.monotonic() + 120
        done = np.zeros(0, dtype=bool)
        while time.monotonic() < deadline and process.poll() is None:
            if (killed / "zarr.json").is_file():
                try:
                    done = FeatureStore.open(killed).done_chunks("train", "resnet18")
                except Exception:  # the writer may be mid-way through creating arrays
                    done = np.zeros(0, dtype=bool)
                if done.sum() >= 3:
                    break
            time.sleep(0.05)
        assert process.poll() is None, "the extraction finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    finished_before = FeatureStore.open(killed).done_chunks("train", "resnet18")
    assert 3 <= finished_before.sum() < len(finished_before)

    result = runner.invoke(app, extract_args(killed, weights))  # takes over the dead writer's lock
    assert result.exit_code == 0, result.output
    recomputed = 1257 - 64 * int(finished_before.sum())
    assert f"1257 rows ({recomputed} computed)" in result.output

    whole = tmp_path / "whole.zarr"
    assert runner.invoke(app, extract_args(whole, weights)).exit_code == 0
    resumed = FeatureStore.open(killed).features("train", "resnet18")
    np.testing.assert_allclose(resumed, FeatureStore.open(whole).features("train", "resnet18"), rtol=1e-6, atol=1e-6)
