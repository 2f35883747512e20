"""Centred float32 products merged in float64: results within 1e-6 of float64 computations on centred data, and
float64 products wherever a condition number would amplify float32 rounding beyond that."""

from __future__ import annotations

import numpy as np
import pytest

from featswap.errors import DataError
from featswap.mapping import products
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.moments import Moments
from featswap.mapping.paired import InMemoryPairs
from featswap.mapping.products import TOLERANCE, PrecisionError, add_outer, centre, scatter_matrices
from featswap.mapping.solvers.lstsq import Eigen, lstsq_from_moments
from featswap.similarity import GramStats, cca_mean, debiased_cka, linear_cka, procrustes, svcca
from featswap.similarity.measures import PairStats


def planted(seed: int, n: int = 3000, dx: int = 40, dy: int = 30, decades: float = 0.0) -> tuple[np.ndarray, ...]:
    """float32 features sharing a latent, with offsets; the source's columns scaled over `decades` decades."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    x = z @ rng.normal(size=(8, dx)) + rng.normal(size=(n, dx)) + 50.0
    y = z @ rng.normal(size=(8, dy)) + 0.5 * rng.normal(size=(n, dy)) - 20.0
    x *= np.logspace(0, -decades, dx)
    return x.astype(np.float32), y.astype(np.float32)


def relative(a: np.ndarray | float, b: np.ndarray | float) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6])
def test_centring_leaves_no_residual_of_the_rounded_mean(offset: float) -> None:
    x = (np.random.default_rng(0).normal(size=(1000, 5)) + offset).astype(np.float32)
    mean, deviations = centre(x, np.dtype(np.float32))
    exact = x.astype(np.float64).mean(0)
    assert np.abs(mean - exact).max() < 1e-7  # of the unit spread, whatever the offset
    # The deviations' own mean is zero to the rounding of the spread (unit), not of the offset.
    assert np.abs(deviations.astype(np.float64).mean(0)).max() < 1e-6


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_blocks_of_one_chunk_share_its_centre_and_add_up(offset: float, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = planted(8, n=3000)
    x += np.float32(offset)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    exact = GramStats.of(x64, y64)
    monkeypatch.setattr(products, "BLOCK_BYTES", 256 * 70 * 4)  # 256-row blocks: 12 of them, the last short
    blocked = GramStats.of(x, y, precision="float32")
    assert np.abs(blocked.mx - exact.mx).max() < 1e-9 * max(1.0, offset)
    for name in ("cxx", "cyy", "cxy"):
        assert relative(getattr(blocked, name), getattr(exact, name)) < TOLERANCE, name
    for measure in ("linear_cka", "debiased_cka", "procrustes"):
        assert relative(getattr(blocked, measure)(), getattr(exact, measure)()) < TOLERANCE, measure
    # The scatter alone (what linear CKA and Procrustes read) is the same sums.
    for ours, theirs in zip(scatter_matrices(x, y, np.dtype(np.float32)), exact.centred(), strict=True):
        assert relative(ours, theirs) < TOLERANCE
    assert relative(linear_cka(x, y), exact.linear_cka()) < TOLERANCE
    assert relative(procrustes(x, y), exact.procrustes()) < TOLERANCE
    moments = Moments.of(x, y, precision="float32")
    assert relative(moments.cxy, exact.cxy) < TOLERANCE and relative(moments.tyy, np.trace(exact.cyy)) < TOLERANCE


def test_add_outer_is_an_in_place_rank_one_update() -> None:
    rng = np.random.default_rng(1)
    matrix, a, b = rng.normal(size=(4, 7)), rng.normal(size=4), rng.normal(size=7)
    expected = matrix + 2.5 * np.outer(a, b)
    assert add_outer(matrix, 2.5, a, b) is matrix
    np.testing.assert_allclose(matrix, expected, rtol=1e-14)


@pytest.mark.parametrize("chunk_rows", [256, 3000])
def test_float32_products_keep_well_conditioned_measures_within_the_tolerance(chunk_rows: int) -> None:
    x, y = planted(2)
    fast = GramStats.accumulate(InMemoryPairs(x, y, chunk_rows).chunks(), precision="float32")
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    assert fast.roundoff == 2.0**-24 and exact.roundoff == 2.0**-53
    for measure in ("linear_cka", "debiased_cka", "procrustes"):
        assert relative(getattr(fast, measure)(), getattr(exact, measure)()) < TOLERANCE, measure
    assert relative(fast.moments().cxx, exact.moments().cxx) < TOLERANCE
    assert fast.merge(exact).roundoff == 2.0**-24  # a merge is as coarse as its coarsest part


def test_ill_conditioned_cca_asks_for_float64_and_the_measure_gets_it() -> None:
    x, y = planted(3, decades=4.0)
    with pytest.raises(PrecisionError, match="canonical correlations: condition number"):
        GramStats.of(x, y, precision="float32").cca_mean()
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    assert relative(cca_mean(x, y), exact.cca_mean()) < 1e-12
    assert relative(PairStats(x, y, block_rows=500).measure("cca_mean"), exact.cca_mean()) < 1e-12
    assert relative(svcca(x, y, k=5), exact.svcca(5)) < TOLERANCE


def test_ill_conditioned_least_squares_is_solved_from_float64_products() -> None:
    x, y = planted(4, decades=4.0)
    with pytest.raises(PrecisionError, match="least squares: condition number"):
        lstsq_from_moments(Moments.of(x, y, precision="float32"))
    with pytest.raises(PrecisionError, match="least squares"):  # the eigendecomposition checks it too
        Eigen(Moments.of(x, y, precision="float32")).solve(0.0)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(0), y64 - y64.mean(0)
    reference = np.linalg.lstsq(xc, yc, rcond=None)[0].T
    assert relative(AffineMap("lstsq").fit(x, y).weight_, reference) < TOLERANCE


def test_well_conditioned_least_squares_uses_float32_products_within_the_tolerance() -> None:
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3000, 40)) + 50.0).astype(np.float32)  # condition number about 1.6
    y = (x @ rng.normal(size=(40, 30)) + rng.normal(size=(3000, 30))).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(0), y64 - y64.mean(0)
    reference = np.linalg.lstsq(xc, yc, rcond=None)[0].T
    fast = lstsq_from_moments(Moments.of(x, y, precision="float32"))[0]  # no PrecisionError: fast enough
    assert relative(fast, reference) < TOLERANCE
    assert relative(AffineMap("lstsq").fit(x, y).weight_, reference) < TOLERANCE


@pytest.mark.parametrize("alpha", [0.0, 3.0])
def test_the_cholesky_solution_equals_the_eigendecomposition(alpha: float) -> None:
    x, y = planted(6)
    moments = Moments.of(x, y)
    weight, bias = lstsq_from_moments(moments, alpha)
    eigen_weight, eigen_bias = Eigen(moments).solve(alpha)
    assert relative(weight, eigen_weight) < 1e-10 and relative(bias, eigen_bias) < 1e-10


def test_float64_products_are_never_refused_however_ill_conditioned() -> None:
    x, y = planted(7, decades=9.0)  # condition number far beyond what float32 products allow
    moments = Moments.of(x, y)  # float64 products: the reference itself
    assert np.isfinite(lstsq_from_moments(moments)[0]).all()
    assert np.isfinite(Eigen(moments).solve(0.0)[0]).all()


@pytest.mark.parametrize("scale", [1e18, 1e9], ids=["features-squared", "norms-squared"])
def test_float32_products_that_overflow_are_computed_in_float64(scale: float) -> None:
    """At 1e18 the features' own squares overflow float32, and every statistic is computed again from float64
    products; at 1e9 only the squares of the rows' squared norms would (the debiased estimator's sums, which
    `GramStats.of` adds up in float64 from the norms), and the results must not suffer."""
    x, y = planted(9, n=500)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    exact = GramStats.of(x64, y64)
    big_x, big_y = x * np.float32(scale), y * np.float32(scale)  # finite float32 values
    assert np.isfinite(big_x).all() and np.isfinite(big_y).all()
    if scale == 1e9:
        norms = (big_x.astype(np.float64) ** 2).sum(1)
        assert np.isfinite(big_x.T @ big_x).all() and norms @ norms > np.finfo(np.float32).max
    assert relative(linear_cka(big_x, big_y), exact.linear_cka()) < TOLERANCE
    assert relative(procrustes(big_x, big_y), exact.procrustes()) < TOLERANCE
    stats = GramStats.of(big_x, big_y, precision="float32")
    assert stats.roundoff == (2.0**-53 if scale == 1e18 else 2.0**-24)  # 1e18: computed again from float64 products
    assert relative(stats.debiased_cka(), exact.debiased_cka()) < TOLERANCE
    moments = Moments.of(big_x, big_y, precision="float32")
    assert np.isfinite(moments.cxx).all() and relative(moments.cxy, exact.cxy * scale**2) < TOLERANCE


@pytest.mark.parametrize(("n", "dx", "dy"), [(256, 1536, 2048), (64, 4000, 2007)])
def test_debiased_cka_from_float32_products_with_more_features_than_rows(n: int, dx: int, dy: int) -> None:
    """With D > n the unbiased HSIC cancels `sum a b` (the rows' squared norms) against `||Cxy||^2`, amplifying any
    rounding of the norms about D / n times: they are summed in float64, not taken from float32 products (which
    were 2.1e-6 and 9.5e-6 off here; found by a second reader)."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(n, 64)) * 2
    x, y = rng.normal(size=(n, dx)), rng.normal(size=(n, dy))
    x[:, :64] += signal
    y[:, :64] += signal
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    exact = GramStats.of(x32.astype(np.float64), y32.astype(np.float64))
    assert relative(debiased_cka(x32, y32), exact.debiased_cka()) < TOLERANCE
    assert relative(GramStats.of(x32, y32, precision="float32").debiased_cka(), exact.debiased_cka()) < TOLERANCE


@pytest.mark.parametrize("scale", [1e-13, 1e-16])
def test_debiased_cka_of_tiny_features_from_float32_products(scale: float) -> None:
    """Squares of the rows' squared norms underflow float32 for features of 1e-13 (40 of them): in float64 they do
    not (float32 products of them were 1e-2 off, silently)."""
    x, y = planted(11, n=2000)
    small_x = x * np.float32(scale)
    exact = GramStats.of(small_x.astype(np.float64), y.astype(np.float64))
    stats = GramStats.of(small_x, y, precision="float32")
    for measure in ("linear_cka", "debiased_cka"):
        assert relative(getattr(stats, measure)(), getattr(exact, measure)()) < TOLERANCE


@pytest.mark.parametrize("scale", [1e-13, 1e-16, 1e-20, 1e12])
def test_debiased_cka_of_tiny_or_huge_features_with_more_rows_than_the_shift_sample(scale: float) -> None:
    """Products of a deviation and a squared norm scale with the cube of the features: the norm column is scaled by
    a power of two so that they neither underflow float32 (features of 1e-16 were 1.1e-5 off, silently, once the
    shift point was a sample's mean; found by a second reader) nor overflow it (1e12 needed float64 products)."""
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(9000, 200)) + 0.3 * rng.normal(size=(9000, 200))  # skewed: the point is off the mean
    y = x[:, :30] @ rng.normal(size=(30, 30)) + rng.normal(size=(9000, 30))
    scaled_x, y32 = (x * scale).astype(np.float32), y.astype(np.float32)
    exact = GramStats.of(scaled_x.astype(np.float64), y32.astype(np.float64))
    stats = GramStats.of(scaled_x, y32, precision="float32")
    assert stats.roundoff == 2.0**-24  # float32 products throughout
    assert relative(stats.debiased_cka(), exact.debiased_cka()) < TOLERANCE
    assert relative(stats.linear_cka(), exact.linear_cka()) < TOLERANCE


