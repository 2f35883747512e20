"""Real pretrained CIFAR-10 networks from ../shared/data/cifar10, through the user-factory path with
--weights, on the 10,000 real test images. Skipped when that folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.outputs.metrics_json import invariant_violations

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
pytestmark = pytest.mark.skipif(not (CIFAR / "weights").is_dir(), reason=f"{CIFAR} is absent")

#: Top-1 on all 10,000 JPEGs, from that folder's README.
PUBLISHED = {"resnet20": 0.8103, "tiny10": 0.7802}


def test_compare_real_cifar10_networks(tmp_path: Path, runner: CliRunner) -> None:
    out = tmp_path / "cifar"
    result = runner.invoke(app, [
        "compare",
        "--model", f"{CIFAR / 'models.py'}:resnet20", "--weights", str(CIFAR / "weights" / "resnet20.th"),
        "--model", f"{CIFAR / 'models.py'}:tiny10", "--weights", str(CIFAR / "weights" / "tiny10_seed0.pt"),
        "--data", f"imagefolder:{CIFAR / 'images'}", "--val-fraction", "0.5",
        "--out", str(out), "--solver", "lstsq,refine", "--n-boot", "200", "--no-similarity", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["val_size"] == 5000 and metrics["dataset"]["num_classes"] == 10
    assert invariant_violations(metrics) == []
    for name, model in metrics["models"].items():
        published = next(v for k, v in PUBLISHED.items() if name.endswith(k))
        # Half of the same 10,000 images: within 2 points of the published figure on all of them.
        assert abs(model["val_accuracy"] - published) < 0.02, (name, model["val_accuracy"])
    for pair in metrics["pairs"]:
        assert pair["mapped_accuracy"] > 0.6  # a real swap, far above chance (0.1)
