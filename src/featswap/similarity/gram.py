"""`GramStats`: centred, mergeable sums of a pair of feature sets, from which CKA (plain and debiased),
Procrustes, CCA and SVCCA follow without any N x N kernel, and the least-squares moments of both directions.

One pass over a pair's rows gives all of them: the experiment computes it once per unordered pair of models and
collection, and every symmetric similarity measure and every closed-form solver, in both directions, reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from featswap.errors import DataError
from featswap.mapping.moments import Moments, merge_nonempty
from featswap.mapping.paired import check_paired, refuse_nonfinite
from featswap.mapping.products import (
    Shift,
    add_outer,
    check_conditioning,
    check_precision,
    compute_dtype,
    normed_blocks,
    roundoff,
    wider,
)
from featswap.similarity.parts import CrossStats, SideStats

#: A chunk's parts: each model's own sums (None where not asked for) and the pair's cross sums.
Parts = tuple[SideStats | None, SideStats | None, CrossStats]

RCOND = 1e-10
_NO_ROWS = DataError("No samples to compare.")


@dataclass(frozen=True)
class _Shifted:
    """Sums over rows of deviations `w` `(D1,)`, `z` `(D2,)` from points `r`, `q` away from the means, each with its
    squared norm `alpha = ||w||^2`, `beta = ||z||^2` as one more column (`GramStats.of`), multiplied by the powers of
    two `scales` (`Shift.norm_scale`): `s = sum [w, alpha] [w, alpha]^T` `(D1 + 1, D1 + 1)`, `t = sum [z, beta]
    [z, beta]^T` `(D2 + 1, D2 + 1)`, `p = sum [w, alpha] [z, beta]^T` `(D1 + 1, D2 + 1)`; and `sums` = (sum alpha,
    sum beta, sum alpha^2, sum beta^2, sum alpha beta) from the norms in float64 (the matrices' last entries hold
    the last three from the rounded norms, and are not read)."""

    n: int
    r: np.ndarray
    q: np.ndarray
    s: np.ndarray
    t: np.ndarray
    p: np.ndarray
    sums: np.ndarray
    #: The powers of two the norm columns were multiplied by (`Shift.norm_scale`).
    scales: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class GramStats:
    """Centred sums over rows of `x` (D1,) and `y` (D2,), float64, enough for CKA (plain and debiased),
    Procrustes, CCA and SVCCA.

    With `u_i = x_i - mx`, `v_i = y_i - my` (deviations from the means of these rows) and their squared
    norms `a_i = ||u_i||^2`, `b_i = ||v_i||^2`: `n`; means `mx`, `my`; scatter `cxx = sum u u^T`,
    `cyy = sum v v^T`, `cxy = sum u v^T`; for the unbiased HSIC `saa = sum a^2`, `sbb = sum b^2`,
    `sab = sum a b` and the vectors `xa = sum u a`, `xb = sum u b`, `ya = sum v a`, `yb = sum v b`.
    Chunks are merged exactly by moving each chunk's sums to the merged means (`_about`), the pairwise
    update of Chan, Golub and LeVeque extended to these third and fourth moments.
    """

    n: int
    mx: np.ndarray
    my: np.ndarray
    cxx: np.ndarray
    cyy: np.ndarray
    cxy: np.ndarray
    saa: float
    sbb: float
    sab: float
    xa: np.ndarray
    xb: np.ndarray
    ya: np.ndarray
    yb: np.ndarray
    #: Unit roundoff of the products these sums were made of (`featswap.mapping.products.roundoff`).
    roundoff: float = 2.0**-53

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu", precision: str = "float64") -> GramStats:
        """Stats of one chunk of rows `x` (n, D1), `y` (n, D2), about the chunk's own means, in blocks of rows
        whose products are added up in float64 (`featswap.mapping.products.normed_blocks`: each block shifted by
        a point near the means in one pass, the sums corrected exactly afterwards by `_shifted_to_means`).
        `precision="float32"` multiplies float32 features in float32 (the BLAS fast path; CCA, SVCCA and a
        Procrustes distance below about 0.5 may then raise `PrecisionError`); the default, float64.
        On another device than the CPU (a torch device: "cuda", or "cpu:0" for torch on the CPU), in float64
        there (`featswap.mapping.device`)."""
        x, y = check_paired(x, y, finite=device != "cpu")  # on the CPU, NaN or inf is refused from the products
        if len(x) == 0:
            return cls.zeros(x.shape[1], y.shape[1])
        if device != "cpu":
            return cls._of_on(x, y, device)
        return cls._of_cpu(x, y, compute_dtype(x, y, precision=precision))

    @classmethod
    def _of_cpu(
        cls, x: np.ndarray, y: np.ndarray, dtype: np.dtype, shifts: tuple[Shift, Shift] | None = None
    ) -> GramStats:
        """`of` on the CPU for validated rows `x` (n, D1), `y` (n, D2), n >= 1, with products in `dtype`; about the
        `shifts` given (a second pass), else about points sampled near the means (`Shift.of`)."""
        d1, d2 = x.shape[1] + 1, y.shape[1] + 1  # each row's squared norm rides as one more column
        s, t, p = np.zeros((d1, d1)), np.zeros((d2, d2)), np.zeros((d1, d2))
        sums = np.zeros(5)  # sum alpha, sum beta, sum alpha^2, sum beta^2, sum alpha beta
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below, with its own message
            shift_x, shift_y, blocks = normed_blocks(x, y, dtype, shifts)
            for w, z, a, b in blocks:  # [deviations, squared norm] from points `residual` away from the means
                s += w.T @ w  # numpy calls BLAS syrk for an array times its own transpose: half the work
                t += z.T @ z
                p += w.T @ z
                sums += (a.sum(), b.sum(), a @ a, b @ b, a @ b)  # float64: debiased CKA cancels them (D > n)
            scales = (shift_x.norm_scale or 1.0, shift_y.norm_scale or 1.0)
            shifted = _Shifted(len(x), shift_x.residual, shift_y.residual, s, t, p, sums, scales)
            stats = cls._shifted_to_means(shifted, shift_x.mean, shift_y.mean, roundoff(dtype))
        if not stats.finite():
            refuse_nonfinite(x, y)  # NaN or inf in the features, else an overflow of products in `dtype`
            return cls._of_cpu(x, y, wider(dtype))
        if shifts is None and (shift_x.far(np.diag(stats.cxx)) or shift_y.far(np.diag(stats.cyy))):
            return cls._of_cpu(x, y, dtype, (shift_x.exact(), shift_y.exact()))  # a second pass, about the means
        return stats

    @classmethod
    def _shifted_to_means(cls, h: _Shifted, mx: np.ndarray, my: np.ndarray, unit_roundoff: float) -> GramStats:
        """The stats about the means from sums of deviations `w = u + r`, `z = v + q` from points `r`, `q` away
        from them (`u`, `v` the deviations from the means, summing to 0; `alpha = ||w||^2`, `beta = ||z||^2`).
        With `rho = r.r`, `sigma = q.q`: `a = alpha - 2 w.r + rho`, so that `C = S - n r r^T`,
        `sum u a = sum w alpha - 2 S r - r sum alpha + 2 n rho r`, `sum a^2 = sum alpha^2 + 4 r^T S r -
        4 r.sum w alpha + 2 rho sum alpha - 3 n rho^2`, and for the cross terms `sum a b = sum alpha beta -
        2 q.sum z alpha - 2 r.sum w beta + 4 r^T P q + sigma sum alpha + rho sum beta - 3 n rho sigma`
        (`P = sum w z^T`). Exact algebra in float64: `r` and `q` are small beside the spread (`Shift`: usually
        about 1/64 of it, never more than a quarter, or `_of_cpu` computes again about the means), so the
        deviations' products are nearly as precise as the centred ones and the corrections add no error of their
        own."""
        n, r, q = h.n, h.r, h.q
        d1, d2, rho, sigma = len(r), len(q), float(r @ r), float(q @ q)
        s_alpha, s_beta, s_aa, s_bb, s_ab = (float(v) for v in h.sums)
        s, t, p = (np.ascontiguousarray(m) for m in (h.s[:d1, :d1], h.t[:d2, :d2], h.p[:d1, :d2]))
        kx, ky = h.scales  # exact powers of two: dividing by them undoes the columns' scaling exactly
        w_alpha, z_beta, w_beta, z_alpha = h.s[:d1, d1] / kx, h.t[:d2, d2] / ky, h.p[:d1, d2] / ky, h.p[d1, :d2] / kx
        s_r, t_q, p_q, pt_r = s @ r, t @ q, p @ q, p.T @ r
        cxx, cyy, cxy = add_outer(s, -n, r, r), add_outer(t, -n, q, q), add_outer(p, -n, r, q)
        saa = s_aa + 4 * float(r @ s_r) - 4 * float(r @ w_alpha) + 2 * rho * s_alpha - 3 * n * rho**2
        sbb = s_bb + 4 * float(q @ t_q) - 4 * float(q @ z_beta) + 2 * sigma * s_beta - 3 * n * sigma**2
        sab = (s_ab - 2 * float(q @ z_alpha) - 2 * float(r @ w_beta) + 4 * float(r @ p_q) + sigma * s_alpha
               + rho * s_beta - 3 * n * rho * sigma)  # fmt: skip
        xa = w_alpha - 2 * s_r - r * s_alpha + 2 * n * rho * r
        xb = w_beta - 2 * p_q - r * s_beta + 2 * n * sigma * r
        ya = z_alpha - 2 * pt_r - q * s_alpha + 2 * n * rho * q
        yb = z_beta - 2 * t_q - q * s_beta + 2 * n * sigma * q
        return cls(n, mx, my, cxx, cyy, cxy, saa, sbb, sab, xa, xb, ya, yb, unit_roundoff)

    def finite(self) -> bool:
        """Whether every sum is finite (products in a narrow dtype can overflow where the features do not)."""
        parts = (self.cxx, self.cyy, self.cxy, self.xa, self.xb, self.ya, self.yb, (self.saa, self.sbb, self.sab))
        return all(bool(np.isfinite(p).all()) for p in parts)

    @classmethod
    def _of_on(cls, x: np.ndarray, y: np.ndarray, device: str) -> GramStats:
        """Stats of a chunk computed in float64 with torch on `device` (`featswap.mapping.device`)."""
        sides = SideStats.of(x, device=device), SideStats.of(y, device=device)
        return cls.join(*sides, CrossStats.of(x, y, device=device))

    @classmethod
    def join(cls, x: SideStats, y: SideStats, cross: CrossStats) -> GramStats:
        """The stats of a pair from each model's own sums `x`, `y` and the pair's `cross` sums, all of the same
        rows (`featswap.similarity.parts`)."""
        if not x.n == y.n == cross.n or not (_same(x.mean, cross.mx) and _same(y.mean, cross.my)):
            raise DataError(
                f"Cannot join statistics of different rows ({x.n}, {y.n} and {cross.n} rows, or other means)."
            )
        roundoff = max(x.roundoff, y.roundoff, cross.roundoff)
        return cls(cross.n, cross.mx, cross.my, x.scatter, y.scatter, cross.cxy, x.saa, y.saa, cross.sab,
                   x.xa, cross.xb, cross.ya, y.xa, roundoff)  # fmt: skip

    @classmethod
    def zeros(cls, d1: int, d2: int) -> GramStats:
        """The stats of no rows (the identity of `merge`)."""
        z1, z2 = np.zeros(d1), np.zeros(d2)
        return cls(0, z1, z2, np.zeros((d1, d1)), np.zeros((d2, d2)), np.zeros((d1, d2)), 0.0, 0.0, 0.0,
                   z1, z1, z2, z2)  # fmt: skip

    @classmethod
    def accumulate(
        cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], device: str = "cpu", precision: str = "float64"
    ) -> GramStats:
        check_precision(precision)  # before the first chunk: a stream of none would not reach `of`
        return merge_nonempty((cls.of(x, y, device, precision) for x, y in chunks), _NO_ROWS)

    def _about(self, mx: np.ndarray, my: np.ndarray) -> tuple[Any, ...]:
        """These rows' third and fourth moments taken about the points `mx`, `my` instead of their own means:
        with `d = mx - self.mx`, `e = my - self.my`, each row's deviation becomes `u - d` (and `v - e`), so
        `sum (u - d) = -n d`, `a_i` becomes `a_i - 2 u_i.d + |d|^2`, and so on; the terms in `sum u` vanish.
        Returns `(saa, sbb, sab, xa, xb, ya, yb)` about the new points (the scatter matrices are merged by
        `merge` with one rank-1 update each)."""
        n, d, e = self.n, mx - self.mx, my - self.my
        dd, ee = float(d @ d), float(e @ e)
        sa, sb = float(np.trace(self.cxx)), float(np.trace(self.cyy))
        cxx_d, cyy_e, cxy_e, cyx_d = self.cxx @ d, self.cyy @ e, self.cxy @ e, self.cxy.T @ d
        return (
            self.saa + 4 * float(d @ cxx_d) + n * dd**2 - 4 * float(d @ self.xa) + 2 * dd * sa,
            self.sbb + 4 * float(e @ cyy_e) + n * ee**2 - 4 * float(e @ self.yb) + 2 * ee * sb,
            self.sab - 2 * float(e @ self.ya) + ee * sa - 2 * float(d @ self.xb) + 4 * float(d @ cxy_e)
            + dd * sb + n * dd * ee,
            self.xa - 2 * cxx_d - d * sa - n * dd * d,
            self.xb - 2 * cxy_e - d * sb - n * ee * d,
            self.ya - 2 * cyx_d - e * sa - n * dd * e,
            self.yb - 2 * cyy_e - e * sb - n * ee * e,
        )  # fmt: skip

    def merge(self, other: GramStats) -> GramStats:
        """The stats of both sets of rows, centred on their joint means."""
        if self.cxy.shape != other.cxy.shape:
            raise DataError(f"Cannot merge stats of shapes {self.cxy.shape} and {other.cxy.shape}.")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        mx = self.mx + (other.mx - self.mx) * (other.n / n)
        my = self.my + (other.my - self.my) * (other.n / n)
        mine, theirs = self._about(mx, my), other._about(mx, my)
        # Chan's update of the scatter matrices: both parts' scatter plus that of the difference of their means.
        dx, dy, weight = other.mx - self.mx, other.my - self.my, self.n * other.n / n
        cxx = add_outer(self.cxx + other.cxx, weight, dx, dx)
        cyy = add_outer(self.cyy + other.cyy, weight, dy, dy)
        cxy = add_outer(self.cxy + other.cxy, weight, dx, dy)
        saa, sbb, sab, xa, xb, ya, yb = (a + b for a, b in zip(mine, theirs, strict=True))
        roundoff = max(self.roundoff, other.roundoff)
        return GramStats(n, mx, my, cxx, cyy, cxy, saa, sbb, sab, xa, xb, ya, yb, roundoff)

    def moments(self, swapped: bool = False) -> Moments:
        """The least-squares moments of the map x -> y (or, `swapped`, y -> x), with no further pass."""
        if swapped:
            return Moments(self.n, self.my, self.mx, self.cyy, self.cxy.T, float(np.trace(self.cxx)), self.roundoff)
        return Moments(self.n, self.mx, self.my, self.cxx, self.cxy, float(np.trace(self.cyy)), self.roundoff)

    # -- centred covariances -------------------------------------------------------------------------
    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centred scatter matrices `Cxx (D1, D1)`, `Cyy (D2, D2)`, `Cxy (D1, D2)`."""
        return self.cxx, self.cyy, self.cxy

    # -- measures ------------------------------------------------------------------------------------
    def linear_cka(self) -> float:
        """`||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)` (Kornblith et al. 2019), from D x D matrices only."""
        return linear_cka_of(*self.centred())

    @staticmethod
    def _hsic_unbiased(n: int, cross: np.ndarray, sab: float, sa: float, sb: float) -> float:
        """The unbiased HSIC estimator (Song et al. 2012) of linear kernels K = X X^T, L = Y Y^T on centred
        rows (it is invariant to shifting either side), expanded into feature-space sums: with K~, L~ the
        kernels without their diagonals, tr(K~L~) = ||Cxy||_F^2 - sum a_i b_i, 1^T K~ 1 = -sum a_i,
        1^T L~ 1 = -sum b_i and 1^T K~ L~ 1 = sum a_i b_i (the row sums of centred rows vanish)."""
        tr = float((cross**2).sum()) - sab
        return (tr + sa * sb / ((n - 1) * (n - 2)) - 2.0 * sab / (n - 2)) / (n * (n - 3))

    def debiased_cka(self) -> float:
        """CKA from unbiased HSIC estimates: near 0 for independent features even when D > N."""
        if self.n < 4:
            raise DataError(f"debiased_cka needs at least 4 samples; got {self.n}.")
        sa, sb = float(np.trace(self.cxx)), float(np.trace(self.cyy))
        hxy = self._hsic_unbiased(self.n, self.cxy, self.sab, sa, sb)
        hxx = self._hsic_unbiased(self.n, self.cxx, self.saa, sa, sa)
        hyy = self._hsic_unbiased(self.n, self.cyy, self.sbb, sb, sb)
        if hxx <= 0 or hyy <= 0:
            raise DataError("debiased_cka is undefined: one feature set has no variance beyond its mean.")
        return hxy / float(np.sqrt(hxx * hyy))

    def procrustes(self) -> float:
        """Orthogonal Procrustes distance of centred, unit-Frobenius-norm features (zero-padding the
        narrower side): `sqrt(2 - 2 ||Cxy||_* / sqrt(tr Cxx tr Cyy))`, 0 for a rotated copy. Raises
        `PrecisionError` when the stats are of float32 products and the distance is small (`procrustes_of`)."""
        return procrustes_of(*self.centred(), self.roundoff)

    def canonical_correlations(self, k: int | None = None) -> np.ndarray:
        """Canonical correlations, descending; with `k`, of the top-`k` principal directions of each side
        (SVCCA). Directions of (numerically) zero variance are dropped, so duplicated or constant features
        do not produce NaN. Raises `PrecisionError` when the whitening's condition number makes float32 products
        too coarse (recompute with `precision="float64"`)."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise DataError(f"svcca keeps the top k principal directions of each side; k must be >= 1, got {k!r}.")
        cxx, cyy, cxy = self.centred()
        wx, wy = _whitener(cxx, k, self.roundoff), _whitener(cyy, k, self.roundoff)
        if wx.shape[1] == 0 or wy.shape[1] == 0:
            raise DataError("CCA is undefined: one feature set has no variance.")
        rx, ry = wx.shape[1], wy.shape[1]
        if rx + ry > self.n - 1:
            # Centred rows span at most n - 1 dimensions: past that the two subspaces must share
            # rx + ry - (n - 1) directions, whose canonical correlations are 1 whatever the features.
            raise DataError(
                f"CCA is undefined here: {self.n} rows span at most {self.n - 1} centred dimensions, fewer than "
                f"the {rx} + {ry} the two feature sets use, so {rx + ry - self.n + 1} canonical correlations are 1 "
                "by construction. Use more rows than both widths together, or svcca with a smaller k."
            )
        return np.clip(np.linalg.svd(wx.T @ cxy @ wy, compute_uv=False), 0.0, 1.0)

    def cca_mean(self) -> float:
        return float(self.canonical_correlations().mean())

    def svcca(self, k: int = 20) -> float:
        return float(self.canonical_correlations(k).mean())


def chunk_split_gram(
    x: np.ndarray, y: np.ndarray, start: int, device: str, n: int, holdout: float, seed: int, precision: str = "float64"
) -> tuple[GramStats, GramStats]:
    """`GramStats` of one chunk's fitting rows and of its held-out rows (`split_rows(n, holdout, seed)`; a
    `ChunkFn`, so that a worker of a cluster rebuilds the mask from these few numbers). The fitting step's
    statistics default to float64 products: every closed-form solver of both directions reads them, and
    least-squares weights amplify rounding by the condition number of the source's scatter."""
    from featswap.rows import held_out_mask

    try:
        mask = held_out_mask(n, holdout, seed)[start : start + len(x)]
    except DataError:  # too few rows to hold any out: all fit (a solver that needs held-out rows says so)
        mask = np.zeros(len(x), dtype=bool)
    return GramStats.of(x[~mask], y[~mask], device, precision), GramStats.of(x[mask], y[mask], device, precision)


