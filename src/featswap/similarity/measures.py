"""Representational similarity measures, computed from the same stored features as the swap test.

One function per measure, `featswap.similarity.<name>(X, Y) -> float` for `X` `(N, D1)` and `Y` `(N, D2)`
with the same rows (images). All but `mutual_knn` and `map_r2` come from feature-space sums (`D x D`,
merged in float64; from float32 products where the result stays within 1e-6, see `featswap.mapping.products`),
never from `N x N` kernels, and have a streaming form: `GramStats` accumulates row chunks (or
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

from collections.abc import Callable

import numpy as np

from featswap.errors import DataError
from featswap.mapping.paired import InMemoryPairs, check_paired
from featswap.mapping.products import PrecisionError, compute_dtype, roundoff, scatter_matrices
from featswap.similarity.gram import GramStats, constant_refusal, linear_cka_of, procrustes_of
from featswap.similarity.kernels import neighbours, unit_rows
from featswap.similarity.svcca_google import VARIANCE, pwcca_of, svcca_raghu_of


def from_gram(stats: GramStats, measure: str, svcca_k: int = 20, swapped: bool = False) -> float:
    """A `gram` measure of a pair from its streamed statistics (`swapped`: a directional one, second -> first)."""
    compute: dict[str, Callable[[], float]] = {
        "linear_cka": stats.linear_cka,
        "debiased_cka": stats.debiased_cka,
        "procrustes": stats.procrustes,
        "cca_mean": stats.cca_mean,
        "svcca": lambda: stats.svcca(svcca_k),
        "svcca_raghu": lambda: svcca_raghu_of(stats),
        "pwcca": lambda: pwcca_of(stats, swapped),
    }
    return compute[measure]()


class PairStats:
    """The `GramStats` of a pair of feature sets in memory, `x` `(N, D1)` and `y` `(N, D2)`: from float32 products,
    and from float64 products only when a measure needs them (`PrecisionError`: CCA's whitening is
    ill-conditioned), computed then, once."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        block_rows: int | None = None,
        stats: Callable[[str], GramStats] | None = None,
    ) -> None:
        """`stats(precision)`, when given, computes the pair's `GramStats` instead (from each model's own sums
        computed once: `featswap.similarity.parts`)."""
        self.x, self.y, self.block_rows, self._compute = x, y, block_rows, stats
        self.fast = self._stats("float32")
        self._precise: GramStats | None = None

    def _stats(self, precision: str) -> GramStats:
        if self._compute is not None:
            return self._compute(precision)
        if self.block_rows is None:
            return GramStats.of(self.x, self.y, precision=precision)
        return GramStats.accumulate(InMemoryPairs(self.x, self.y, self.block_rows).chunks(), precision=precision)

    def measure(self, measure: str, svcca_k: int = 20, swapped: bool = False) -> float:
        """A `gram` measure of the pair, within `TOLERANCE` of a float64 computation on centred data."""
        try:
            return from_gram(self.fast, measure, svcca_k, swapped)
        except PrecisionError:
            return from_gram(self.precise(), measure, svcca_k, swapped)

    def precise(self) -> GramStats:
        """The stats from float64 products, computed on first use."""
        if self._precise is None:
            self._precise = self._stats("float64")
        return self._precise


def nonempty_pair(x: np.ndarray, y: np.ndarray, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`check_paired`, and at least one row."""
    x, y = check_paired(x, y, finite)
    if len(x) == 0:
        raise DataError("No samples to compare.")
    return x, y


def scatter(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centred scatter matrices of a pair in memory, nothing more (`featswap.mapping.products.scatter_matrices`,
    float32 products for float32 features)."""
    x, y = nonempty_pair(x, y, finite=False)  # NaN or inf: refused by `scatter_matrices` from its products
    return scatter_matrices(x, y, compute_dtype(x, y))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) of `x` `(N, D1)` and `y` `(N, D2)`: 0..1, higher is more similar;
    unchanged by rotations and scalings of either side.

    Examples:
        >>> import numpy as np
        >>> from featswap import similarity
        >>> x = np.random.default_rng(0).normal(size=(100, 6))
        >>> q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))  # an orthogonal matrix
        >>> round(similarity.linear_cka(x, x), 6), round(similarity.linear_cka(x, 3 * x @ q), 6)
        (1.0, 1.0)
        >>> similarity.linear_cka(x, np.random.default_rng(2).normal(size=(100, 4))) < 0.2
        True
    """
    return linear_cka_of(*scatter(x, y))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    return GramStats.of(x, y, precision="float32").debiased_cka()


def procrustes(x: np.ndarray, y: np.ndarray) -> float:
    """The Procrustes distance from float32 products, or from float64 ones where it is small enough for float32
    rounding to matter (`procrustes_of`)."""
    x, y = nonempty_pair(x, y, finite=False)  # NaN or inf: refused by `scatter_matrices` from its products
    dtype = compute_dtype(x, y)
    try:
        return procrustes_of(*scatter_matrices(x, y, dtype), roundoff(dtype))
    except PrecisionError:
        return procrustes_of(*scatter_matrices(x, y, np.dtype(np.float64)))


def cca_mean(x: np.ndarray, y: np.ndarray) -> float:
    return PairStats(x, y).measure("cca_mean")


def svcca(x: np.ndarray, y: np.ndarray, *, k: int = 20) -> float:
    """SVCCA of `x` `(N, D1)` and `y` `(N, D2)`: the mean canonical correlation of their top `k` principal
    directions, 0..1, higher is more similar.

    Examples:
        >>> import numpy as np
        >>> from featswap import similarity
        >>> x = np.random.default_rng(0).normal(size=(100, 6))
        >>> round(similarity.svcca(x, 2 * x + 1, k=3), 6)
        1.0
    """
    return PairStats(x, y).measure("svcca", k)


def svcca_raghu(x: np.ndarray, y: np.ndarray, *, variance: float | None = VARIANCE, k: int | None = None) -> float:
    """google/svcca's SVCCA (Raghu et al. 2017) of `x` `(N, D1)`, `y` `(N, D2)`: the mean canonical correlation of
    each side's principal directions keeping `variance` (0.99) of its variance, or its top `k`."""
    x, y = nonempty_pair(x, y)
    return svcca_raghu_of(GramStats.of(x, y), variance, k)


