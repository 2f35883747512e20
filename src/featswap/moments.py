"""Streamed sufficient statistics for least squares: `n`, `sum x`, `sum y`, `X^T X`, `X^T Y` in float64.

State is summed chunk by chunk (`of` + `merge`, or `accumulate`), merged across workers (`merge`) and turned
into a map by pure functions in `featswap.solvers.lstsq`; memory is O(Dx^2 + Dx Dy) whatever the number
of samples. Chunk products run in float64 with torch, on the CPU or a GPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import torch

from featswap.errors import FeatswapError, FitError


class Mergeable(Protocol):
    def merge(self: M, other: M) -> M: ...


M = TypeVar("M", bound=Mergeable)


def merge_all(parts: Iterable[M]) -> M | None:
    """The merge of a stream of partial statistics (None for an empty stream)."""
    total: M | None = None
    for part in parts:
        total = part if total is None else total.merge(part)
    return total


def merge_nonempty(parts: Iterable[M], empty: FeatswapError) -> M:
    """`merge_all` of a stream that must hold at least one part; raises `empty` when it holds none."""
    total = merge_all(parts)
    if total is None:
        raise empty
    return total


@dataclass(frozen=True)
class Moments:
    """Sums over samples of source `x` (Dx,) and target `y` (Dy,): n, sx (Dx,), sy (Dy,), sxx (Dx, Dx),
    sxy (Dx, Dy), and syy the scalar sum of `||y||^2`; all float64."""

    n: int
    sx: np.ndarray
    sy: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray
    syy: float = 0.0

    @classmethod
    def zeros(cls, dx: int, dy: int) -> Moments:
        return cls(0, np.zeros(dx), np.zeros(dy), np.zeros((dx, dx)), np.zeros((dx, dy)))

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Moments:
        """Moments of one chunk: `x` (n, Dx), `y` (n, Dy)."""
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise FitError(
                f"Got {len(x)} rows of source features but {len(y)} of target features; rows must be the "
                "same images in the same order."
            )
        tx = torch.as_tensor(np.ascontiguousarray(x), device=device).double()
        ty = torch.as_tensor(np.ascontiguousarray(y), device=device).double()
        return cls(
            len(x),
            tx.sum(0).cpu().numpy(),
            ty.sum(0).cpu().numpy(),
            (tx.T @ tx).cpu().numpy(),
            (tx.T @ ty).cpu().numpy(),
            float(torch.linalg.vector_norm(ty) ** 2),  # no (n, Dy) temporary
        )

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], device: str = "cpu") -> Moments:
        """Moments of a stream of `(x chunk, y chunk)` pairs."""
        return merge_nonempty((cls.of(x, y, device) for x, y in chunks), FitError("No samples to fit on."))

    def merge(self, other: Moments) -> Moments:
        if self.sxy.shape != other.sxy.shape:
            raise FitError(f"Cannot merge moments of shapes {self.sxy.shape} and {other.sxy.shape}.")
        return Moments(
            self.n + other.n,
            self.sx + other.sx,
            self.sy + other.sy,
            self.sxx + other.sxx,
            self.sxy + other.sxy,
            self.syy + other.syy,
        )

    def subtract(self, part: Moments) -> Moments:
        """The moments of the samples not in `part` (a subset of these samples)."""
        return Moments(
            self.n - part.n,
            self.sx - part.sx,
            self.sy - part.sy,
            self.sxx - part.sxx,
            self.sxy - part.sxy,
            self.syy - part.syy,
        )

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means `(mx (Dx,), my (Dy,))` and centred scatter matrices `Cxx (Dx, Dx)`, `Cxy (Dx, Dy)`."""
        mx, my = self.sx / self.n, self.sy / self.n
        cxx = self.sxx - self.n * np.outer(mx, mx)
        cxy = self.sxy - self.n * np.outer(mx, my)
        return mx, my, (cxx + cxx.T) / 2, cxy

    def squared_error(self, weight: np.ndarray, bias: np.ndarray) -> float:
        """`sum ||W x + b - y||^2` over the samples, from the sums alone (W (Dy, Dx), b (Dy,))."""
        w = weight.astype(np.float64)
        b = bias.astype(np.float64)
        quad = float(np.einsum("ij,jk,ik->", w, self.sxx, w))
        cross = float(np.einsum("ij,ji->", w, self.sxy))
        return (
            quad + 2 * float(b @ (w @ self.sx)) + self.n * float(b @ b) - 2 * cross - 2 * float(b @ self.sy) + self.syy
        )