def chunk_split_parts(
    x: np.ndarray,
    y: np.ndarray,
    start: int,
    device: str,
    n: int,
    holdout: float,
    seed: int,
    sides: tuple[bool, bool] = (True, True),
    precision: str = "float64",
) -> tuple[Parts, Parts]:
    """The parts (`featswap.similarity.parts`) of one chunk's fitting rows and of its held-out rows, as
    `chunk_split_gram`: `(x's own sums or None, y's own sums or None, cross sums)` each, a model's own sums only
    where `sides` asks for them (a `ChunkFn`)."""
    from featswap.mapping.solvers.lstsq import held_out_mask

    x, y = check_paired(x, y)
    try:
        mask = held_out_mask(n, holdout, seed)[start : start + len(x)]
    except DataError:  # too few rows to hold any out: all fit (a solver that needs held-out rows says so)
        mask = np.zeros(len(x), dtype=bool)

    def parts(rows: np.ndarray) -> Parts:
        xs, ys = x[rows], y[rows]
        return (
            SideStats.of(xs, precision, device) if sides[0] else None,
            SideStats.of(ys, precision, device) if sides[1] else None,
            CrossStats.of(xs, ys, precision, device),
        )

    return parts(~mask), parts(mask)


def chunk_gram_stats(x: np.ndarray, y: np.ndarray, start: int, device: str) -> GramStats:
    """`GramStats` of one chunk (a `featswap.mapping.paired.ChunkFn`)."""
    return GramStats.of(x, y, device)


