"""`GramStats` in parts: each model's own sums (`SideStats`), computed once per model and collection, and the
sums that need both models (`CrossStats`), computed for each pair (netrep's `partial_fit` / `finalize_fit`).

With N models, the N (N - 1) / 2 pairs of a run need N self-scatters (D x D), not N (N - 1): `SideCache` keeps
them. Both parts are centred on the rows' own means and merge exactly (Chan, Golub and LeVeque's update extended
to third and fourth moments, as `GramStats.merge`); `GramStats.join` puts a pair together.

Every part is computed the same way whatever pair it serves (a model's own sums in blocks of its own width), so
a model's statistics, and every map and measure from them, do not depend on which other models a run holds.
On a device other than the CPU (`device="cuda"`), or with `torch_device` on the CPU, the parts are computed with
torch in float64 throughout (`featswap.mapping.device`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from featswap.errors import DataError
from featswap.mapping.products import Centring, add_outer, block_rows, paired_blocks, roundoff, row_blocks, wider

#: False computes each model's own statistics again for every pair, as featswap did before `SideCache`
#: (`benchmarks/evaluate.py --no-side-cache` measures the difference); never set in featswap itself.
CACHE_SIDES = True


def _precision_dtype(precision: str, *arrays: np.ndarray) -> np.dtype:
    if precision == "float64" or any(a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


@dataclass(frozen=True)
class SideStats:
    """One model's own centred sums over rows `x` `(D,)`, float64: `n`, `mean` `(D,)`, `scatter = sum u u^T`
    `(D, D)` with `u = x - mean`, and with `a_i = ||u_i||^2`: `saa = sum a^2`, `xa = sum u a` `(D,)`."""

    n: int
    mean: np.ndarray
    scatter: np.ndarray
    saa: float
    xa: np.ndarray
    roundoff: float = 2.0**-53

    @classmethod
    def zeros(cls, d: int) -> SideStats:
        return cls(0, np.zeros(d), np.zeros((d, d)), 0.0, np.zeros(d))

    @classmethod
    def of(cls, x: np.ndarray, precision: str = "float64", device: str = "cpu") -> SideStats:
        """Sums of the rows `x` `(n, D)` centred on their mean; products in `precision` ("float32": float32
        features multiplied in float32, added up in float64) on the CPU, in float64 with torch elsewhere."""
        if len(x) == 0:
            return cls.zeros(x.shape[1])
        if device != "cpu":
            from featswap.mapping.device import side_sums

            return cls(len(x), *side_sums(x, device))
        return cls._of_numpy(x, _precision_dtype(precision, x))

    @classmethod
    def _of_numpy(cls, x: np.ndarray, dtype: np.dtype) -> SideStats:
        d = x.shape[1]
        centring = Centring.of(x, dtype)
        rows = min(len(x), block_rows(d, dtype))
        buffer = np.empty((rows, d), dtype)
        scatter, xa, saa = np.zeros((d, d)), np.zeros(d), 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below
            for r in row_blocks(len(x), rows):
                u = centring.deviations(x[r], buffer)
                scatter += u.T @ u  # BLAS syrk: half the work of a general product
                a = np.einsum("ij,ij->i", u, u, dtype=np.float64)
                saa += float(a @ a)
                xa += u.T @ a.astype(dtype)
        stats = cls(len(x), centring.mean, scatter, saa, xa, roundoff(dtype))
        if not (np.isfinite(scatter).all() and np.isfinite(xa).all() and np.isfinite(saa)):
            return cls._of_numpy(x, wider(dtype))
        return stats

    @property
    def trace(self) -> float:
        """`sum a_i`, the trace of the scatter."""
        return float(np.trace(self.scatter))

    def merge(self, other: SideStats) -> SideStats:
        """The sums of both sets of rows, about their joint mean."""
        if self.scatter.shape != other.scatter.shape:
            raise DataError(f"Cannot merge statistics of widths {len(self.mean)} and {len(other.mean)}.")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        mean = self.mean + (other.mean - self.mean) * (other.n / n)
        (saa_1, xa_1), (saa_2, xa_2) = self._about(mean), other._about(mean)
        delta = other.mean - self.mean
        scatter = add_outer(self.scatter + other.scatter, self.n * other.n / n, delta, delta)
        return SideStats(n, mean, scatter, saa_1 + saa_2, xa_1 + xa_2, max(self.roundoff, other.roundoff))

    def _about(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        """`(saa, xa)` about `point` instead of this part's mean (`GramStats._about`, one side)."""
        n, d = self.n, point - self.mean
        dd, sa, c_d = float(d @ d), self.trace, self.scatter @ d
        saa = self.saa + 4 * float(d @ c_d) + n * dd**2 - 4 * float(d @ self.xa) + 2 * dd * sa
        return saa, self.xa - 2 * c_d - d * sa - n * dd * d


