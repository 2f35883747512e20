"""Every path gives the same numbers: `compare`, the step-by-step commands (`extract`, `fit --out`, `evaluate
--maps`) and the Python API, for every solver, on real digits features of two trained networks."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.solvers import SOLVERS, Heads
from featswap.store import FeatureStore
from runs import assert_same

MODELS = ("tiny-resnet", "tiny-inception")
PAPER_ITERATIONS = "150"


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def both_paths(
    tmp_path_factory: pytest.TempPathFactory, trained_weights: dict[str, Path], runner: CliRunner
) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("paths")
    solvers = SOLVERS.names()
    models = [a for m in MODELS for a in ("--model", m, "--weights", str(trained_weights[m]))]
    run(runner, "compare", *models, "--data", "digits", "--out", str(root / "compare"), "--solver", ",".join(solvers),
        "--param", f"paper.iterations={PAPER_ITERATIONS}", "--n-boot", "200", "--quiet")  # fmt: skip

    store = root / "step.zarr"
    for model in MODELS:
        run(runner, "extract", "--model", model, "--weights", str(trained_weights[model]), "--data", "digits",
            "--store", str(store), "--quiet")  # fmt: skip
    maps = []
    for source, target in itertools.permutations(MODELS, 2):
        for solver in solvers:
            path = root / "maps" / f"{source}-{target}-{solver}.safetensors"
            extra = ["--param", f"iterations={PAPER_ITERATIONS}"] if solver == "paper" else []
            run(runner, "fit", "--store", str(store), "--source", source, "--target", target, "--solver", solver,
                *extra, "--out", str(path))  # fmt: skip
            maps += ["--maps", str(path)]
    run(runner, "evaluate", "--store", str(store), *maps, "--out", str(root / "step"), "--n-boot", "200")
    return root / "compare", root / "step", store


def metrics_by_pair(out: Path) -> dict[str, Any]:
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["pairs"] = {f"{p['source']}->{p['target']}/{p['solver']}": p for p in metrics.pop("pairs")}
    return metrics


def test_compare_and_the_step_by_step_commands_give_equal_metrics(both_paths: tuple[Path, Path, Path]) -> None:
    compared, stepped, _ = both_paths
    a, b = metrics_by_pair(compared), metrics_by_pair(stepped)
    assert len(a["pairs"]) == 2 * len(SOLVERS.names())
    for key in ("models", "pairs", "loss_matrix", "similarity", "similarity_undefined"):
        assert_same(a[key], b[key], key)
    assert a["dataset"] == b["dataset"]
    # Each run's config.toml records the maps as they were fitted: evaluate's the maps it was given.
    from featswap.config import RunConfig

    for out in (compared, stepped):
        fit = RunConfig.build(out / "config.toml").fit
        assert set(fit.solvers) == set(SOLVERS.names()) and fit.params["paper"]["iterations"] == int(PAPER_ITERATIONS)


def test_the_python_api_gives_the_same_numbers(both_paths: tuple[Path, Path, Path]) -> None:
    compared, _, store_path = both_paths
    store = FeatureStore.open(store_path)
    pairs = metrics_by_pair(compared)["pairs"]
    labels = store.labels("val")
    for source, target in itertools.permutations(MODELS, 2):
        heads = Heads(*store.head(source), *store.head(target))
        weight, bias = store.head(target)
        for solver in SOLVERS.names():
            params = {"iterations": int(PAPER_ITERATIONS)} if solver == "paper" else {}
            amap = AffineMap(solver, **params)
            amap.fit_pairs(store.pairs("train", source, target) if solver != "heads" else None, heads)
            mapped = amap.transform(store.features("val", source)) @ weight.T + bias
            entry = pairs[f"{source}->{target}/{solver}"]
            assert int((mapped.argmax(1) == labels).sum()) == entry["mapped_correct"], solver
            loss = amap.loss(store.features("val", source), store.features("val", target))
            assert loss == pytest.approx(entry["fit"]["val_loss"], abs=1e-9), solver


def test_saved_maps_reload_bit_for_bit(both_paths: tuple[Path, Path, Path]) -> None:
    compared, _, _ = both_paths
    for path in sorted((compared / "maps").glob("*.safetensors")):
        amap = AffineMap.load(path)
        source, _, rest = path.stem.partition("__to__")
        target, _, solver = rest.partition("__")
        step = AffineMap.load(compared.parent / "maps" / f"{source}-{target}-{solver}.safetensors")
        assert np.array_equal(amap.weight_, step.weight_) and np.array_equal(amap.bias_, step.bias_), path.name
        assert amap.weight_.flags.c_contiguous and amap.weight_.dtype == np.float32
