"""A probe-headed network gives the same numbers on every path: `compare`, the step-by-step commands (`extract
--head probe`, `fit --out`, `evaluate --maps`), the Python API (`featswap.run`), and extraction on Ray's engine;
on real digits features of two trained networks, one with its own head and one whose head a probe replaces."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import featswap
from featswap.cli import app
from featswap.config import RunConfig
from featswap.store import FeatureStore
from runs import assert_same

MODELS = ("tiny-resnet", "tiny-inception")
HEADS = ("own", "probe")


def run(runner: CliRunner, *args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def metrics_by_pair(out: Path) -> dict[str, Any]:
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["pairs"] = {f"{p['source']}->{p['target']}/{p['solver']}": p for p in metrics.pop("pairs")}
    return metrics


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, trained_weights: dict[str, Path], runner: CliRunner) -> Path:
    out = tmp_path_factory.mktemp("probe-paths") / "compare"
    models = [
        a
        for m, h in zip(MODELS, HEADS, strict=True)
        for a in ("--model", m, "--weights", str(trained_weights[m]), "--head", h)
    ]
    run(runner, "compare", *models, "--data", "digits", "--solver", "lstsq", "--n-boot", "100", "--out", str(out),
        "--quiet")  # fmt: skip
    return out


def test_compare_records_the_probe_and_the_step_by_step_commands_equal_it(
    compared: Path, trained_weights: dict[str, Path], runner: CliRunner
) -> None:
    root = compared.parent
    store = root / "step.zarr"
    for model, head in zip(MODELS, HEADS, strict=True):
        run(runner, "extract", "--model", model, "--weights", str(trained_weights[model]), "--head", head, "--data",
            "digits", "--store", str(store), "--quiet")  # fmt: skip
    maps = []
    for source, target in itertools.permutations(MODELS, 2):
        path = root / "maps" / f"{source}-{target}.safetensors"
        run(runner, "fit", "--store", str(store), "--source", source, "--target", target, "--solver", "lstsq",
            "--out", str(path))  # fmt: skip
        maps += ["--maps", str(path)]
    run(runner, "evaluate", "--store", str(store), *maps, "--out", str(root / "step"), "--n-boot", "100")
    a, b = metrics_by_pair(compared), metrics_by_pair(root / "step")
    assert a["models"]["tiny-inception"]["head"]["kind"] == "probe" and a["models"]["tiny-resnet"]["head"] == {
        "kind": "own"
    }
    assert a["models"]["tiny-inception"]["head"]["fit_images"] == 1257
    for key in ("models", "pairs", "loss_matrix", "similarity", "similarity_undefined"):
        assert_same(a[key], b[key], key)
    # The probe in both stores is the same classifier, bit for bit.
    with FeatureStore.open(compared / "features.zarr") as first, FeatureStore.open(store) as second:
        for x, y in zip(first.head("tiny-inception"), second.head("tiny-inception"), strict=True):
            assert np.array_equal(x, y) and np.any(x != 0)


def test_the_python_api_equals_compare_with_a_probe_head(compared: Path) -> None:
    api_out = compared.parent / "api"  # its own store: the API extracts and trains the probe again
    config = RunConfig.build(compared / "config.toml").with_(out=str(api_out), store=str(api_out / "features.zarr"))
    api = featswap.run(config, quiet=True)
    ours = metrics_by_pair(compared)
    api["pairs"] = {f"{p['source']}->{p['target']}/{p['solver']}": p for p in api.pop("pairs")}
    for key in ("models", "pairs", "loss_matrix", "similarity"):
        assert_same(ours[key], api[key], key)
