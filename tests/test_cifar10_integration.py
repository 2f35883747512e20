"""Real pretrained CIFAR-10 networks from ../shared/data/cifar10, through the user-factory path with
--weights, on the 10,000 real test images: maps fitted on half of them as unlabelled files, evaluated on the
other half and on a blurred copy of it. Skipped when that folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from featswap.cli import app
from featswap.outputs.metrics_json import evaluation_sets, invariant_violations

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
pytestmark = pytest.mark.skipif(not (CIFAR / "weights").is_dir(), reason=f"{CIFAR} is absent")

#: Top-1 on all 10,000 JPEGs, from that folder's README.
PUBLISHED = {"resnet20": 0.8103, "tiny10": 0.7802}


def halves(root: Path) -> Path:
    """The README's worked example: even images of each class as unlabelled `fit/` files, odd ones as
    `test/<class>/` and, blurred, as `blurred/<class>/`."""
    for folder in sorted(p for p in (CIFAR / "images").iterdir() if p.is_dir()):
        for k, path in enumerate(sorted(folder.glob("*.jpg"))):
            if k % 2 == 0:
                (root / "fit").mkdir(parents=True, exist_ok=True)
                (root / "fit" / f"{folder.name}-{path.name}").write_bytes(path.read_bytes())
                continue
            for name in ("test", "blurred"):
                (root / name / folder.name).mkdir(parents=True, exist_ok=True)
            (root / "test" / folder.name / path.name).write_bytes(path.read_bytes())
            blurred = Image.open(path).filter(ImageFilter.GaussianBlur(1))
            blurred.save(root / "blurred" / folder.name / path.name, quality=95)
    return root


def test_compare_real_cifar10_networks_fitted_on_unlabelled_images(tmp_path: Path, runner: CliRunner) -> None:
    data = halves(tmp_path / "halves")
    out = tmp_path / "cifar"
    result = runner.invoke(app, [
        "compare",
        "--model", f"{CIFAR / 'models.py'}:resnet20", "--weights", str(CIFAR / "weights" / "resnet20.th"),
        "--model", f"{CIFAR / 'models.py'}:tiny10", "--weights", str(CIFAR / "weights" / "tiny10_seed0.pt"),
        "--fit-data", f"images:{data / 'fit'}", "--eval-data", f"imagefolder:{data / 'test'}",
        "--eval-data", f"imagefolder:{data / 'blurred'}",
        "--out", str(out), "--solver", "lstsq,refine", "--n-boot", "200", "--no-similarity", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    sets = {e["dataset"]["name"]: e for e in evaluation_sets(json.loads((out / "metrics.json").read_text()))}
    assert list(sets) == ["test", "blurred"]
    for entry in sets.values():
        assert entry["dataset"]["val_size"] == 5000 and entry["dataset"]["num_classes"] == 10
        assert entry["dataset"]["train_size"] == 5000 and invariant_violations(entry) == []
    for name, model in sets["test"]["models"].items():
        published = next(v for k, v in PUBLISHED.items() if name.endswith(k))
        # Half of the same 10,000 images: within 2 points of the published figure on all of them.
        assert abs(model["val_accuracy"] - published) < 0.02, (name, model["val_accuracy"])
        assert sets["blurred"]["models"][name]["val_accuracy"] < model["val_accuracy"] - 0.2  # blur hurts at 32x32
    for pair in sets["test"]["pairs"]:
        assert pair["mapped_accuracy"] > 0.6  # a real swap, far above chance (0.1)


def linked_parts(root: Path, per_class: int) -> tuple[Path, Path]:
    """Links to the first `per_class` images of each class as unlabelled `fit/` files, and to the next
    `per_class` as `test/<class>/`."""
    for folder in sorted(p for p in (CIFAR / "images").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        (root / "fit").mkdir(parents=True, exist_ok=True)
        (root / "test" / folder.name).mkdir(parents=True)
        for path in files[:per_class]:
            (root / "fit" / f"{folder.name}-{path.name}").symlink_to(path)
        for path in files[per_class : 2 * per_class]:
            (root / "test" / folder.name / path.name).symlink_to(path)
    return root / "fit", root / "test"


def test_stitch_real_cifar10_networks_at_their_last_stages(tmp_path: Path, runner: CliRunner) -> None:
    fit, test = linked_parts(tmp_path / "parts", 100)
    args = [
        "stitch",
        "--model", f"{CIFAR / 'models.py'}:resnet20", "--weights", str(CIFAR / "weights" / "resnet20.th"),
        "--model", f"{CIFAR / 'models.py'}:tiny10", "--weights", str(CIFAR / "weights" / "tiny10_seed0.pt"),
        "--fit-data", f"images:{fit}", "--eval-data", f"imagefolder:{test}",
        "--layers", "layer3:bn8", "--layers", "@pooled:@pooled", "--out", str(tmp_path / "st"), "--quiet",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "st" / "metrics.json").read_text())
    for name, published in PUBLISHED.items():
        assert abs(metrics["models"][name]["val_accuracy"] - published) < 0.05, name
    assert metrics["layers"]["resnet20"]["layer3"]["shape"] == [64, 8, 8]
    assert metrics["layers"]["tiny10"]["bn8"]["shape"] == [64, 2, 2]
    assert invariant_violations(metrics) == []
    for p in metrics["pairs"]:
        # Far above chance (10%) at the last stage and at the pooled features, in both directions.
        assert p["mapped_accuracy"] > 0.5, (p["source"], p["source_layer"], p["mapped_accuracy"])
        assert (p["resampled"] is not None) == (p["source_layer"] in ("layer3", "bn8"))
