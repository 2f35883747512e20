"""Three models in one compare: the N x N loss matrix, the per-image table, and the report re-rendered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.evaluation.venn import venn_counts
from featswap.outputs.metrics_json import invariant_violations
from featswap.outputs.predictions import mapped_column, native_column, read_predictions, write_predictions

MODELS = ("tiny-resnet", "tiny-inception", "tiny-resnet-2")


@pytest.fixture(scope="module")
def three(trained_weights: dict[str, Path], third_weights: Path, tmp_path_factory: pytest.TempPathFactory,
          runner: CliRunner) -> Path:  # fmt: skip
    out = tmp_path_factory.mktemp("three") / "run"
    result = runner.invoke(app, [
        "compare", "--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
        "--model", "tiny-inception", "--weights", str(trained_weights["tiny-inception"]),
        "--model", "tiny-resnet", "--weights", str(third_weights),
        "--data", "digits", "--out", str(out), "--solver", "lstsq,refine", "--n-boot", "200", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_three_models_give_a_three_by_three_matrix_without_self_pairs(three: Path) -> None:
    metrics = json.loads((three / "metrics.json").read_text())
    assert set(metrics["models"]) == set(MODELS)
    assert invariant_violations(metrics) == []
    for solver in ("lstsq", "refine"):
        matrix = metrics["loss_matrix"][solver]
        assert set(matrix) == set(MODELS)
        for source, row in matrix.items():
            assert set(row) == set(MODELS) - {source}  # the diagonal is not claimed
    assert len(metrics["pairs"]) == 6 * 2
    assert (three / "figures" / "loss_matrix_refine.png").stat().st_size > 10_000
    assert "![loss matrix](figures/loss_matrix_lstsq.png)" in (three / "report.md").read_text()


def test_the_per_image_table_agrees_with_the_venn_counts(three: Path) -> None:
    metrics = json.loads((three / "metrics.json").read_text())
    table = read_predictions(three)
    assert len(table["id"]) == metrics["dataset"]["val_size"]
    assert len(table) == 2 + 3 + 12
    label = table["label"]
    for p in metrics["pairs"]:
        source_ok = table[native_column(p["source"])] == label
        target_ok = table[native_column(p["target"])] == label
        mapped_ok = table[mapped_column(p["source"], p["target"], p["solver"])] == label
        assert venn_counts(source_ok, target_ok, mapped_ok) == p["venn"]
        assert int((target_ok & ~mapped_ok).sum()) == p["broken"]
    for name, model in metrics["models"].items():
        assert int((table[native_column(name)] == label).sum()) == model["val_correct"]


def test_report_re_renders_from_saved_files_alone(three: Path, tmp_path: Path, runner: CliRunner) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("metrics.json", "fit_curves.json", "predictions.csv", "predictions.parquet"):
        if (three / name).is_file():
            shutil.copy(three / name, copy / name)
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.md").read_text() == (three / "report.md").read_text()
    assert sorted(p.name for p in (copy / "figures").iterdir()) == sorted(p.name for p in (three / "figures").iterdir())


def test_predictions_round_trip_as_csv_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    path = write_predictions(tmp_path, np.array(["a/1", "b,2"]), np.array([3, 4]), {"native:m": np.array([3, 1])})
    assert path.name == "predictions.csv"
    table = read_predictions(tmp_path)
    assert table["id"].tolist() == ["a/1", "b,2"] and table["native:m"].tolist() == [3, 1]
    assert read_predictions(tmp_path / "missing") == {}


def test_similarity_matrices_for_three_models(three: Path) -> None:
    from featswap.catalog.measures import MEASURES, default_measures

    metrics = json.loads((three / "metrics.json").read_text())
    similarity = metrics["similarity"]
    assert set(similarity) == set(default_measures())
    for measure in default_measures():
        symmetric = MEASURES.get(measure).symmetric
        for source in MODELS:
            row = similarity[measure][source]
            assert set(row) == set(MODELS) - {source}
            for target, value in row.items():
                assert np.isfinite(value)
                if symmetric:
                    assert value == similarity[measure][target][source]
    # Networks trained on the same digits are similar by every measure.
    assert min(similarity["linear_cka"]["tiny-resnet"].values()) > 0.5
    assert max(similarity["map_r2"]["tiny-resnet"].values()) > 0.5
    report = (three / "report.md").read_text()
    assert "## Similarity measures" in report and "Spearman" in report
    assert (three / "figures" / "similarity_debiased_cka.png").stat().st_size > 10_000
