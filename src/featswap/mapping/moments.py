"""Streamed sufficient statistics for least squares, centred and mergeable.

Each chunk of rows contributes its count, means and centred scatter matrices (`sum (x - mx)(x - mx)^T`, ...),
all float64; chunks are merged with the pairwise update of Chan, Golub and LeVeque (1979), which adds the
scatter of the difference of the two means. Sums of raw products (`X^T X - n mx mx^T`) would lose every digit
of the spread of features that share a large offset; centred sums do not. Memory is O(Dx^2 + Dx Dy) whatever
the number of rows, and state merges across workers in any grouping (`merge`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from featswap.errors import FeatswapError, FitError
from featswap.mapping.products import add_outer, check_precision, compute_dtype, paired_blocks, roundoff, wider

if TYPE_CHECKING:  # torch is imported by the functions that use it, so that the numpy paths load none
    import torch


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


def as_float64(array: np.ndarray, device: str) -> torch.Tensor:
    """A float64 copy on `device` of an array of any float dtype, layout or memory order: never the array's own
    memory, so that it can be centred in place."""
    import torch

    return torch.as_tensor(np.ascontiguousarray(array), device=device).to(torch.float64, copy=True)


def centred_in_place(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(mean (D,), rows - mean (n, D))` of float64 `rows` `(n, D)`, subtracting in place: no second (n, D)
    temporary."""
    mean = rows.mean(0)
    return mean, rows.sub_(mean)


def symmetric(matrix: torch.Tensor) -> torch.Tensor:
    """`(A + A^T) / 2`: a scatter matrix exactly symmetric despite rounding in its product."""
    return (matrix + matrix.T) / 2


@dataclass(frozen=True)
class Moments:
    """Centred moments of paired rows, source `x` (Dx,) and target `y` (Dy,), all float64:
    `n` rows; means `mx` (Dx,), `my` (Dy,); scatter `cxx = sum (x - mx)(x - mx)^T` (Dx, Dx) and
    `cxy = sum (x - mx)(y - my)^T` (Dx, Dy); `tyy = sum ||y - my||^2`."""

    n: int
    mx: np.ndarray
    my: np.ndarray
    cxx: np.ndarray
    cxy: np.ndarray
    tyy: float = 0.0
    #: Unit roundoff of the products these sums were made of (`featswap.mapping.products.roundoff`).
    roundoff: float = 2.0**-53

    @classmethod
    def zeros(cls, dx: int, dy: int) -> Moments:
        """The moments of no rows (the identity of `merge`)."""
        return cls(0, np.zeros(dx), np.zeros(dy), np.zeros((dx, dx)), np.zeros((dx, dy)))

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu", precision: str = "float64") -> Moments:
        """Moments of one chunk: `x` (n, Dx), `y` (n, Dy), each centred on its own mean, in blocks of rows whose
        products are added up in float64 (`featswap.mapping.products.paired_blocks`). `precision="float32"`
        multiplies float32 features in float32 (the BLAS fast path; least squares may then raise
        `PrecisionError`); the default, float64. On another device than the CPU, in float64 there."""
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise FitError(
                f"Got {len(x)} rows of source features but {len(y)} of target features; rows must be the "
                "same images in the same order."
            )
        if len(x) == 0:
            return cls.zeros(x.shape[1], y.shape[1])
        if device != "cpu":
            return cls._of_on(x, y, device)
        dtype = compute_dtype(x, y, precision=precision)
        mx, my, blocks = paired_blocks(x, y, dtype)
        cxx, cxy, tyy = np.zeros((x.shape[1], x.shape[1])), np.zeros((x.shape[1], y.shape[1])), 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below, with its own message
            for u, v in blocks:  # all centred on the same means: their sums simply add up
                cxx += u.T @ u  # numpy calls BLAS syrk for an array times its own transpose: half the work
                cxy += u.T @ v
                tyy += float(np.einsum("ij,ij->", v, v, dtype=np.float64))
        if not (np.isfinite(cxx).all() and np.isfinite(cxy).all() and np.isfinite(tyy)):
            return cls.of(x, y, device, wider(dtype).name)
        return cls(len(x), mx, my, cxx, cxy, tyy, roundoff(dtype))

    @classmethod
    def of_torch(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Moments:
        """Moments of one chunk `x` (n, Dx), `y` (n, Dy) in float64 with torch on `device` (the CPU too): one
        multi-threaded product per matrix, for chunks of many rows and few columns (a layer's positions)."""
        if len(x) == 0:
            return cls.zeros(x.shape[1], y.shape[1])
        return cls._of_on(x, y, device)

    @classmethod
    def _of_on(cls, x: np.ndarray, y: np.ndarray, device: str) -> Moments:
        """Moments of a chunk computed in float64 on `device` (a GPU)."""
        import torch

        (mx, u), (my, v) = centred_in_place(as_float64(x, device)), centred_in_place(as_float64(y, device))
        return cls(
            len(x),
            mx.cpu().numpy(),
            my.cpu().numpy(),
            symmetric(u.T @ u).cpu().numpy(),
            (u.T @ v).cpu().numpy(),
            float(torch.linalg.vector_norm(v) ** 2),  # no (n, Dy) temporary beyond v
        )

    @classmethod
    def accumulate(
        cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], device: str = "cpu", precision: str = "float64"
    ) -> Moments:
        """Moments of a stream of `(x chunk, y chunk)` pairs."""
        check_precision(precision)  # before the first chunk: a stream of none would not reach `of`
        parts = (cls.of(x, y, device, precision) for x, y in chunks)
        return merge_nonempty(parts, FitError("No samples to fit on."))

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of rows (Chan, Golub & LeVeque's pairwise update)."""
        if self.cxy.shape != other.cxy.shape:
            raise FitError(f"Cannot merge moments of shapes {self.cxy.shape} and {other.cxy.shape}.")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        dx, dy = other.mx - self.mx, other.my - self.my
        weight = self.n * other.n / n
        return Moments(
            n,
            self.mx + dx * (other.n / n),
            self.my + dy * (other.n / n),
            add_outer(self.cxx + other.cxx, weight, dx, dx),
            add_outer(self.cxy + other.cxy, weight, dx, dy),
            self.tyy + other.tyy + weight * float(dy @ dy),
            max(self.roundoff, other.roundoff),
        )

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means `(mx (Dx,), my (Dy,))` and centred scatter matrices `Cxx (Dx, Dx)`, `Cxy (Dx, Dy)`."""
        return self.mx, self.my, self.cxx, self.cxy

    def squared_error(self, weight: np.ndarray, bias: np.ndarray) -> float:
        """`sum ||W x + b - y||^2` over the rows, from the moments alone (W (Dy, Dx), b (Dy,)):
        `tr(W Cxx W^T) - 2 tr(W Cxy) + tyy + n ||W mx + b - my||^2`."""
        w = np.asarray(weight, dtype=np.float64)
        offset = w @ self.mx + np.asarray(bias, dtype=np.float64) - self.my
        quad = float(np.sum((w @ self.cxx) * w))  # one BLAS product: einsum's own loop took 4 s at 1024 x 1280
        linear = float(np.einsum("ij,ji->", w, self.cxy))
        return quad - 2 * linear + self.tyy + self.n * float(offset @ offset)
