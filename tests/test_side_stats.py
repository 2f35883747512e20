"""Each model's own statistics computed once per model and collection (`featswap.similarity.parts`): the parts
join into the pair's `GramStats` exactly, stream and merge in any chunking, and a run with N models computes N
self-scatters, not N (N - 1), with maps and measures unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featswap.config import EvaluationSettings
from featswap.engines import LocalEngine
from featswap.errors import DataError
from featswap.experiment.evaluating import similarity_of
from featswap.experiment.fitting import fit_maps, fit_pair_maps
from featswap.mapping.paired import InMemoryPairs
from featswap.similarity import parts
from featswap.similarity.gram import GramStats
from featswap.similarity.parts import CrossStats, SideCache, SideStats, merge_parts
from featswap.store import FeatureStore
from stores import three_model_store

FIELDS = ("mx", "my", "cxx", "cyy", "cxy", "saa", "sbb", "sab", "xa", "xb", "ya", "yb")


def offset_pair(seed: int, n: int = 600, d1: int = 12, d2: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 4))
    x = z @ rng.standard_normal((4, d1)) + 0.3 * rng.standard_normal((n, d1)) + 1e4
    y = np.tanh(z @ rng.standard_normal((4, d2))) + 0.3 * rng.standard_normal((n, d2)) - 5e3
    return x.astype(np.float32), y.astype(np.float32)


def assert_stats_close(a: GramStats, b: GramStats, rtol: float = 1e-9) -> None:
    assert a.n == b.n
    for name in FIELDS:
        got, want = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        scale = max(float(np.abs(want).max()), 1e-300)
        assert float(np.abs(got - want).max()) <= rtol * scale, name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parts_join_into_the_pairs_gram_stats(seed: int) -> None:
    x, y = offset_pair(seed)
    joined = GramStats.join(SideStats.of(x), SideStats.of(y), CrossStats.of(x, y))
    assert_stats_close(joined, GramStats.of(x, y))
    for measure in ("linear_cka", "debiased_cka", "procrustes", "cca_mean"):
        assert getattr(joined, measure)() == pytest.approx(getattr(GramStats.of(x, y), measure)(), rel=1e-9)


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 600])
def test_parts_merged_over_chunks_equal_one_pass(chunk_rows: int) -> None:
    x, y = offset_pair(3)
    chunks = list(InMemoryPairs(x, y, chunk_rows).chunks())
    side_x = merge_parts(SideStats.of(a) for a, _ in chunks)
    side_y = merge_parts(SideStats.of(b) for _, b in chunks)
    cross = merge_parts(CrossStats.of(a, b) for a, b in chunks)
    assert side_x is not None and side_y is not None and cross is not None
    assert_stats_close(GramStats.join(side_x, side_y, cross), GramStats.of(x, y))
    assert merge_parts([None, None]) is None


def test_float32_parts_stay_within_1e6_of_float64_with_an_offset() -> None:
    x, y = offset_pair(4, n=2000)
    fast = GramStats.join(SideStats.of(x, "float32"), SideStats.of(y, "float32"), CrossStats.of(x, y, "float32"))
    exact = GramStats.of(x.astype(np.float64), y.astype(np.float64))
    for measure in ("linear_cka", "debiased_cka"):
        assert abs(getattr(fast, measure)() - getattr(exact, measure)()) <= 1e-6 * abs(getattr(exact, measure)())


def test_float32_products_that_overflow_are_done_again_in_float64() -> None:
    x = np.full((4, 2), 3e38, dtype=np.float32)
    x[:, 0] = [-3e38, 3e38, -3e38, 3e38]
    side = SideStats.of(x, "float32")
    assert side.roundoff == 2.0**-53 and np.isfinite(side.scatter).all()
    cross = CrossStats.of(x, x, "float32")
    assert cross.roundoff == 2.0**-53 and np.isfinite(cross.cxy).all()


def test_joining_parts_of_different_rows_is_refused() -> None:
    x, y = offset_pair(5)
    with pytest.raises(DataError, match="different rows"):
        GramStats.join(SideStats.of(x[:-1]), SideStats.of(y), CrossStats.of(x, y))
    with pytest.raises(DataError, match="different rows"):
        GramStats.join(SideStats.of(x + 1), SideStats.of(y), CrossStats.of(x, y))


def test_merging_parts_of_other_widths_is_refused() -> None:
    x, y = offset_pair(6)
    with pytest.raises(DataError, match="widths"):
        SideStats.of(x).merge(SideStats.of(y))
    with pytest.raises(DataError, match="shapes"):
        CrossStats.of(x, y).merge(CrossStats.of(y, x))


def test_empty_parts_are_the_identity_of_merge() -> None:
    x, y = offset_pair(7)
    side, cross = SideStats.of(x), CrossStats.of(x, y)
    assert SideStats.of(x[:0]).merge(side) is side and side.merge(SideStats.zeros(x.shape[1])) is side
    assert CrossStats.of(x[:0], y[:0]).merge(cross) is cross and cross.merge(CrossStats.zeros(12, 9)) is cross


def test_a_run_computes_each_models_own_scatter_once_and_the_same_maps(tmp_path: Path) -> None:
    names = three_model_store(tmp_path / "s.zarr")
    store = FeatureStore.open(tmp_path / "s.zarr")
    engine = LocalEngine()
    solvers, params = ["lstsq", "procrustes", "refine"], {"refine": {"max_iterations": 10}}
    sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] = SideCache()
    fitted = {(m.source, m.target, m.solver): m for m in fit_maps(store, names, "train", solvers, params, engine)}
    for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
        fit_pair_maps(store, a, b, "train", solvers, params, engine, sides=sides)
    assert sides.computed == 3  # one per model, where every pair computing its own would make 6
    for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
        alone = fit_pair_maps(store, a, b, "train", solvers, params, engine)  # the pair without the others
        for key, m in alone.items():  # a model's own sums do not depend on the other models of the run
            assert np.array_equal(m.amap.weight_, fitted[key].amap.weight_), key
            assert np.array_equal(m.amap.bias_, fitted[key].amap.bias_), key


def test_without_the_cache_every_pair_computes_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    three_model_store(tmp_path / "s.zarr")
    store = FeatureStore.open(tmp_path / "s.zarr")
    monkeypatch.setattr(parts, "CACHE_SIDES", False)
    sides: SideCache[tuple[str, float, int], tuple[SideStats, SideStats]] = SideCache()
    for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
        fit_pair_maps(store, a, b, "train", ["lstsq"], {}, LocalEngine(), sides=sides)
    assert sides.computed == 6


def test_similarity_reads_each_models_own_sums_once_and_gives_the_pairs_values(tmp_path: Path) -> None:
    from featswap.similarity.measures import PairStats

    names = three_model_store(tmp_path / "s.zarr")
    store = FeatureStore.open(tmp_path / "s.zarr")
    features = {name: store.features("train", name) for name in names}
    sides: SideCache[tuple[str, str], SideStats] = SideCache()
    result = similarity_of(features, names, EvaluationSettings(), {}, sides=sides)
    # float32 sums of each model once; float64 ones, once too, only where a measure needs them (CCA's whitening)
    assert sorted(name for name, precision in sides if precision == "float32") == names
    assert sides.computed == len(list(sides)) <= 6
    for measure in ("linear_cka", "debiased_cka", "procrustes", "svcca"):
        for a, b in (("a", "b"), ("a", "c"), ("b", "c")):
            alone = PairStats(features[a], features[b]).measure(measure)
            assert result.values[measure][a][b] == pytest.approx(alone, rel=1e-6), (measure, a, b)
