"""Runs of the experiment on features already in a store, for tests that need a run's outputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featswap.config import EvaluationSettings, FitSettings, RunConfig
from featswap.experiment import Experiment


def compare_on_store(
    store: Path, out: Path, solvers: Sequence[str] = ("lstsq",), n_boot: int = 50, names: Sequence[str] = (), **fit: Any
) -> dict[str, Any]:
    """Fit every pair of the store's models with `solvers` and evaluate, writing the run into `out`."""
    config = RunConfig(store=str(store), out=str(out), fit=FitSettings(tuple(solvers), fit),
                       evaluation=EvaluationSettings(n_boot=n_boot))  # fmt: skip
    return Experiment(config, quiet=True).compare_stored(names=names)


def assert_same(a: Any, b: Any, where: str = "metrics") -> None:
    """Equal structure; integers (counts) exactly, floats to 1e-9; fit seconds are timings and skipped."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            if key != "seconds":
                assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-9), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