def linear_cka_of(cxx: np.ndarray, cyy: np.ndarray, cxy: np.ndarray) -> float:
    """Linear CKA `||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)` of centred scatter matrices `(D1, D1)`, `(D2, D2)`,
    `(D1, D2)`."""
    return _ratio(float((cxy**2).sum()), float(np.linalg.norm(cxx) * np.linalg.norm(cyy)), "linear_cka")


def procrustes_of(cxx: np.ndarray, cyy: np.ndarray, cxy: np.ndarray, unit_roundoff: float = 2.0**-53) -> float:
    """Procrustes distance `d = sqrt(2 - 2 s)`, `s = ||Cxy||_* / sqrt(tr Cxx tr Cyy)`, of centred scatter matrices.

    A rounding error `e` in `s` moves `d` by about `e / d`, a relative error of `e / d^2`: near 0 the square root
    amplifies it (float32 products put identical features 2e-4 apart). Raises `PrecisionError` when `1 / d^2`,
    as a condition number, is too large for products of `unit_roundoff` (distances below about 0.5 from float32
    products)."""
    scale = float(np.sqrt(np.trace(cxx) * np.trace(cyy)))
    nuclear = float(np.linalg.svd(cxy, compute_uv=False).sum())
    similarity = _ratio(nuclear, scale, "procrustes")
    squared = max(0.0, 2.0 - 2.0 * min(similarity, 1.0))
    check_conditioning(1.0 / max(squared, np.finfo(np.float64).tiny), unit_roundoff, "procrustes distance")
    return float(np.sqrt(squared))


def _ratio(numerator: float, denominator: float, measure: str) -> float:
    return numerator / denominator if denominator > 0 else constant_refusal(measure)


def _whitener(cov: np.ndarray, k: int | None, unit_roundoff: float = 2.0**-53) -> np.ndarray:
    """`W` (D, r) with `W^T cov W = I` on the kept principal directions (the top `k`, or all non-null); raises
    `PrecisionError` when their condition number is too large for products of `unit_roundoff`."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > RCOND * max(float(values[0]), np.finfo(np.float64).tiny) if len(values) else values > 0
    if k is not None:
        keep &= np.arange(len(values)) < k
    if keep.any():
        check_conditioning(float(values[0] / values[keep][-1]), unit_roundoff, "canonical correlations")
    return vectors[:, keep] / np.sqrt(values[keep])


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two means of the same rows agree (to rounding: computed by the same code, they are equal)."""
    return bool(np.allclose(a, b, rtol=1e-12, atol=1e-12 * float(np.abs(b).max(initial=1.0))))


def constant_refusal(measure: str) -> NoReturn:
    raise DataError(f"{measure} is undefined: one feature set is constant (zero variance).")
