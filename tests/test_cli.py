"""The command line, invoked in-process on real data, real networks and real stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from featswap.catalog.naming import unique_names
from featswap.cli import app
from featswap.errors import SpecError
from featswap.evaluation.stats import mcnemar_exact
from featswap.outputs.metrics_json import invariant_violations


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    clean = json.loads(json.dumps(metrics))
    for pair in clean["pairs"]:
        pair["fit"].pop("seconds")
    return clean


def test_demo_writes_the_contract(demo_run: tuple[Path, str, str]) -> None:
    out, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {
        "featswap_version", "dataset", "models", "pairs", "loss_matrix", "similarity", "similarity_undefined"
    }  # fmt: skip
    assert metrics["similarity_undefined"] == []
    assert metrics["dataset"] == {
        "name": "val", "spec": "digits", "fit_collection": "train", "train_size": 1257, "val_size": 540,
        "num_classes": 10, "skipped": {}, "fit_overlap": 0,
    }  # fmt: skip
    assert set(metrics["models"]) == {"tiny-resnet", "tiny-inception"}
    assert {(p["source"], p["solver"]) for p in metrics["pairs"]} == {
        (m, s) for m in ("tiny-resnet", "tiny-inception") for s in ("paper", "lstsq")
    }
    assert invariant_violations(metrics) == []
    for model in metrics["models"].values():
        assert model["val_accuracy"] > 0.95
    for pair in metrics["pairs"]:
        # The paper's finding on digits: little is lost either way.
        assert pair["mapped_accuracy"] > pair["native_accuracy"] - 0.03
        assert pair["fit"]["iterations"] == (3000 if pair["solver"] == "paper" else 0)
        assert pair["mcnemar_p"] == mcnemar_exact(pair["fixed"], pair["broken"])
    report = (out / "report.md").read_text()
    assert "## Table 1 — solver `paper`, 3,000 iterations" in report
    for name in ("fit_curve_paper.png", "venn_tiny-inception__to__tiny-resnet__lstsq.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    # map_r2 reads the lstsq maps, not the paper recipe's (whose feature lengths are free).
    r2 = metrics["similarity"]["map_r2"]
    assert r2["tiny-inception"]["tiny-resnet"] > 0.5 and r2["tiny-resnet"]["tiny-inception"] > 0.5
    from featswap.config import RunConfig

    config = RunConfig.build(out / "config.toml")
    assert config.fit.solvers == ("paper", "lstsq") and config.fit.params["paper"]["iterations"] == 3000
    assert [m.name for m in config.models] == ["tiny-inception", "tiny-resnet"] and config.data.val_fraction == 0.3


def test_demo_second_run_reuses_weights_and_repeats_the_numbers(demo_run: tuple[Path, str, str]) -> None:
    out, output, metrics_first = demo_run
    assert "trained in" in output and "reusing cached weights" in output
    assert without_timings(json.loads(metrics_first)) == without_timings(json.loads((out / "metrics.json").read_text()))


def test_report_re_renders_the_same_report(demo_run: tuple[Path, str, str], runner: CliRunner) -> None:
    out, _, _ = demo_run
    before = (out / "report.md").read_text()
    (out / "report.md").unlink()
    run(runner, "report", str(out))
    assert (out / "report.md").read_text() == before


def test_extract_fit_evaluate(digits_store: Path, tmp_path: Path, runner: CliRunner) -> None:
    maps = []
    for source, target in (("tiny-inception", "tiny-resnet"), ("tiny-resnet", "tiny-inception")):
        path = tmp_path / f"{source}.safetensors"
        output = run(
            runner, "fit", "--store", str(digits_store), "--source", source, "--target", target,
            "--solver", "paper", "--param", "iterations=300", "--out", str(path),
        )  # fmt: skip
        assert "train loss" in output and path.is_file()
        maps += ["--maps", str(path)]
    run(runner, "evaluate", "--store", str(digits_store), *maps, "--out", str(tmp_path / "eval"), "--n-boot", "200")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert invariant_violations(metrics) == []
    assert [p["fit"]["iterations"] for p in metrics["pairs"]] == [300, 300]


def test_extract_resumes_nothing_when_complete(
    digits_store: Path, trained_weights: dict[str, Path], runner: CliRunner
) -> None:
    output = run(
        runner, "extract", "--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
        "--data", "digits", "--store", str(digits_store), "--part", "eval", "--quiet",
    )  # fmt: skip
    assert "540 rows (0 computed)" in output


def test_compare_all_pairs(trained_weights: dict[str, Path], tmp_path: Path, runner: CliRunner) -> None:
    run(
        runner, "compare", "--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
        "--model", "tiny-inception", "--weights", str(trained_weights["tiny-inception"]),
        "--data", "digits", "--out", str(tmp_path / "cmp"), "--solver", "lstsq,paper",
        "--param", "paper.iterations=200", "--param", "paper.init=zeros_identity", "--n-boot", "100", "--quiet",
    )  # fmt: skip
    metrics = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    assert len(metrics["pairs"]) == 4
    assert invariant_violations(metrics) == []
    assert (tmp_path / "cmp" / "maps" / "tiny-resnet__to__tiny-inception__paper.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--model", "tiny-resnet", "--data", "digits", "--out", "x"],
         "needs at least two models: give --model two or more times"),
        (["compare", "--model", "tiny-resnet", "--model", "tiny-resnet", "--weights", "a", "--data", "digits",
          "--out", "x"], "Got 1 --weights for 2 --model"),
        (["compare", "--model", "a", "--model", "b", "--data", "digits", "--out", "x", "--solver", ","],
         "at least one solver"),
        (["compare", "--model", "a", "--model", "b", "--data", "digits", "--out", "x", "--solver", "lsq"],
         "Unknown solver 'lsq'"),
        (["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--data", "digits", "--out", "x",
          "--param", "iterations=3", "--solver", "lstsq,paper"], "with several solvers, name one"),
        (["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--data", "digits", "--out", "x",
          "--param", "paper.iterations=3"], "names solver 'paper', which this run does not use"),
        (["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--data", "digits", "--out", "x",
          "--param", "iterations"], "expects KEY=VALUE"),
        (["extract", "--model", "tiny-resnt", "--data", "digits", "--store", "x"], "Did you mean 'tiny-resnet'"),
        (["fit", "--store", "nowhere.zarr", "--source", "a", "--target", "b", "--out", "m"], "No feature store"),
        (["fit", "--store", "x", "--source", "a", "--target", "b", "--out", "m", "--device", "tpu"],
         "--device must be one of cpu, cuda, auto; got 'tpu'"),
        (["report", "nowhere"], "No metrics.json"),
        (["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "x", "--engine", "spark"],
         "--engine must be local or ray"),
        (["fit", "--store", "x", "--source", "a", "--target", "b", "--out", "m", "--address", "auto"],
         "--address only applies to --engine ray"),
        (["compare", "--model", "a", "--model", "b", "--data", "digits", "--out", "x", "--ray-workers", "2",
          "--gpus-per-worker", "1"], "--gpus-per-worker, --ray-workers only apply to --engine ray"),
        (["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "x", "--engine", "ray",
          "--device", "cuda"], "workers get GPUs with --gpus-per-worker"),
        (["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "x", "--engine", "ray",
          "--address", "ray://127.0.0.1:1"], "does not run through Ray Client"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_a_clear_message(
    args: list[str], message: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    output = run(runner, *args, code=2)
    assert message in " ".join(output.split())


def test_fit_same_model_and_cuda_without_gpu(digits_store: Path, runner: CliRunner, tmp_path: Path) -> None:
    import torch

    base = ["fit", "--store", str(digits_store), "--out", str(tmp_path / "m.safetensors")]
    output = run(runner, *base, "--source", "tiny-resnet", "--target", "tiny-resnet", code=2)
    assert "needs two different models" in output
    if not torch.cuda.is_available():
        output = run(runner, *base, "--source", "tiny-resnet", "--target", "tiny-inception", "--device", "cuda", code=2)
        assert "no CUDA GPU" in output


def test_broken_metrics_json(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "metrics.json").write_text("{not json")
    assert "not valid JSON" in run(runner, "report", str(tmp_path), code=2)


def test_help_shows_examples(runner: CliRunner) -> None:
    for command in ("demo", "extract", "fit", "evaluate", "compare", "report"):
        assert "Example" in run(runner, command, "--help")


def test_unique_names() -> None:
    assert unique_names(["tiny-resnet", "tiny-resnet", "timm:resnet50", "/a/b/models.py:net"]) == [
        "tiny-resnet",
        "tiny-resnet-2",
        "resnet50",
        "net",
    ]


def test_settings_for_an_unused_solver_are_refused() -> None:
    from featswap.config import FitSettings

    with pytest.raises(SpecError, match=r"Settings given for solver\(s\) \['paper'\]"):
        FitSettings(("lstsq",), {"paper": {"iterations": 3}})


def test_compare_every_solver_side_by_side(trained_weights: dict[str, Path], tmp_path: Path, runner: CliRunner) -> None:
    output = run(
        runner, "compare", "--model", "tiny-resnet", "--weights", str(trained_weights["tiny-resnet"]),
        "--model", "tiny-inception", "--weights", str(trained_weights["tiny-inception"]),
        "--data", "digits", "--out", str(tmp_path / "all"), "--solver", "paper,lstsq,refine,procrustes,heads",
        "--param", "paper.iterations=100", "--n-boot", "100",
    )  # fmt: skip
    assert "heads: reproduces the source's logits through the target's head" in output
    metrics = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert invariant_violations(metrics) == []
    assert sorted({p["solver"] for p in metrics["pairs"]}) == ["heads", "lstsq", "paper", "procrustes", "refine"]
    assert len(metrics["pairs"]) == 10
    report = (tmp_path / "all" / "report.md").read_text()
    for solver in ("paper", "lstsq", "refine", "procrustes", "heads"):
        assert f"solver `{solver}`" in report
    by = {(p["source"], p["solver"]): p for p in metrics["pairs"]}
    for source in ("tiny-resnet", "tiny-inception"):
        # Maps that reproduce logits (heads) or fit the features closely lose little accuracy on digits.
        for solver in ("heads", "lstsq", "refine"):
            assert by[source, solver]["loss"] < 0.05


def test_similarity_command(digits_store: Path, tmp_path: Path, runner: CliRunner) -> None:
    output = run(runner, "similarity", "--store", str(digits_store), "--out", str(tmp_path / "sim"))
    assert "val: linear_cka (0..1, higher = more similar): tiny-inception->tiny-resnet" in " ".join(output.split())
    data = json.loads((tmp_path / "sim" / "similarity.json").read_text())
    assert data["collection"] == "val"
    r2 = data["similarity"]["map_r2"]
    assert set(r2) == {"tiny-inception", "tiny-resnet"} and 0.5 < r2["tiny-resnet"]["tiny-inception"] <= 1.0
    output = run(runner, "similarity", "--store", str(digits_store), "--out", str(tmp_path / "x"),
                 "--model", "tiny-resnet", code=2)  # fmt: skip
    assert "at least two models" in output
