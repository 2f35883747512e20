"""Representational similarity measures, computed from the same stored features as the swap test.

One function per measure, `featswap.similarity.<name>(X, Y) -> float` for `X` `(N, D1)` and `Y` `(N, D2)`
with the same rows (images). All but `mutual_knn` and `map_r2` come from feature-space sums (`D x D`,
float64), never from `N x N` kernels, and have a streaming form: `GramStats` accumulates row chunks (or
merges workers' stats) and gives the same values.

| name | range | more similar | symmetric |
|---|---|---|---|
| `linear_cka` | 0..1 | higher | yes |
| `debiased_cka` | about -1..1 (near 0 for unrelated features) | higher | yes |
| `procrustes` | 0..sqrt(2) (distance of centred, unit-norm features after the best rotation) | lower | yes |
| `cca_mean` | 0..1 (mean canonical correlation) | higher | yes |
| `svcca` | 0..1 (mean canonical correlation of the top `k` principal directions of each) | higher | yes |
| `mutual_knn` | 0..1 (shared fraction of the `k` nearest neighbours, cosine) | higher | yes |
| `map_r2` | -inf..1 (R^2 of an affine map X -> Y on held-out rows) | higher | no |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch

from featswap.errors import DataError
from featswap.mapping.moments import as_float64, merge_nonempty, symmetric
from featswap.mapping.paired import check_paired

#: Each measure: (range, which way is more similar, symmetric).
MEASURES = {
    "linear_cka": ("0..1", "higher", True),
    "debiased_cka": ("about -1..1", "higher", True),
    "procrustes": ("0..sqrt(2)", "lower", True),
    "cca_mean": ("0..1", "higher", True),
    "svcca": ("0..1", "higher", True),
    "mutual_knn": ("0..1", "higher", True),
    "map_r2": ("-inf..1", "higher", False),
}
RCOND = 1e-10


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

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> GramStats:
        """Stats of one chunk of rows `x` (n, D1), `y` (n, D2), centred on the chunk's own means."""
        x, y = check_paired(x, y)
        if len(x) == 0:
            raise DataError("No samples to compare.")
        tx, ty = as_float64(x, device), as_float64(y, device)
        mx, my = tx.mean(0), ty.mean(0)
        u, v = tx - mx, ty - my
        a, b = (u * u).sum(1), (v * v).sum(1)

        def np_(t: torch.Tensor) -> np.ndarray:
            return t.cpu().numpy()

        return cls(
            len(x), np_(mx), np_(my), np_(symmetric(u.T @ u)), np_(symmetric(v.T @ v)), np_(u.T @ v),
            float(a @ a), float(b @ b), float(a @ b), np_(u.T @ a), np_(u.T @ b), np_(v.T @ a), np_(v.T @ b),
        )  # fmt: skip

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], device: str = "cpu") -> GramStats:
        return merge_nonempty((cls.of(x, y, device) for x, y in chunks), DataError("No samples to compare."))

    def _about(self, mx: np.ndarray, my: np.ndarray) -> tuple[Any, ...]:
        """These rows' sums taken about the points `mx`, `my` instead of their own means: with
        `d = mx - self.mx`, `e = my - self.my`, each row's deviation becomes `u - d` (and `v - e`), so
        `sum (u - d) = -n d`, `a_i` becomes `a_i - 2 u_i.d + |d|^2`, and so on; the terms in `sum u` vanish.
        Returns `(cxx, cyy, cxy, saa, sbb, sab, xa, xb, ya, yb)` about the new points."""
        n, d, e = self.n, mx - self.mx, my - self.my
        dd, ee = float(d @ d), float(e @ e)
        sa, sb = float(np.trace(self.cxx)), float(np.trace(self.cyy))
        cxx_d, cyy_e, cxy_e, cyx_d = self.cxx @ d, self.cyy @ e, self.cxy @ e, self.cxy.T @ d
        return (
            self.cxx + n * np.outer(d, d),
            self.cyy + n * np.outer(e, e),
            self.cxy + n * np.outer(d, e),
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
        n = self.n + other.n
        mx = self.mx + (other.mx - self.mx) * (other.n / n)
        my = self.my + (other.my - self.my) * (other.n / n)
        mine, theirs = self._about(mx, my), other._about(mx, my)
        return GramStats(n, mx, my, *(a + b for a, b in zip(mine, theirs, strict=True)))

    # -- centred covariances -------------------------------------------------------------------------
    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centred scatter matrices `Cxx (D1, D1)`, `Cyy (D2, D2)`, `Cxy (D1, D2)`."""
        return self.cxx, self.cyy, self.cxy

    # -- measures ------------------------------------------------------------------------------------
    def linear_cka(self) -> float:
        """`||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)` (Kornblith et al. 2019), from D x D matrices only."""
        cxx, cyy, cxy = self.centred()
        return _ratio(float((cxy**2).sum()), float(np.linalg.norm(cxx) * np.linalg.norm(cyy)), "linear_cka")

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
        narrower side): `sqrt(2 - 2 ||Cxy||_* / sqrt(tr Cxx tr Cyy))`, 0 for a rotated copy."""
        cxx, cyy, cxy = self.centred()
        scale = float(np.sqrt(np.trace(cxx) * np.trace(cyy)))
        nuclear = float(np.linalg.svd(cxy, compute_uv=False).sum())
        similarity = _ratio(nuclear, scale, "procrustes")
        return float(np.sqrt(max(0.0, 2.0 - 2.0 * min(similarity, 1.0))))

    def canonical_correlations(self, k: int | None = None) -> np.ndarray:
        """Canonical correlations, descending; with `k`, of the top-`k` principal directions of each side
        (SVCCA). Directions of (numerically) zero variance are dropped, so duplicated or constant features
        do not produce NaN."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise DataError(f"svcca keeps the top k principal directions of each side; k must be >= 1, got {k!r}.")
        cxx, cyy, cxy = self.centred()
        wx, wy = _whitener(cxx, k), _whitener(cyy, k)
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


def chunk_gram_stats(x: np.ndarray, y: np.ndarray, start: int, device: str) -> GramStats:
    """`GramStats` of one chunk (a `featswap.mapping.paired.ChunkFn`)."""
    return GramStats.of(x, y, device)


def _ratio(numerator: float, denominator: float, measure: str) -> float:
    return numerator / denominator if denominator > 0 else _constant(measure)


def _whitener(cov: np.ndarray, k: int | None) -> np.ndarray:
    """`W` (D, r) with `W^T cov W = I` on the kept principal directions (the top `k`, or all non-null)."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > RCOND * max(float(values[0]), np.finfo(np.float64).tiny) if len(values) else values > 0
    if k is not None:
        keep &= np.arange(len(values)) < k
    return vectors[:, keep] / np.sqrt(values[keep])


# -- one function per measure ---------------------------------------------------------------------------
def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    return GramStats.of(x, y).linear_cka()


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    return GramStats.of(x, y).debiased_cka()


def procrustes(x: np.ndarray, y: np.ndarray) -> float:
    return GramStats.of(x, y).procrustes()


def cca_mean(x: np.ndarray, y: np.ndarray) -> float:
    return GramStats.of(x, y).cca_mean()


def svcca(x: np.ndarray, y: np.ndarray, k: int = 20) -> float:
    return GramStats.of(x, y).svcca(k)


def mutual_knn(x: np.ndarray, y: np.ndarray, k: int = 10, block: int = 1024) -> float:
    """Mean over rows of the fraction of its `k` nearest neighbours (cosine similarity, itself excluded)
    shared by both feature sets (Huh et al. 2024). Exact; rows are compared in blocks, so memory is
    O(block * N + N * (D1 + D2))."""
    x, y = check_paired(x, y)
    n = len(x)
    if not 0 < k < n:
        raise DataError(f"mutual_knn needs 0 < k < N; got k={k} for N={n}.")
    for side in (x, y):
        if (side == side[0]).all():
            raise DataError("mutual_knn is undefined: one feature set is constant, so every neighbour is a tie.")

    def unit(a: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(a, dtype=torch.float32)
        return torch.nn.functional.normalize(t, dim=1)

    ux, uy = unit(x), unit(y)
    shared = 0
    for start in range(0, n, block):
        rows = torch.arange(start, min(start + block, n))
        neighbours = []
        for u in (ux, uy):
            sims = u[rows] @ u.T
            sims[torch.arange(len(rows)), rows] = -torch.inf  # not its own neighbour
            neighbours.append(sims.topk(k, dim=1).indices)
        hits = (neighbours[0][:, :, None] == neighbours[1][:, None, :]).any(dim=2)
        shared += int(hits.sum())
    return shared / (n * k)


def map_r2(x: np.ndarray, y: np.ndarray, holdout: float = 0.2, seed: int = 0) -> float:
    """R^2 on a held-out fraction of rows of the least-squares affine map X -> Y fitted on the rest:
    `1 - sum ||y - y_hat||^2 / sum ||y - mean(y)||^2`."""
    from featswap.mapping.affine_map import AffineMap
    from featswap.mapping.paired import split_rows

    x, y = check_paired(x, y)
    fit, held = split_rows(len(x), holdout, seed)
    amap = AffineMap("lstsq").fit(x[fit], y[fit])
    return r2_score(y[held], amap.transform(x[held]))


def r2_score(true: np.ndarray, predicted: np.ndarray) -> float:
    """`1 - SSE / SST` over all entries of `(N, D)` arrays, in float64."""
    t, p = true.astype(np.float64), predicted.astype(np.float64)
    total = float(((t - t.mean(0)) ** 2).sum())
    if total <= 0:
        _constant("map_r2")
    return 1.0 - float(((t - p) ** 2).sum()) / total


def _constant(measure: str) -> NoReturn:
    raise DataError(f"{measure} is undefined: one feature set is constant (zero variance).")
