"""Loose ends of round three (issue "Reliability, round three"): `fit --config` fits the file's solver; a misspelt
precision is refused; a `memory://` store is said to vanish (and refused where its features are the output); the
`paper` solver stops on held-out loss unless told its iterations; metrics.json says whether a ridge strength was
chosen or given; the stitch terminal names maps fitted on few rows; the demo trains on the run's own split; a
label file's repeated rows are said when a run starts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.config import DataSettings
from featswap.data.collections import fit_and_eval
from featswap.demo import run_demo
from featswap.demo.training import TrainConfig
from featswap.errors import SpecError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.moments import Moments
from featswap.mapping.solvers.paper import MAX_ITERATIONS
from featswap.similarity.gram import GramStats
from pairs import planted
from runs import compare_on_store

PAIR = ["--source", "tiny-inception", "--target", "tiny-resnet"]


# -- fit --config -------------------------------------------------------------------------------------------
def test_fit_takes_the_config_files_solver_and_settings(runner: CliRunner, tmp_path: Path, digits_store: Path) -> None:
    one = tmp_path / "one.toml"
    one.write_text('[fit]\nsolvers = ["lstsq"]\n[fit.params.lstsq]\nalpha = 0.5\n')
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["fit", "--config", str(one), "--store", str(digits_store), *PAIR, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(lstsq)" in result.output
    amap = AffineMap.load(out)
    assert amap.solver == "lstsq" and amap.info_["alpha"] == 0.5 and amap.info_["alpha_chosen"] is False
    # A config compare wrote, with two solvers' settings: fit one of them with --solver, or be told to choose.
    two = tmp_path / "two.toml"
    two.write_text(
        '[fit]\nsolvers = ["paper", "lstsq"]\n[fit.params.paper]\niterations = 5\n[fit.params.lstsq]\nalpha = 0.25\n'
    )
    base = ["fit", "--config", str(two), "--store", str(digits_store), *PAIR]
    result = runner.invoke(app, [*base, "--solver", "lstsq", "--out", str(tmp_path / "l.safetensors")])
    assert result.exit_code == 0, result.output
    assert AffineMap.load(tmp_path / "l.safetensors").info_["alpha"] == 0.25
    result = runner.invoke(app, [*base, "--solver", "paper", "--out", str(tmp_path / "p.safetensors")])
    assert result.exit_code == 0, result.output
    assert AffineMap.load(tmp_path / "p.safetensors").n_iter_ == 5
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "x.safetensors")])
    assert result.exit_code == 2
    assert "names 2 solvers (paper, lstsq); fit writes one map: choose one with --solver" in result.output
    assert not (tmp_path / "x.safetensors").exists()


# -- precision ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["float46", "float16", "FLOAT64", ""])
def test_a_precision_not_in_the_list_is_refused_where_it_enters(precision: str) -> None:
    x, y, _, _ = planted(0, n=40)
    for make in (GramStats.of, Moments.of):
        with pytest.raises(SpecError, match=f"precision must be one of float32, float64; got '{precision}'"):
            make(x, y, precision=precision)
    for accumulate in (GramStats.accumulate, Moments.accumulate):
        with pytest.raises(SpecError, match="precision must be one of"):
            accumulate(iter([]), precision=precision)  # refused before the first chunk, even with none
    assert np.allclose(GramStats.of(x, y, precision="float32").linear_cka(), GramStats.of(x, y).linear_cka(), atol=1e-5)


# -- memory:// stores ---------------------------------------------------------------------------------------
def test_a_memory_store_is_refused_for_extract_and_said_for_compare(
    runner: CliRunner, tmp_path: Path, trained_weights: dict[str, Path]
) -> None:
    result = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", "memory://x"])
    assert result.exit_code == 2 and result.output.startswith("error: --store memory://x lives in this command's")
    models = [x for spec, path in trained_weights.items() for x in ("--model", spec, "--weights", str(path))]
    args = ["compare", *models, "--data", "digits", "--solver", "lstsq", "--n-boot", "20", "--quiet"]
    result = runner.invoke(app, [*args, "--store", "memory://cmp", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "warning: the feature store memory://cmp lives in this process's memory and vanishes" in result.output
    assert (tmp_path / "run" / "metrics.json").is_file()


# -- paper: early stopping unless told the iterations --------------------------------------------------------
def test_paper_stops_on_held_out_loss_unless_given_its_iterations() -> None:
    x, y, _, _ = planted(1, n=800)
    stopped = AffineMap("paper", batch_size=256, eval_every=200, seed=0).fit(x, y)
    assert stopped.info_["stopped_early"] is True and 0 < stopped.n_iter_ < MAX_ITERATIONS
    assert stopped.n_iter_ % 200 == 0 and stopped.curve_.shape == (stopped.n_iter_,)
    trace = stopped.info_["heldout_trace"]
    assert trace[-1][0] == stopped.n_iter_ and stopped.info_["best_heldout_loss"] == min(v for _, v in trace)
    assert stopped.loss(x, y) < 5e-3  # as good as a long fit: the curve was flat
    exact = AffineMap("paper", iterations=777, batch_size=256, seed=0).fit(x, y)
    assert exact.n_iter_ == 777 and exact.curve_.shape == (777,) and "stopped_early" not in exact.info_
    with pytest.raises(SpecError, match="patience must be at least 1"):
        AffineMap("paper", patience=0).fit(x, y)


def test_the_iterations_run_are_recorded(tmp_path: Path, digits_store: Path) -> None:
    settings = {"batch_size": 64, "eval_every": 40, "patience": 2}
    metrics = compare_on_store(digits_store, tmp_path / "run", ("paper",), paper=settings)
    used = {p["fit"]["iterations"] for p in metrics["pairs"]}
    assert all(0 < n < MAX_ITERATIONS and n % 40 == 0 for n in used)
    report = (tmp_path / "run" / "report.md").read_text()
    low, high = min(used), max(used)
    assert (f"{low:,} iterations" if low == high else f"{low:,} to {high:,} iterations") in report
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "iterations" not in config.split("[fit.params.paper]")[1].split("[")[0]  # left out: stops early again


# -- alpha chosen or given ----------------------------------------------------------------------------------
def test_metrics_record_whether_the_ridge_strength_was_chosen(tmp_path: Path, digits_store: Path) -> None:
    given = compare_on_store(digits_store, tmp_path / "given", ("lstsq",), lstsq={"alpha": 0.1})
    chosen = compare_on_store(digits_store, tmp_path / "chosen", ("lstsq",), lstsq={"alpha": "auto"})
    for pair in given["pairs"]:
        assert pair["fit"]["alpha"] == 0.1 and pair["fit"]["alpha_chosen"] is False
    for pair in chosen["pairs"]:
        assert pair["fit"]["alpha_chosen"] is True
    default = compare_on_store(digits_store, tmp_path / "default", ("lstsq",))  # enough rows: 0, not chosen
    assert all(p["fit"]["alpha"] == 0.0 and p["fit"]["alpha_chosen"] is False for p in default["pairs"])


# -- stitch: the terminal names maps fitted on few rows -------------------------------------------------------
def test_stitch_says_on_the_terminal_which_maps_had_few_rows(
    runner: CliRunner, tmp_path: Path, trained_weights: dict[str, Path]
) -> None:
    models = [x for spec, path in trained_weights.items() for x in ("--model", spec, "--weights", str(path))]
    args = ["stitch", *models, "--data", "digits", "--layers", "@pooled:@pooled", "--n-boot", "20"]
    result = runner.invoke(app, [*args, "--train-limit", "40", "--out", str(tmp_path / "few")])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "fewer rows" in x)
    assert line.startswith("2 of 2 maps were fitted on fewer rows (images x positions) than their source layer's")
    assert "tiny-resnet:@pooled -> tiny-inception:@pooled (lstsq)" in line
    metrics = json.loads((tmp_path / "few" / "metrics.json").read_text())
    assert all(p["fit"]["underdetermined"] and p["fit"]["alpha_chosen"] for p in metrics["pairs"])
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "enough")])
    assert result.exit_code == 0 and "fewer rows" not in result.output, result.output


# -- the demo trains on the run's own fitting split -----------------------------------------------------------
def test_the_demo_trains_on_the_runs_own_fitting_images(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    config.write_text("[data]\nval_fraction = 0.5\nseed = 3\n[evaluation]\nn_boot = 20\n")
    metrics = run_demo(tmp_path / "d", paper_iterations=5, quiet=True, config=config, train=TrainConfig(epochs=1))
    fit, (val,) = fit_and_eval(DataSettings(data="digits", val_fraction=0.5, seed=3))
    trained_on = json.loads((tmp_path / "d" / "weights" / "tiny-resnet.json").read_text())["key"]
    assert json.loads(trained_on)["ids_sha256"] == hashlib.sha256("\n".join(fit.ids).encode()).hexdigest()
    assert metrics["dataset"]["val_size"] == len(val) and metrics["dataset"].get("fit_overlap", 0) == 0
    other = tmp_path / "other.toml"
    other.write_text('[data]\nfit_data = "digits"\neval_data = ["digits"]\n')
    with pytest.raises(SpecError, match=r"The demo trains its networks on the digits' fitting images.*fit_data"):
        run_demo(tmp_path / "e", quiet=True, config=other)
    other.write_text('[data]\ndata = "imagefolder:/elsewhere"\n')
    with pytest.raises(SpecError, match="gives other data"):
        run_demo(tmp_path / "e", quiet=True, config=other)
    assert not (tmp_path / "e").exists()


# -- a label file's repeated rows are said at the start of a run -----------------------------------------------
def test_repeated_label_rows_are_said_when_a_run_starts(runner: CliRunner, tmp_path: Path) -> None:
    from test_imagenet_layouts import A, B, flat_val, kaggle_csv

    root = tmp_path / "inet"
    flat_val(root / "val", [1, 2, 3, 4])
    solution = kaggle_csv(root / "LOC_val_solution.csv", {1: A, 2: B, 3: A, 4: B})
    solution.write_text(solution.read_text() + f"ILSVRC2012_val_00000002,{B} 1 2 3 4\n")
    args = ["extract", "--model", "tiny-resnet", "--fit-data", f"imagenet:{root}", "--eval-data", f"imagenet:{root}",
            "--store", str(tmp_path / "s.zarr"), "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert "warning: inet-val: " in result.output and "has 1 repeated row(s)" in result.output, result.output


# -- a network that cannot run ------------------------------------------------------------------------------
MISFIT = """
import torch.nn as nn

