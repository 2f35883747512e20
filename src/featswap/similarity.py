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
from dataclasses import dataclass, fields
from typing import NoReturn

import numpy as np
import torch

from featswap.errors import DataError
from featswap.moments import merge_nonempty
from featswap.paired import check_paired

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
    """Sums over rows of `x` (D1,) and `y` (D2,), float64, enough for CKA (plain and debiased),
    Procrustes, CCA and SVCCA: n; sx, sy; xx = X^T X, yy = Y^T Y, xy = X^T Y; and for the unbiased HSIC,
    the squared row norms a_i = ||x_i||^2, b_i = ||y_i||^2 in sa, sb, saa, sbb, sab, and the vectors
    xa = sum x_i a_i, xb = sum x_i b_i, ya = sum y_i a_i, yb = sum y_i b_i."""

    n: int
    sx: np.ndarray
    sy: np.ndarray
    xx: np.ndarray
    yy: np.ndarray
    xy: np.ndarray
    sa: float
    sb: float
    saa: float
    sbb: float
    sab: float
    xa: np.ndarray
    xb: np.ndarray
    ya: np.ndarray
    yb: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> GramStats:
        """Stats of one chunk of rows `x` (n, D1), `y` (n, D2)."""
        x, y = check_paired(x, y)
        tx = torch.as_tensor(np.ascontiguousarray(x), device=device).double()
        ty = torch.as_tensor(np.ascontiguousarray(y), device=device).double()
        a, b = (tx * tx).sum(1), (ty * ty).sum(1)

        def np_(t: torch.Tensor) -> np.ndarray:
            return t.cpu().numpy()

        return cls(
            len(x), np_(tx.sum(0)), np_(ty.sum(0)), np_(tx.T @ tx), np_(ty.T @ ty), np_(tx.T @ ty),
            float(a.sum()), float(b.sum()), float(a @ a), float(b @ b), float(a @ b),
            np_(tx.T @ a), np_(tx.T @ b), np_(ty.T @ a), np_(ty.T @ b),
        )  # fmt: skip

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], device: str = "cpu") -> GramStats:
        return merge_nonempty((cls.of(x, y, device) for x, y in chunks), DataError("No samples to compare."))

    def merge(self, other: GramStats) -> GramStats:
        if self.xy.shape != other.xy.shape:
            raise DataError(f"Cannot merge stats of shapes {self.xy.shape} and {other.xy.shape}.")
        return GramStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    # -- centred covariances -------------------------------------------------------------------------
    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centred scatter matrices `Cxx (D1, D1)`, `Cyy (D2, D2)`, `Cxy (D1, D2)`."""
        mx, my = self.sx / self.n, self.sy / self.n
        cxx = self.xx - self.n * np.outer(mx, mx)
        cyy = self.yy - self.n * np.outer(my, my)
        cxy = self.xy - self.n * np.outer(mx, my)
        return (cxx + cxx.T) / 2, (cyy + cyy.T) / 2, cxy

    # -- measures ------------------------------------------------------------------------------------
    def linear_cka(self) -> float:
        """`||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)` (Kornblith et al. 2019), from D x D matrices only."""
        cxx, cyy, cxy = self.centred()
        return _ratio(float((cxy**2).sum()), float(np.linalg.norm(cxx) * np.linalg.norm(cyy)), "linear_cka")

    def _hsic_unbiased(self, s: GramStats) -> float:
        """The unbiased HSIC estimator (Song et al. 2012) of linear kernels K = X X^T, L = Y Y^T, expanded
        into feature-space sums: with K~, L~ the kernels without their diagonals,
        tr(K~L~) = ||X^T Y||_F^2 - sum a_i b_i, 1^T K~ 1 = ||sum x||^2 - sum a_i, and
        1^T K~ L~ 1 = sum_i (x_i . sx - a_i)(y_i . sy - b_i)."""
        n = s.n
        tr = float((s.xy**2).sum()) - s.sab
        k1 = float(s.sx @ s.sx) - s.sa
        l1 = float(s.sy @ s.sy) - s.sb
        kl1 = float(s.sx @ s.xy @ s.sy) - float(s.sx @ s.xb) - float(s.sy @ s.ya) + s.sab
        return (tr + k1 * l1 / ((n - 1) * (n - 2)) - 2.0 * kl1 / (n - 2)) / (n * (n - 3))

    def _self_stats(self, which: str) -> GramStats:
        """Stats of (x, x) or (y, y), for HSIC(K, K) and HSIC(L, L)."""
        if which == "x":
            return GramStats(self.n, self.sx, self.sx, self.xx, self.xx, self.xx, self.sa, self.sa, self.saa,
                             self.saa, self.saa, self.xa, self.xa, self.xa, self.xa)  # fmt: skip
        return GramStats(self.n, self.sy, self.sy, self.yy, self.yy, self.yy, self.sb, self.sb, self.sbb,
                         self.sbb, self.sbb, self.yb, self.yb, self.yb, self.yb)  # fmt: skip

    def debiased_cka(self) -> float:
        """CKA from unbiased HSIC estimates: near 0 for independent features even when D > N."""
        if self.n < 4:
            raise DataError(f"debiased_cka needs at least 4 samples; got {self.n}.")
        hxy = self._hsic_unbiased(self)
        hxx, hyy = self._hsic_unbiased(self._self_stats("x")), self._hsic_unbiased(self._self_stats("y"))
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
        cxx, cyy, cxy = self.centred()
        wx, wy = _whitener(cxx, k), _whitener(cyy, k)
        if wx.shape[1] == 0 or wy.shape[1] == 0:
            raise DataError("CCA is undefined: one feature set has no variance.")
        return np.clip(np.linalg.svd(wx.T @ cxy @ wy, compute_uv=False), 0.0, 1.0)

    def cca_mean(self) -> float:
        return float(self.canonical_correlations().mean())

    def svcca(self, k: int = 20) -> float:
        return float(self.canonical_correlations(k).mean())


def chunk_gram_stats(x: np.ndarray, y: np.ndarray, start: int, device: str) -> GramStats:
    """`GramStats` of one chunk (a `featswap.paired.ChunkFn`)."""
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
    from featswap.affine_map import AffineMap
    from featswap.paired import split_rows

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
