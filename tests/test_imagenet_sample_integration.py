"""Real ImageNet-1k networks on real ImageNet photos from ../shared/data/imagenet-sample: TF-slim's MobileNet-v1
(1001-output head, background at index 0) and MobileNet-v2 (1000), through the user-factory path with --weights;
maps fitted on the unlabelled photos, evaluated on the 1,000 labelled ones (synset folders, `imagenet:DIR`).
Skipped when that folder is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.outputs.metrics_json import invariant_violations

KIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
pytestmark = pytest.mark.skipif(not (KIT / "weights").is_dir(), reason=f"{KIT} is absent")

#: Images whose prediction may differ from the kit README's figures, which its own preprocessing code measured
#: (featswap's resize and crop need not round alike; MobileNet-v2 gets 875 here against the README's 876).
TOLERANCE = 3


def published() -> dict[str, int]:
    """Top-1 counts on `images/` from the kit's README table (`| mobilenet_v1 ... | 87.4% (874 of 1,000) |`)."""
    text = (KIT / "README.md").read_text()
    return {m: int(n) for m, n in re.findall(r"\| `(mobilenet_v\d)`[^|\n]*\| [\d.]+% \((\d+) of 1,000\) \|", text)}


def test_the_two_mobilenets_fitted_on_unlabelled_photos_and_evaluated_on_labelled_ones(
    runner: CliRunner, tmp_path: Path
) -> None:
    counts = published()
    assert set(counts) == {"mobilenet_v1", "mobilenet_v2"}, counts
    models = [
        "--model", f"{KIT / 'models.py'}:mobilenet_v1", "--weights", str(KIT / "weights/mobilenet_v1_1001.safetensors"),
        "--model", f"{KIT / 'models.py'}:mobilenet_v2", "--weights", str(KIT / "weights/mobilenet_v2_1000.safetensors"),
    ]  # fmt: skip
    result = runner.invoke(
        app,
        ["compare", *models, "--fit-data", f"images:{KIT / 'unlabelled'}", "--eval-data", f"imagenet:{KIT / 'images'}",
         "--train-limit", "500", "--solver", "lstsq", "--batch-size", "50", "--n-boot", "200",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mobilenet_v1: its head has 1001 outputs; output 0 (TF-slim's background) left out" in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert invariant_violations(metrics) == []
    assert metrics["dataset"]["val_size"] == 1000 and metrics["dataset"]["train_size"] == 500
    assert "scored_classes" not in metrics["dataset"]  # every one of the 1,000 classes is present
    for name, count in counts.items():
        assert abs(metrics["models"][name]["val_correct"] - count) <= TOLERANCE, (name, metrics["models"][name])
    for pair in metrics["pairs"]:
        # 500 fitting images < 1,025 and 1,281 parameters per output: ridge chosen on held-out fitting images.
        assert pair["fit"]["underdetermined"] and not pair["fit"]["interpolates"] and pair["fit"]["alpha"] > 0
        assert pair["mapped_accuracy"] > 0.2, pair  # chance is 0.001
    report = (tmp_path / "run" / "report.md").read_text()
    assert "fitted on N = 500 images, fewer than D + 1 = 1,025 (its source's features + 1); ridge strength" in report