DATA = {"input_size": (3, 8, 8), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


class Misfit(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc, self.data_config = nn.Conv2d(3, 8, 3), nn.Linear(16, 10), DATA

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def {name}(num_classes=10):
    model = Misfit()
    {change}
    return model
"""


@pytest.mark.parametrize(
    ("command", "change"),
    [
        (["layers"], "pass"),  # its own classifier does not fit its features
        (["extract", "--data", "digits", "--store", "STORE"], "pass"),
        (["extract", "--data", "digits", "--store", "STORE", "--head", "probe"], "model.conv = nn.Conv2d(3, 8, 9)"),
    ],
)
def test_a_network_that_fails_in_its_own_forward_pass_is_named(
    runner: CliRunner, tmp_path: Path, command: list[str], change: str
) -> None:
    """A user's network that cannot run (a classifier that does not fit its features, a kernel larger than the
    image) is one error line naming it and what torch said, not a bug report; nothing is created."""
    factory = tmp_path / "misfit.py"
    factory.write_text(MISFIT.replace("{name}", "misfit").replace("{change}", change))
    store = tmp_path / "s.zarr"
    args = [str(store) if a == "STORE" else a for a in command]
    result = runner.invoke(app, [*args, "--model", f"{factory}:misfit"])
    assert result.exit_code == 2
    assert result.output.startswith("error: misfit fails in its own forward pass on 3 x 8 x 8 inputs (RuntimeError: ")
    assert "bug in featswap" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not store.exists()
