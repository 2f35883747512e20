"""Fitting images and evaluation sets apart (--fit-data, --eval-data), end to end: the digits written as real
image files, unlabelled for fitting and in class folders for evaluating, plus a blurred copy as a second
evaluation set; through `compare`, the step-by-step commands and the Python API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

import featswap
from featswap.cli import app
from featswap.data.collections import Collection
from featswap.outputs.metrics_json import evaluation_sets, invariant_violations
from featswap.store import FeatureStore
from runs import assert_same, compare_on_store

MODELS = ("tiny-resnet", "tiny-inception")


def run(runner: CliRunner, *args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory: pytest.TempPathFactory, digits_parts: tuple[Collection, Collection]) -> Path:
    """`fit/NNNN.png` (the 1,257 fitting digits, no labels), `test/<digit>/NNNN.png` (the 540 evaluation
    digits) and `blurred/<digit>/NNNN.png` (the same, blurred): the very pixels `--data digits` reads."""
    root = tmp_path_factory.mktemp("digit-files")
    fit, val = digits_parts
    for i in range(len(fit.ids)):
        path = root / "fit" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fit.load(i).save(path)
    for i, label in enumerate(val.labels):
        for name in ("test", "blurred"):
            path = root / name / str(label) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = val.load(i)
            (image.filter(ImageFilter.GaussianBlur(0.8)) if name == "blurred" else image).save(path)
    return root


def data_args(root: Path) -> list[str]:
    return ["--fit-data", f"images:{root / 'fit'}", "--eval-data", f"imagefolder:{root / 'test'}",
            "--eval-data", f"blurred=imagefolder:{root / 'blurred'}"]  # fmt: skip


def model_args(weights: dict[str, Path]) -> list[str]:
    return [a for m in MODELS for a in ("--model", m, "--weights", str(weights[m]))]


@pytest.fixture(scope="module")
def compared(
    tmp_path_factory: pytest.TempPathFactory, digit_files: Path, trained_weights: dict[str, Path], runner: CliRunner
) -> Path:
    out = tmp_path_factory.mktemp("sets") / "compare"
    run(runner, "compare", *model_args(trained_weights), *data_args(digit_files), "--solver", "lstsq",
        "--n-boot", "100", "--out", str(out), "--quiet")  # fmt: skip
    return out


def by_set(out: Path) -> dict[str, Any]:
    return {e["dataset"]["name"]: e for e in evaluation_sets(json.loads((out / "metrics.json").read_text()))}


def counts(entry: dict[str, Any]) -> dict[str, Any]:
    """What does not depend on the order of the images: every count, per model and per map."""
    keys = ("mapped_correct", "native_correct", "total", "fixed", "broken", "venn")
    return {
        "models": {name: m["val_correct"] for name, m in entry["models"].items()},
        "pairs": {f"{p['source']}->{p['target']}": {k: p[k] for k in keys} for p in entry["pairs"]},
    }


def test_each_evaluation_set_has_its_entry_table_and_predictions(compared: Path) -> None:
    metrics = json.loads((compared / "metrics.json").read_text())
    sets = by_set(compared)
    assert list(sets) == ["test", "blurred"] and len(metrics["evaluations"]) == 2
    for name, entry in sets.items():
        assert invariant_violations(entry) == []
        assert entry["dataset"]["fit_collection"] == "fit" and entry["dataset"]["train_size"] == 1257
        assert entry["dataset"]["val_size"] == 540 and (compared / f"predictions_{name}.parquet").is_file()
    # Blurring costs the networks accuracy: the second set is a different set, not the first one again.
    for model in sets["test"]["models"]:
        assert sets["blurred"]["models"][model]["val_correct"] < sets["test"]["models"][model]["val_correct"]
    report = (compared / "report.md").read_text()
    assert report.index("## Evaluation set `test`") < report.index("## Evaluation set `blurred`")
    assert report.count("### Table 1 — solver `lstsq`, closed form") == 2
    store = FeatureStore.open(compared / "features.zarr")
    assert store.collections("fit") == ["fit"] and sorted(store.collections("eval")) == ["blurred", "test"]
    assert not store.labelled("fit") and store.labelled("test")


def test_the_same_images_as_files_give_the_counts_of_data_digits(
    compared: Path, digits_store: Path, tmp_path: Path
) -> None:
    # Fitting on unlabelled files and evaluating on class folders sees the pixels `--data digits` sees, in
    # another order: every count is the same (intervals resample in image order, so they may differ).
    from_digits = compare_on_store(digits_store, tmp_path / "digits", names=list(MODELS))
    assert counts(by_set(compared)["test"]) == counts(from_digits)


def test_step_by_step_and_python_api_give_the_numbers_of_compare(
    compared: Path, digit_files: Path, trained_weights: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    store = tmp_path / "step.zarr"
    run(runner, "extract", *model_args(trained_weights), *data_args(digit_files), "--store", str(store), "--quiet")
    maps = []
    for source, target in (MODELS, MODELS[::-1]):
        path = tmp_path / f"{source}-{target}.safetensors"
        run(runner, "fit", "--store", str(store), "--source", source, "--target", target, "--solver", "lstsq",
            "--out", str(path))  # fmt: skip
        maps += ["--maps", str(path)]
    run(runner, "evaluate", "--store", str(store), *maps, "--n-boot", "100", "--out", str(tmp_path / "step"))
    expected = by_set(compared)
    for name, entry in by_set(tmp_path / "step").items():
        entry["pairs"].sort(key=lambda p: (MODELS.index(p["source"]), MODELS.index(p["target"])))
        expected[name]["pairs"].sort(key=lambda p: (MODELS.index(p["source"]), MODELS.index(p["target"])))
        for part in ("models", "pairs", "loss_matrix"):
            assert_same(entry[part], expected[name][part], f"{name}.{part}")
    # The run repeats from its config, in Python, with equal numbers.
    again = featswap.run(featswap.RunConfig.build(compared / "config.toml").with_(out=str(tmp_path / "again")))
    assert_same(again, json.loads((compared / "metrics.json").read_text()))


def test_unlabelled_images_cannot_be_evaluated(digit_files: Path, runner: CliRunner, tmp_path: Path) -> None:
    args = ["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--fit-data",
            f"imagefolder:{digit_files / 'test'}", "--eval-data", f"images:{digit_files / 'fit'}"]  # fmt: skip
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "error:" in result.output and "unlabelled" in result.output.lower()
    assert not (tmp_path / "x").exists()


def test_a_digit_file_is_the_pixels_of_the_digit(
    digit_files: Path, digits_parts: tuple[Collection, Collection]
) -> None:
    # The fixture's premise, checked: PNG keeps 8-bit grayscale pixels exactly.
    fit = digits_parts[0]
    assert Image.open(digit_files / "fit" / "0007.png").tobytes() == fit.load(7).tobytes()