def pwcca(x: np.ndarray, y: np.ndarray) -> float:
    """google/svcca's projection-weighted CCA (Morcos et al. 2018) of `x` `(N, D1)`, `y` `(N, D2)`, weighted by
    `x`'s centred features; `pwcca(y, x)` is the other direction. Widths may differ."""
    x, y = nonempty_pair(x, y)
    return pwcca_of(GramStats.of(x, y))


def mutual_knn(x: np.ndarray, y: np.ndarray, *, k: int = 10, block: int = 1024) -> float:
    """Mean over rows of the fraction of its `k` nearest neighbours (cosine similarity, itself excluded)
    shared by both feature sets (Huh et al. 2024; platonic-rep's `mutual_knn` on `F.normalize`d rows). Exact, in
    float64 (float32 cosines of features with a large common offset are all 1 to rounding, and their neighbours
    noise); rows are compared in blocks, so memory is O(block * N + N * (D1 + D2))."""
    x, y = check_paired(x, y)
    n = len(x)
    if not 0 < k < n:
        raise DataError(f"mutual_knn needs 0 < k < N; got k={k} for N={n}.")
    for side in (x, y):
        if (side == side[0]).all():
            raise DataError("mutual_knn is undefined: one feature set is constant, so every neighbour is a tie.")
    nx, ny = (neighbours(unit_rows(side), k, block) for side in (x, y))
    shared = 0
    for start in range(0, n, block):
        a, b = nx[start : start + block], ny[start : start + block]
        shared += int((a[:, :, None] == b[:, None, :]).any(axis=2).sum())
    return shared / (n * k)


def map_r2(x: np.ndarray, y: np.ndarray, *, holdout: float = 0.2, seed: int = 0) -> float:
    """R^2 on a held-out fraction of rows of the least-squares affine map X -> Y fitted on the rest:
    `1 - sum ||y - y_hat||^2 / sum ||y - mean(y)||^2`."""
    from featswap.mapping.affine_map import AffineMap
    from featswap.rows import split_rows

    x, y = check_paired(x, y)
    fit, held = split_rows(len(x), holdout, seed)
    amap = AffineMap("lstsq").fit(x[fit], y[fit])
    return r2_score(y[held], amap.transform(x[held]))


def ridge_r2(x: np.ndarray, y: np.ndarray, *, holdout: float = 0.2, seed: int = 0) -> float:
    """`map_r2` of a ridge map: fitted on all but a held-out fraction `holdout` of the rows, its strength chosen
    (among `RELATIVE_ALPHAS` times the mean eigenvalue of the scatter) on a further held-out tenth of those fitting
    rows, never on the rows it is scored on; R^2 on the held-out rows."""
    from featswap.mapping.affine_map import AffineMap
    from featswap.rows import split_rows

    x, y = check_paired(x, y)
    fit, held = split_rows(len(x), holdout, seed)
    amap = AffineMap("lstsq", alpha="auto", seed=seed).fit(x[fit], y[fit])
    return r2_score(y[held], amap.transform(x[held]))


def r2_score(true: np.ndarray, predicted: np.ndarray) -> float:
    """`1 - SSE / SST` over all entries of `(N, D)` arrays, in float64."""
    t, p = true.astype(np.float64), predicted.astype(np.float64)
    total = float(((t - t.mean(0)) ** 2).sum())
    if total <= 0:
        constant_refusal("map_r2")
    return 1.0 - float(((t - p) ** 2).sum()) / total
