"""Streamed sufficient statistics for least squares: `n`, `sum x`, `sum y`, `X^T X`, `X^T Y` in float64.

State is summed chunk by chunk (`update`), merged across workers (`merge`) and turned into a map by the
pure function `solvers.lstsq_from_moments`; memory is O(Dx^2 + Dx Dy) whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from featswap.errors import FitError


@dataclass(frozen=True)
class Moments:
    """Sums over samples of source `x` (Dx,) and target `y` (Dy,): n, sx (Dx,), sy (Dy,), sxx (Dx, Dx),
    sxy (Dx, Dy), all float64."""

    n: int
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray

    @classmethod
    def zeros(cls, dx: int, dy: int) -> Moments:
        return cls(0, np.zeros(dx), np.zeros(dy), np.zeros((dx, dx)), np.zeros((dx, dy)))

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> Moments:
        """Moments of one chunk: `x` (n, Dx), `y` (n, Dy)."""
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise FitError(
                f"Got {len(x)} rows of source features but {len(y)} of target features; rows must be the "
                "same images in the same order."
            )
        x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return cls(len(x64), x64.sum(0), y64.sum(0), x64.T @ x64, x64.T @ y64)

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Moments:
        """Moments of a stream of `(x chunk, y chunk)` pairs."""
        total: Moments | None = None
        for x, y in chunks:
            part = cls.of(x, y)
            total = part if total is None else total.merge(part)
        if total is None:
            raise FitError("No samples to fit on.")
        return total

    def merge(self, other: Moments) -> Moments:
        if self.sxy.shape != other.sxy.shape:
            raise FitError(f"Cannot merge moments of shapes {self.sxy.shape} and {other.sxy.shape}.")
        return Moments(
            self.n + other.n,
            self.sx + other.sx,
            self.sy + other.sy,
            self.sxx + other.sxx,
            self.sxy + other.sxy,
        )

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means `(mx (Dx,), my (Dy,))` and centred scatter matrices `Cxx (Dx, Dx)`, `Cxy (Dx, Dy)`."""
        mx, my = self.sx / self.n, self.sy / self.n
        cxx = self.sxx - self.n * np.outer(mx, mx)
        cxy = self.sxy - self.n * np.outer(mx, my)
        return mx, my, (cxx + cxx.T) / 2, cxy
