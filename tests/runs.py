"""Runs of the experiment on features already in a store, for tests that need a run's outputs."""

from __future__ import annotations

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
    return Experiment(config, quiet=True).compare_stored(names)
