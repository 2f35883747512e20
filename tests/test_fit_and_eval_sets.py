"""Fitting images and evaluation sets apart (--fit-data, --eval-data), end to end: the digits written as real
image files, unlabelled for fitting and in class folders for evaluating, plus a blurred copy as a second
evaluation set; through `compare`, the step-by-step commands and the Python API."""

from __future__ import annotations

import json
import os
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
    digits) and `blurred/<digit>/NNNN.png` (the same, blurred; again as `copy/test/`): the very pixels `--data
    digits` reads."""
    root = tmp_path_factory.mktemp("digit-files")
    fit, val = digits_parts
    for i in range(len(fit.ids)):
        path = root / "fit" / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fit.load(i).save(path)
    for i, label in enumerate(val.labels):
        # copy/test/ is the blurred copy again, in a folder of the same name as test/ with the same file names.
        for name in ("test", "blurred", "copy/test"):
            path = root / name / str(label) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image = val.load(i)
            (image if name == "test" else image.filter(ImageFilter.GaussianBlur(0.8))).save(path)
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
    assert store.collections(role="fit") == ["fit"] and sorted(store.collections(role="eval")) == ["blurred", "test"]
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
    assert list(by_set(tmp_path / "step")) == list(expected)  # the sets in the order they were given
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


def quick(runner: CliRunner, weights: dict[str, Path], *args: str) -> Any:
    return runner.invoke(app, ["compare", *model_args(weights), "--solver", "lstsq", "--n-boot", "20",
                               "--no-similarity", "--quiet", *args])  # fmt: skip


def test_a_blurred_copy_under_the_same_names_is_another_set_and_another_collection(
    compared: Path, digit_files: Path, trained_weights: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    # copy/test/ has test/'s folder name and file names but blurred pixels: it is a set of its own, never test's
    # features again.
    fit = ["--fit-data", f"images:{digit_files / 'fit'}"]
    both = [
        "--eval-data",
        f"imagefolder:{digit_files / 'test'}",
        "--eval-data",
        f"imagefolder:{digit_files / 'copy/test'}",
    ]
    result = quick(runner, trained_weights, *fit, *both, "--out", str(tmp_path / "two"))
    assert result.exit_code == 0, result.output
    sets = by_set(tmp_path / "two")
    assert list(sets) == ["test", "test-2"]
    assert counts(sets["test-2"])["models"] == counts(by_set(compared)["blurred"])["models"]
    assert counts(sets["test-2"])["models"] != counts(sets["test"])["models"]
    # A store that holds test/ under the name `test` refuses the blurred copy under that name.
    store = str(compared / "features.zarr")
    copy = ["--eval-data", f"imagefolder:{digit_files / 'copy/test'}"]
    result = quick(runner, trained_weights, *fit, *copy, "--store", store, "--out", str(tmp_path / "reuse"))
    assert result.exit_code == 2 and "holds features of other images under the same 540 ids" in result.output
    named = ["--eval-data", f"blurred-copy=imagefolder:{digit_files / 'copy/test'}"]
    result = quick(runner, trained_weights, *fit, *named, "--store", store, "--out", str(tmp_path / "named"))
    assert result.exit_code == 0, result.output


def test_evaluating_on_the_fitting_images_is_said_and_recorded(
    digit_files: Path, trained_weights: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    test = f"{digit_files / 'test'}"
    for fit_spec, eval_name in ((f"imagefolder:{test}", "test"), (f"images:{test}", "test-2")):
        out = tmp_path / eval_name
        result = quick(runner, trained_weights, "--fit-data", fit_spec, "--eval-data", f"imagefolder:{test}",
                       "--out", str(out))  # fmt: skip
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["dataset"]["name"] == eval_name and metrics["dataset"]["fit_overlap"] == 540
        assert "**Not held out:** 540 of these 540 images" in (out / "report.md").read_text()
    result = runner.invoke(app, ["compare", *model_args(trained_weights), "--fit-data", f"images:{digit_files / 'fit'}",
                                 "--eval-data", f"imagefolder:{test}", "--solver", "lstsq", "--no-similarity",
                                 "--n-boot", "20", "--out", str(tmp_path / "apart")])  # fmt: skip
    assert json.loads((tmp_path / "apart" / "metrics.json").read_text())["dataset"]["fit_overlap"] == 0


def test_a_second_run_in_the_same_directory_leaves_no_stale_results(
    digit_files: Path, trained_weights: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    fit = ["--fit-data", f"images:{digit_files / 'fit'}", "--eval-data", f"imagefolder:{digit_files / 'test'}"]
    result = quick(runner, trained_weights, *fit, "--eval-data", f"imagefolder:{digit_files / 'blurred'}", "--out",
                   str(out))  # fmt: skip
    assert result.exit_code == 0 and (out / "predictions_blurred.parquet").is_file()
    assert any(p.name.startswith("blurred_") for p in (out / "figures").iterdir())
    # A run that fails after claiming OUT (the second network refuses the first's weights) leaves them whole.
    wrong = ["--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
             "--model", "tiny-inception", "--weights", str(trained_weights["tiny-resnet"])]  # fmt: skip
    result = runner.invoke(app, ["compare", *wrong, *fit, "--quiet", "--out", str(out)])
    assert result.exit_code == 2 and result.output.startswith("error:"), result.output
    assert (out / "predictions_blurred.parquet").is_file() and (out / "report.md").is_file()
    (out / "figures" / "mine.png").write_bytes(b"a user's own file")
    os.utime(out / "figures" / "mine.png", (1, 1))  # written before the second run, as a user's file would be
    result = quick(runner, trained_weights, *fit, "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert "predictions_blurred.parquet" not in names and "predictions.parquet" in names
    assert not any(p.name.startswith("blurred_") for p in (out / "figures").iterdir())
    assert (out / "figures" / "mine.png").read_bytes() == b"a user's own file"
    assert (out / "features.zarr").is_dir()  # the store stays


def test_data_named_explicitly_names_both_parts(digit_files: Path, runner: CliRunner, tmp_path: Path) -> None:
    data = f"digs=imagefolder:{digit_files / 'test'}"
    result = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", data, "--val-fraction", "0.5",
                                 "--store", str(tmp_path / "s.zarr"), "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert FeatureStore.open(tmp_path / "s.zarr").collections() == ["digs-train", "digs-val"]
