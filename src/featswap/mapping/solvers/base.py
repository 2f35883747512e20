"""What every solver shares: its result, the optional classifier heads, and the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featswap.catalog.solvers import SOLVER_SETTINGS, make_settings
from featswap.mapping.paired import PairedFeatures
from featswap.registry import Registry


@dataclass(frozen=True)
class FitResult:
    """A fitted map: `weight` (Dy, Dx) and `bias` (Dy,) (float32 or float64; `AffineMap` keeps the dtype of the
    features it was fitted on); `curve` the per-batch loss (iterations,)
    of iterative solvers (empty for closed forms); `iterations`; `info` solver-specific facts (JSON-able)."""

    weight: np.ndarray
    bias: np.ndarray
    curve: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    iterations: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heads:
    """The two networks' classifiers: source `(W_A (C, Dx), b_A (C,))`, target `(W_B (C, Dy), b_B (C,))`."""

    source_weight: np.ndarray
    source_bias: np.ndarray
    target_weight: np.ndarray
    target_bias: np.ndarray


#: fit(pairs or None, settings, device, heads or None) -> FitResult
FitFunction = Callable[[PairedFeatures | None, Any, str, Heads | None], FitResult]


@dataclass(frozen=True)
class Solver:
    """A named solver and what it needs, declared once: its fit function (its settings dataclass is declared in
    `featswap.catalog.solvers`, which config reads without importing the solvers); whether it
    reads features (`needs_data`) and the classifier heads (`needs_heads`); whether its map reproduces the
    target's feature lengths (`fits_scale`: the paper's loss compares directions only, and `heads` maps logits,
    not features); `r2_rank`, which of a run's maps `map_r2` reads (the lowest rank fitted); and
    `can_interpolate`."""

    name: str
    fit: FitFunction
    needs_data: bool = True
    needs_heads: bool = False
    fits_scale: bool = True
    r2_rank: int = 0
    summary: str = ""
    #: Whether its map, fitted on fewer rows than the source's width + 1, can reproduce them (a free affine map
    #: can; an orthogonal one cannot).
    can_interpolate: bool = True

    def __post_init__(self) -> None:
        SOLVER_SETTINGS.get(self.name)  # every solver's settings are declared in featswap.catalog.solvers

    @property
    def settings(self) -> type:
        """Its settings dataclass (`featswap.catalog.solvers`)."""
        return SOLVER_SETTINGS.get(self.name)

    def make_settings(self, **params: object) -> Any:
        """Its settings from `params` (`featswap.catalog.solvers.make_settings`)."""
        return make_settings(self.name, **params)


SOLVERS: Registry[Solver] = Registry("solver")
