"""Statistics are numerically stable: a common offset, a scaling or another row order leaves the streamed
least-squares map and the CKA values unchanged, against float64 reference computations on centred data
(two-pass means, explicit N x N kernels for debiased CKA)."""

from __future__ import annotations

import numpy as np
import pytest

from featswap.errors import DataError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.paired import InMemoryPairs
from featswap.similarity import GramStats, cca_mean, debiased_cka, linear_cka, svcca

OFFSETS = (0.0, 1e3, 1e4, 1e6)
TOLERANCE = 1e-6  # relative, the bar


def features(seed: int = 0, n: int = 1500, dx: int = 24, dy: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Unit-spread source features and targets that depend on them affinely plus noise, float64."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx))
    y = x @ rng.normal(size=(dx, dy)) / np.sqrt(dx) + 0.5 * rng.normal(size=(n, dy))
    return x, y


def reference_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`W (Dy, Dx)` of least squares with bias, float64, on data centred with two-pass means."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    return np.linalg.lstsq(xc, yc, rcond=None)[0].T


def reference_cka(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Linear CKA and debiased CKA (Kornblith et al.'s unbiased centring of N x N Gram matrices), float64."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    linear = np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))

    def unbiased_centre(gram: np.ndarray) -> np.ndarray:
        n = len(gram)
        gram = gram.copy()
        np.fill_diagonal(gram, 0)
        means = gram.sum(0) / (n - 2) - gram.sum() / (2 * (n - 1) * (n - 2))
        gram -= means[:, None] + means[None, :]
        np.fill_diagonal(gram, 0)
        return gram

    k, l_ = unbiased_centre(xc @ xc.T), unbiased_centre(yc @ yc.T)
    hsic = lambda a, b: float((a * b).sum())  # noqa: E731
    return float(linear), hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def relative(a: np.ndarray | float, b: np.ndarray | float) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("chunk_rows", [7, 500, 1500])
def test_an_offset_leaves_lstsq_and_cka_unchanged(offset: float, chunk_rows: int) -> None:
    x, y = features()
    # As stored: float32 features sharing a large offset; the reference sees exactly these values.
    xs, ys = (x + offset).astype(np.float32), (y - offset).astype(np.float32)
    x64, y64 = xs.astype(np.float64), ys.astype(np.float64)
    amap = AffineMap("lstsq").fit_pairs(InMemoryPairs(xs, ys, chunk_rows=chunk_rows))
    assert relative(amap.weight_, reference_lstsq(x64, y64)) < TOLERANCE
    stats = GramStats.accumulate(InMemoryPairs(xs, ys, chunk_rows=chunk_rows).chunks())
    linear, debiased = reference_cka(x64, y64)
    assert relative(stats.linear_cka(), linear) < TOLERANCE
    assert relative(stats.debiased_cka(), debiased) < TOLERANCE


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_a_scaling_leaves_the_results_unchanged(scale: float) -> None:
    x, y = features(1)
    base = AffineMap("lstsq").fit(x, y)
    scaled = AffineMap("lstsq").fit(x * scale, y)
    assert relative(scaled.transform(x * scale), base.transform(x)) < 1e-9
    assert relative(scaled.weight_ * scale, base.weight_) < 1e-9
    for measure in (linear_cka, debiased_cka, cca_mean, svcca):
        assert measure(x * scale, y / scale) == pytest.approx(measure(x, y), rel=1e-9), measure.__name__


def test_the_row_order_leaves_the_results_unchanged() -> None:
    x, y = features(2)
    order = np.random.default_rng(3).permutation(len(x))
    for solver in ("lstsq", "procrustes"):
        a = AffineMap(solver).fit_pairs(InMemoryPairs(x, y, chunk_rows=100))
        b = AffineMap(solver).fit_pairs(InMemoryPairs(x[order], y[order], chunk_rows=100))
        assert relative(a.weight_, b.weight_) < 1e-9 and relative(a.bias_, b.bias_) < 1e-9
    one = GramStats.accumulate(InMemoryPairs(x, y, chunk_rows=100).chunks())
    other = GramStats.accumulate(InMemoryPairs(x[order], y[order], chunk_rows=37).chunks())
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean"):
        assert getattr(one, measure)() == pytest.approx(getattr(other, measure)(), rel=1e-9), measure


def test_float64_features_are_computed_in_float64() -> None:
    x, y = features(4)
    amap = AffineMap("lstsq").fit(x, y)
    assert amap.weight_.dtype == np.float64 and amap.transform(x).dtype == np.float64
    assert relative(amap.weight_, reference_lstsq(x, y)) < 1e-12
    linear, debiased = reference_cka(x, y)
    assert relative(linear_cka(x, y), linear) < 1e-12 and relative(debiased_cka(x, y), debiased) < 1e-10


def test_cca_is_undefined_with_fewer_rows_than_dimensions() -> None:
    x, y = features(5, n=30, dx=24, dy=16)
    with pytest.raises(DataError, match=r"30 rows span at most 29 centred dimensions, fewer than the 24 \+ 16"):
        cca_mean(x, y)
    assert 0.0 < svcca(x, y, k=10) < 1.0  # 10 + 10 directions fit in 29 dimensions
    with pytest.raises(DataError, match="k must be >= 1, got 0"):
        svcca(x, y, k=0)


def test_constant_features_make_the_measures_undefined_not_nan() -> None:
    x, _ = features(6)
    constant = np.full((len(x), 5), 3.0)
    stats = GramStats.of(x, constant)
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean"):
        with pytest.raises(DataError, match="undefined"):
            getattr(stats, measure)()