@dataclass(frozen=True)
class CrossStats:
    """The sums of a pair of models' rows that need both, float64: `n`, means `mx` `(D1,)`, `my` `(D2,)`,
    `sa = sum a`, `sb = sum b`, `cxy = sum u v^T` `(D1, D2)`, `sab = sum a b`, `xb = sum u b` `(D1,)`,
    `ya = sum v a` `(D2,)` (notation of `GramStats`)."""

    n: int
    mx: np.ndarray
    my: np.ndarray
    sa: float
    sb: float
    cxy: np.ndarray
    sab: float
    xb: np.ndarray
    ya: np.ndarray
    roundoff: float = 2.0**-53

    @classmethod
    def zeros(cls, d1: int, d2: int) -> CrossStats:
        return cls(0, np.zeros(d1), np.zeros(d2), 0.0, 0.0, np.zeros((d1, d2)), 0.0, np.zeros(d1), np.zeros(d2))

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, precision: str = "float64", device: str = "cpu") -> CrossStats:
        """Sums of paired rows `x` `(n, D1)`, `y` `(n, D2)`, each centred on its mean (as `SideStats.of`)."""
        if len(x) == 0:
            return cls.zeros(x.shape[1], y.shape[1])
        if device != "cpu":
            from featswap.mapping.device import cross_sums

            return cls(len(x), *cross_sums(x, y, device))
        return cls._of_numpy(x, y, _precision_dtype(precision, x, y))

    @classmethod
    def _of_numpy(cls, x: np.ndarray, y: np.ndarray, dtype: np.dtype) -> CrossStats:
        mx, my, blocks = paired_blocks(x, y, dtype)
        cxy, xb, ya = np.zeros((x.shape[1], y.shape[1])), np.zeros(x.shape[1]), np.zeros(y.shape[1])
        sa = sb = sab = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below
            for u, v in blocks:
                cxy += u.T @ v
                a = np.einsum("ij,ij->i", u, u, dtype=np.float64)
                b = np.einsum("ij,ij->i", v, v, dtype=np.float64)
                sa, sb, sab = sa + float(a.sum()), sb + float(b.sum()), sab + float(a @ b)
                xb += u.T @ b.astype(dtype)
                ya += v.T @ a.astype(dtype)
        stats = cls(len(x), mx, my, sa, sb, cxy, sab, xb, ya, roundoff(dtype))
        if not all(np.isfinite(p).all() for p in (cxy, xb, ya, (sa, sb, sab))):
            return cls._of_numpy(x, y, wider(dtype))
        return stats

    def merge(self, other: CrossStats) -> CrossStats:
        """The sums of both sets of rows, about their joint means."""
        if self.cxy.shape != other.cxy.shape:
            raise DataError(f"Cannot merge statistics of shapes {self.cxy.shape} and {other.cxy.shape}.")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        mx = self.mx + (other.mx - self.mx) * (other.n / n)
        my = self.my + (other.my - self.my) * (other.n / n)
        (sa_1, sb_1, sab_1, xb_1, ya_1), (sa_2, sb_2, sab_2, xb_2, ya_2) = self._about(mx, my), other._about(mx, my)
        dx, dy = other.mx - self.mx, other.my - self.my
        cxy = add_outer(self.cxy + other.cxy, self.n * other.n / n, dx, dy)
        roundoff_ = max(self.roundoff, other.roundoff)
        return CrossStats(n, mx, my, sa_1 + sa_2, sb_1 + sb_2, cxy, sab_1 + sab_2, xb_1 + xb_2, ya_1 + ya_2, roundoff_)

    def _about(self, mx: np.ndarray, my: np.ndarray) -> tuple[float, float, float, np.ndarray, np.ndarray]:
        """`(sa, sb, sab, xb, ya)` about the points `mx`, `my` (`GramStats._about`, the cross terms)."""
        n, d, e = self.n, mx - self.mx, my - self.my
        dd, ee = float(d @ d), float(e @ e)
        cxy_e, cyx_d = self.cxy @ e, self.cxy.T @ d
        sab = (self.sab - 2 * float(e @ self.ya) + ee * self.sa - 2 * float(d @ self.xb) + 4 * float(d @ cxy_e)
               + dd * self.sb + n * dd * ee)  # fmt: skip
        return (
            self.sa + n * dd,
            self.sb + n * ee,
            sab,
            self.xb - 2 * cxy_e - d * self.sb - n * ee * d,
            self.ya - 2 * cyx_d - e * self.sa - n * dd * e,
        )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SideCache(Generic[K, V]):
    """Each model's own statistics, computed once per key (model, collection, split...) and read by every pair;
    `computed` counts those computed (N for N models, where every pair computing its own would make N (N - 1))."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self.computed = 0

    def __contains__(self, key: K) -> bool:
        return CACHE_SIDES and key in self._values

    def __getitem__(self, key: K) -> V:
        return self._values[key]

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._values))

    def put(self, key: K, value: V) -> None:
        self.computed += 1
        self._values[key] = value


P = TypeVar("P", SideStats, CrossStats)


def merge_parts(parts: Iterable[P | None]) -> P | None:
    """The merge of a stream of parts (None where a stream has none: a side that was not asked for)."""
    total: P | None = None
    for part in parts:
        if part is not None:
            total = part if total is None else total.merge(part)
    return total