def test_products_that_overflow_float64_are_refused_with_a_way_out() -> None:
    x, y = planted(10, n=200)
    huge = x.astype(np.float64) * 1e200
    for compute in (lambda: linear_cka(huge, y), lambda: GramStats.of(huge, y), lambda: Moments.of(huge, y)):
        with pytest.raises(DataError, match="too large to multiply even in float64"):
            compute()


def test_float64_chunks_are_centred_on_a_copy_never_in_the_callers_arrays() -> None:
    """`Moments.of_torch` (stitching's path) centres in place; float64 inputs must not be the memory it centres."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(500, 6)) + 5.0, rng.normal(size=(500, 4)) - 3.0
    before = (x.copy(), y.copy())
    moments = Moments.of_torch(x, y)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])
    np.testing.assert_allclose(moments.cxy, (x - x.mean(0)).T @ (y - y.mean(0)), rtol=1e-12)
    np.testing.assert_allclose(moments.mx, x.mean(0), rtol=1e-14)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_a_sampled_point_far_from_the_mean_keeps_the_products_exact(
    offset: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows sorted by a drifting latent (as a store sorted by class): a point from 16 sampled rows sits far from the
    mean, and every product is still corrected to the float64 result on centred data."""
    x, y = planted(9, n=3000)
    order = np.argsort(x[:, 0])
    x, y = x[order] + np.float32(offset), y[order]
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    monkeypatch.setattr(products, "SHIFT_SAMPLE", 16)
    monkeypatch.setattr(products, "BLOCK_BYTES", 256 * 70 * 4)
    sampled = GramStats.of(x, y, precision="float32")
    assert np.abs(sampled.mx - exact.mx).max() < 1e-9 * max(1.0, offset)
    for name in ("cxx", "cyy", "cxy", "saa", "sbb", "sab"):  # (third moments: float32 rounding, sampled or not)
        assert relative(getattr(sampled, name), getattr(exact, name)) < TOLERANCE, name
    for measure in ("linear_cka", "debiased_cka", "procrustes"):
        assert relative(getattr(sampled, measure)(), getattr(exact, measure)()) < TOLERANCE, measure
    assert relative(linear_cka(x, y), exact.linear_cka()) < TOLERANCE


