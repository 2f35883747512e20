"""refine, procrustes, heads, the ridge choice, and streaming from a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from featswap.errors import DataError, FitError, SpecError, StoreError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.moments import Moments
from featswap.mapping.paired import InMemoryPairs
from featswap.mapping.solvers import DEFAULT_SOLVER, Heads
from featswap.mapping.solvers.procrustes import procrustes_from_moments
from featswap.rows import split_rows
from featswap.store import FeatureStore


def noisy(seed: int, n: int = 2000, dx: int = 24, dy: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Source and target related by an affine map plus non-linear noise (ReLU of both)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    x = np.maximum(z @ rng.normal(size=(8, dx)) + 0.3 * rng.normal(size=(n, dx)), 0)
    y = np.maximum(z @ rng.normal(size=(8, dy)) + 1.0 + 0.3 * rng.normal(size=(n, dy)), 0)
    return x.astype(np.float32), y.astype(np.float32)


def test_refine_is_the_default() -> None:
    assert DEFAULT_SOLVER == "refine" and AffineMap().solver == "refine"


@pytest.mark.parametrize("seed", range(3))
def test_refine_recovers_a_planted_map_and_stops_early(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1500, 10)).astype(np.float32)
    w, b = rng.normal(size=(7, 10)), rng.normal(size=7) * 3
    y = (x @ w.T + b).astype(np.float32)
    amap = AffineMap("refine", max_iterations=2000, eval_every=20, patience=3).fit(x, y)
    assert amap.loss(x, y) < 1e-6
    assert amap.n_iter_ < 2000  # nothing to improve on an exact start: early stopping
    np.testing.assert_allclose(amap.weight_, w, atol=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_refine_lowers_the_papers_loss_below_its_lstsq_start(seed: int) -> None:
    x, y = noisy(seed)
    amap = AffineMap("refine", seed=seed).fit(x, y)
    info = amap.info_
    assert info["best_heldout_loss"] < info["start_heldout_loss"]
    assert info["heldout_trace"][0][0] == 0
    assert len(amap.curve_) == amap.n_iter_ > 0


def test_refine_bad_settings() -> None:
    x, y = noisy(0)
    with pytest.raises(SpecError, match="patience must be at least 1; got 0"):
        AffineMap("refine", patience=0).fit(x, y)
    with pytest.raises(SpecError, match=r"holdout must lie in \(0, 1\); got 0.0"):
        AffineMap("refine", holdout=0.0).fit(x, y)
    with pytest.raises(DataError, match="too few to hold any out"):
        AffineMap("refine").fit(x[:1], y[:1])
    # Three rows, where a 10% draw may hold out none: exactly one is held out, seeded.
    assert np.isfinite(AffineMap("refine").fit(x[:3], y[:3]).weight_).all()


@pytest.mark.parametrize("seed", range(4))
def test_procrustes_recovers_a_rotation_and_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = (2.5 * x @ q.T + 4.0).astype(np.float32)
    plain = AffineMap("procrustes").fit(x, y)
    np.testing.assert_allclose(plain.weight_ @ plain.weight_.T, np.eye(12), atol=1e-5)  # orthogonal
    np.testing.assert_allclose(plain.weight_, q, atol=1e-4)
    scaled = AffineMap("procrustes", scale=True).fit(x, y)
    assert scaled.info_["scale"] == pytest.approx(2.5, rel=1e-4)
    np.testing.assert_allclose(scaled.transform(x), y, atol=1e-3)


@pytest.mark.parametrize(("dx", "dy"), [(24, 16), (16, 24)])
def test_procrustes_unequal_widths_is_semi_orthogonal(dx: int, dy: int) -> None:
    x, y = noisy(1, dx=dx, dy=dy)
    w = AffineMap("procrustes").fit(x, y).weight_  # (dy, dx)
    small = min(dx, dy)
    gram = w @ w.T if dy <= dx else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_procrustes_on_fewer_pairs_than_features_is_one_map_whatever_the_path(seed: int) -> None:
    """60 pairs determine 59 directions of an 80 -> 100 map; the rest used to be rotated by rounding alone, so the
    same moments merged in another order predicted held-out images 95% differently."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 80)).astype(np.float32)
    y = (x @ rng.normal(size=(80, 100)) / 9 + rng.normal(size=(60, 100))).astype(np.float32)
    whole = procrustes_from_moments(Moments.of(x, y))
    parts = procrustes_from_moments(Moments.of(x[:25], y[:25]).merge(Moments.of(x[25:], y[25:])))
    assert whole[3] == parts[3] == 59  # centred: 60 pairs span 59 directions
    unseen = rng.normal(size=(50, 80))
    np.testing.assert_allclose(unseen @ whole[0].T + whole[1], unseen @ parts[0].T + parts[1], rtol=0, atol=1e-9)
    w = whole[0]  # (100, 80): a partial isometry, orthonormal on the 59 determined directions, zero elsewhere
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), [1.0] * 59 + [0.0] * 21, atol=1e-9)
    amap = AffineMap("procrustes").fit(x, y)
    assert amap.info_["rank"] == 59
    np.testing.assert_allclose(amap.transform(unseen.astype(np.float32)), unseen @ w.T + whole[1], atol=1e-4)


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_procrustes_does_not_count_float32_rounding_as_directions(offset: float) -> None:
    """128 float32 features that combine 40 latent ones: rounding them to float32 puts 88 more singular values
    of about 1e-9 into the cross-scatter, above any fixed 1e-10 cut; they are rounding, and must map to zero, so
    that float32 and float64 copies (or other batch sizes) give one map."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(2000, 40))
    x = (latent @ rng.normal(size=(40, 128)) + offset).astype(np.float32)
    y = (latent @ rng.normal(size=(40, 96)) + rng.normal(size=(2000, 96))).astype(np.float32)
    single, double = AffineMap("procrustes").fit(x, y), AffineMap("procrustes").fit(x.astype(np.float64), y)
    assert single.info_["rank"] == double.info_["rank"] == 40
    halves = procrustes_from_moments(Moments.of(x[:700], y[:700]).merge(Moments.of(x[700:], y[700:])))
    assert halves[3] == 40
    unseen = rng.normal(size=(50, 128)) + offset
    np.testing.assert_allclose(single.transform(unseen), unseen @ halves[0].T + halves[1], rtol=0, atol=1e-3)


def test_procrustes_maps_a_dead_target_feature_to_zero_not_to_noise() -> None:
    x, y = noisy(2, dx=12, dy=12)
    y[:, 5] = 0.0  # a unit that never fires
    amap = AffineMap("procrustes").fit(x, y)
    assert amap.info_["rank"] == 11
    np.testing.assert_allclose(amap.transform(x)[:, 5], 0.0, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_heads_reproduces_logits_with_a_full_rank_target_head(seed: int) -> None:
    rng = np.random.default_rng(seed)
    heads = Heads(rng.normal(size=(10, 24)), rng.normal(size=10), rng.normal(size=(10, 32)), rng.normal(size=10))
    amap = AffineMap("heads").fit(heads=heads)
    x = rng.normal(size=(50, 24)).astype(np.float32)
    through_b = amap.transform(x) @ heads.target_weight.T + heads.target_bias
    np.testing.assert_allclose(through_b, x @ heads.source_weight.T + heads.source_bias, atol=1e-4)
    assert amap.info_["exact"] is True


def test_heads_says_when_it_cannot_be_exact() -> None:
    rng = np.random.default_rng(0)
    narrow = Heads(rng.normal(size=(10, 24)), rng.normal(size=10), rng.normal(size=(10, 6)), rng.normal(size=10))
    amap = AffineMap("heads").fit(heads=narrow)
    assert amap.info_["exact"] is False and "rank 6 < 10 classes" in amap.info_["message"]


def test_heads_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(FitError, match="predict the same classes"):
        AffineMap("heads").fit(
            heads=Heads(rng.normal(size=(10, 4)), np.zeros(10), rng.normal(size=(7, 4)), np.zeros(7))
        )
    with pytest.raises(FitError, match="needs both networks' classifier heads"):
        AffineMap("heads").fit()
    with pytest.raises(FitError, match="needs paired source and target features"):
        AffineMap("lstsq").fit()


def test_ridge_choice_prefers_shrinkage_when_data_are_few_and_none_when_many() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 60))
    few_x = rng.normal(size=(70, 60)).astype(np.float32)
    few_y = (few_x @ w.T + 3.0 * rng.normal(size=(70, 5))).astype(np.float32)
    few = AffineMap("lstsq", alpha="auto").fit(few_x, few_y)
    assert few.info_["alpha"] > 0
    assert len(few.info_["alpha_heldout_mse"]) == 10
    many_x = rng.normal(size=(20000, 60)).astype(np.float32)
    many_y = (many_x @ w.T + 0.01 * rng.normal(size=(20000, 5))).astype(np.float32)
    many = AffineMap("lstsq", alpha="auto").fit(many_x, many_y)
    assert many.info_["alpha"] < 1e-3 * few.info_["alpha"] or many.info_["alpha"] == 0
    with pytest.raises(SpecError, match="a number >= 0, 'auto' or 'auto-if-few'; got 'large'"):
        AffineMap("lstsq", alpha="large").fit(few_x, few_y)


def test_normalised_targets() -> None:
    x, y = noisy(2)
    amap = AffineMap("lstsq", normalize_target=True).fit(x, y)
    unit = y / np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_allclose(amap.weight_, AffineMap("lstsq").fit(x, unit).weight_, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_squared_error_from_moments_equals_the_direct_sum(seed: int) -> None:
    x, y = noisy(seed, n=300)
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(16, 24)).astype(np.float32), rng.normal(size=16).astype(np.float32)
    direct = float(((x.astype(np.float64) @ w.T + b - y) ** 2).sum())
    assert Moments.of(x, y).squared_error(w, b) == pytest.approx(direct, rel=1e-9)


def test_split_rows_is_seeded_and_disjoint() -> None:
    fit, held = split_rows(1000, 0.1, 3)
    assert not set(fit) & set(held) and len(fit) + len(held) == 1000 and 50 < len(held) < 150
    np.testing.assert_array_equal(held, split_rows(1000, 0.1, 3)[1])


def test_fits_streamed_from_a_store_equal_in_memory_fits(tmp_path: Path) -> None:
    x, y = noisy(4, n=3000)
    with FeatureStore.create(tmp_path / "s.zarr") as store:
        store.write_collection("train", [str(i) for i in range(3000)], None)
        for name, feats in (("x", x), ("y", y)):
            store.write_model(name, {"spec": name, "feature_dim": feats.shape[1], "weights_sha256": None},
                              np.zeros((1, feats.shape[1])), np.zeros(1))  # fmt: skip
            store.write_features("train", name, feats, chunk_rows=256)
        pairs = store.pairs("train", "x", "y", rows=300)
        assert sum(len(a) for a, _ in pairs.chunks()) == 3000
        for solver, params in (("lstsq", {}), ("lstsq", {"alpha": "auto"}), ("procrustes", {}), ("refine", {})):
            streamed = AffineMap(solver, **params).fit_pairs(pairs)
            memory = AffineMap(solver, **params).fit_pairs(InMemoryPairs(x, y, chunk_rows=1000))
            np.testing.assert_allclose(streamed.weight_, memory.weight_, rtol=1e-4, atol=1e-5)
        rows = np.array([3, 17, 2999])
        np.testing.assert_array_equal(pairs.take(rows)[1], y[rows])
        store.root["train"]["features"]["y"][17] = 0.5  # a value changed behind featswap's back
        with pytest.raises(StoreError, match=r"model 'y', collection 'train', rows 0..255 are missing or altered"):
            pairs.take(rows)
        with pytest.raises(StoreError, match="no complete features of 'z'"):
            store.pairs("train", "x", "z")


def test_refine_without_adam_is_lstsq_on_all_rows() -> None:
    x, y = noisy(5)
    refine = AffineMap("refine", max_iterations=0).fit(x, y)
    np.testing.assert_allclose(refine.weight_, AffineMap("lstsq").fit(x, y).weight_, atol=1e-6)
    assert refine.n_iter_ == 0


def test_in_memory_solvers_refuse_what_does_not_fit() -> None:
    from featswap.mapping.paired import check_fits_in_memory, physical_memory

    check_fits_in_memory(1000, 1536, 2048, "paper", total=8 * 2**30)
    with pytest.raises(
        DataError, match=r"holds all 1,280,000 training rows in memory: 17.1 GiB of the machine's 24.0 GiB"
    ):
        check_fits_in_memory(1_280_000, 1536, 2048, "paper", total=24 * 2**30)
    assert physical_memory() > 2**30


def test_the_default_ridge_is_chosen_only_when_rows_are_fewer_than_the_source_width_plus_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 60)).astype(np.float32)
    y = (x @ rng.normal(size=(60, 5)) + rng.normal(size=(40, 5))).astype(np.float32)
    few = AffineMap("lstsq").fit(x, y)  # 40 rows < 61 parameters per output: chosen on held-out rows
    assert "alpha_heldout_mse" in few.info_ and few.info_["alpha"] > 0
    exact = AffineMap("lstsq", alpha=0).fit(x, y)
    assert np.abs(x @ exact.weight_.T + exact.bias_ - y).max() < 1e-3  # what the default avoids: interpolation
    many = AffineMap("lstsq").fit(x[:, :30], y)  # 40 rows >= 31: ordinary least squares, as alpha=0
    np.testing.assert_array_equal(many.weight_, AffineMap("lstsq", alpha=0).fit(x[:, :30], y).weight_)
    assert many.info_["alpha"] == 0 and "alpha_heldout_mse" not in many.info_


def test_a_procrustes_map_with_dead_features_says_so_on_the_terminal_and_in_the_report() -> None:
    """Plenty of images, but 5 of 12 target features never fire: the map is determined on 7 directions only."""
    from featswap.experiment.fitting import FittedMap, fit_facts, small_fit_note
    from featswap.outputs.report import small_fit_lines

    x, y = noisy(3, dx=12, dy=12)
    y[:, 7:] = 0.0
    fitted = FittedMap("a", "b", AffineMap("procrustes").fit(x, y), 0.5, "fit", len(x))
    facts = fit_facts(fitted)
    assert facts["rank"] == 7 and "underdetermined" not in facts
    assert small_fit_note(fitted) == (
        "a -> b (procrustes): its 2,000 fitting images determine 7 of its 12 directions (dead or linearly dependent "
        "features); the others are mapped to zero"
    )
    pair = {"source": "a", "target": "b", "solver": "procrustes", "fit": {"train_loss": 0.5, "val_loss": 0.6, **facts}}
    assert small_fit_lines([pair])[0] == (
        "- a → b (procrustes): Its fitting images determine 7 of its directions; the others are mapped to zero."
    )
    full = FittedMap("a", "b", AffineMap("procrustes").fit(*noisy(3, dx=12, dy=12)), 0.5, "fit", 2000)
    assert "rank" not in fit_facts(full) and small_fit_note(full) is None