def test_rows_whose_order_repeats_with_the_sampling_stride_keep_the_products_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Token features stored image by image repeat with a period (197 for ViT-B/16): every 197th row, a CLS token,
    far from the others. A sample with that stride would take its point from CLS rows alone, hundreds of spreads
    from the mean, and float32 products of such deviations round 200 times coarser (1.4e-5 off); a random sample
    keeps them within the tolerance."""
    rng = np.random.default_rng(11)
    period, n = 197, 197 * 16
    x = rng.normal(size=(n, 4))
    x[::period, :2] += 300.0
    y = x @ rng.normal(size=(4, 4)) + 40.0 * rng.normal(size=(n, 4))
    x, y = x.astype(np.float32), y.astype(np.float32)
    monkeypatch.setattr(products, "SHIFT_SAMPLE", 16)  # a stride of n // 16 = 197 would land on every CLS row
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    assert relative(linear_cka(x, y), exact.linear_cka()) < 1e-7
    assert relative(GramStats.of(x, y, precision="float32").debiased_cka(), exact.debiased_cka()) < 1e-7


@pytest.mark.parametrize("side", ["x", "y"])
def test_a_point_far_from_the_mean_is_found_and_the_products_computed_again_about_the_mean(
    side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the sample, a point far from the mean (here 50 spreads, in one feature of one side) is detected
    from the products, and a second pass about the exact mean gives what centred products give."""
    x, y = planted(12, n=3000)
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    sampled = products.Shift.of
    passes = []

    def far_point(rows: np.ndarray, dtype: np.dtype) -> products.Shift:
        shift = sampled(rows, dtype)
        passes.append(rows.shape[1])
        if rows.shape[1] == (x if side == "x" else y).shape[1]:
            shift.point[3] += 50.0 * rows[:, 3].std()
        return shift

    monkeypatch.setattr(products.Shift, "of", staticmethod(far_point))
    for name, result, reference in (
        ("scatter", scatter_matrices(x, y, np.dtype(np.float32)), exact.centred()),
        ("gram", GramStats.of(x, y, precision="float32").centred(), exact.centred()),
    ):
        for ours, theirs in zip(result, reference, strict=True):
            assert relative(ours, theirs) < 2e-7, name
    assert len(passes) == 4  # each sampled once per call: the second pass takes the exact means, sampling nothing
    assert relative(GramStats.of(x, y, precision="float32").debiased_cka(), exact.debiased_cka()) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_features_are_refused_from_the_products(dtype: type, bad: float) -> None:
    """The measures that skip the pass for NaN and inf (their products carry them) name the first bad row all the
    same, in a row no sample or block boundary singles out."""
    x, y = planted(10, n=3000)
    x, y = x.astype(dtype), y.astype(dtype)
    y[1234, 7] = bad
    y[2000, 3] = bad
    for measure in (linear_cka, procrustes, debiased_cka):
        with pytest.raises(DataError, match="target features hold NaN or inf, first in row 1234"):
            measure(x, y)
    with pytest.raises(DataError, match="source features hold NaN or inf, first in row 1234"):
        GramStats.of(y, x, precision="float32")
