"""The measures added beside the swap test, against the numbers their reference implementations give on the same
inputs (tests/similarity_cases.py; the numbers in tests/fixtures/similarity_references.json, computed once outside
the repository with the references' own code at the commits recorded there), and their invariances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featswap import similarity as sim
from featswap.errors import DataError
from similarity_cases import RECIPE, SEED, cases

REFERENCES = json.loads((Path(__file__).parent / "fixtures" / "similarity_references.json").read_text())
CASES = cases()
NAMES = sorted(CASES)


def reference(case: str, key: str) -> float:
    value = REFERENCES["cases"][case][key]
    assert isinstance(value, float), f"{case}/{key}: the reference gave {value!r}"
    return value


def test_fixtures_come_from_the_same_inputs() -> None:
    assert REFERENCES["seed"] == SEED and REFERENCES["recipe"] == RECIPE
    assert set(REFERENCES["cases"]) == set(CASES)
    for repo in ("google/svcca", "minyoungg/platonic-rep", "google-research/google-research", "rsatoolbox"):
        assert repo in REFERENCES["references"]


@pytest.mark.parametrize("case", ["unequal", "duplicated_rows", "barely"])
def test_pwcca_equals_google_svcca_compute_pwcca(case: str) -> None:
    x, y = CASES[case]
    assert sim.pwcca(x, y) == pytest.approx(reference(case, "pwcca_xy_centred"), abs=1e-9)


def test_pwcca_is_translation_invariant_where_the_reference_is_not() -> None:
    x, y = CASES["offset"]
    value = sim.pwcca(x, y)
    # The reference on the same features, centred first: equal. On the raw features (offset 1e4): its weights
    # change, and so does its value (0.99 instead of 0.83).
    assert value == pytest.approx(reference("offset", "pwcca_xy_centred"), abs=1e-8)
    assert abs(reference("offset", "pwcca_xy_raw") - value) > 0.1
    assert sim.pwcca(x - x.mean(0), y - y.mean(0)) == pytest.approx(value, abs=1e-8)


@pytest.mark.parametrize("case", ["unequal", "offset", "duplicated_rows", "barely"])
def test_pwcca_works_with_the_wider_side_first_where_the_reference_raises(case: str) -> None:
    x, y = CASES[case]
    assert reference_error(case, "pwcca_yx_raw").startswith("IndexError")
    value = sim.pwcca(y, x)  # y is the wider side
    assert 0.0 <= value <= 1.0
    assert value != pytest.approx(sim.pwcca(x, y), abs=1e-6)  # directional: weights from the first argument
    assert value == pytest.approx(pwcca_by_qr(y, x), abs=1e-9)


def reference_error(case: str, key: str) -> str:
    value = REFERENCES["cases"][case][key]
    assert isinstance(value, str)
    return value


def pwcca_by_qr(x: np.ndarray, y: np.ndarray) -> float:
    """PWCCA written out on the (N, D) matrices, as Morcos et al. describe it: canonical directions of the whitened
    cross-covariance, `x`'s centred activations projected on the orthonormalised directions (QR), the
    `min(D1, D2)` weights normalised; for an independent check of the Gram-matrix route."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    x, y = x - x.mean(0), y - y.mean(0)

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    cxx, cyy, cxy = x.T @ x, y.T @ y, x.T @ y
    u, rho, _ = np.linalg.svd(inv_sqrt(cxx) @ cxy @ inv_sqrt(cyy))
    c = min(x.shape[1], y.shape[1])
    p, _ = np.linalg.qr(x @ u[:, :c])
    weights = np.abs(p.T @ x).sum(1)
    return float((weights * rho[:c]).sum() / weights.sum())


@pytest.mark.parametrize("case", NAMES)
def test_svcca_raghu_equals_google_svcca_on_99_percent_of_the_variance(case: str) -> None:
    x, y = CASES[case]
    expected = reference(case, "svcca_raghu_eps0")
    assert sim.svcca_raghu(x, y) == pytest.approx(expected, abs=1e-9)
    # google/svcca's tutorial adds epsilon 1e-10 to the normalised covariances: a change below 1e-8.
    assert abs(reference(case, "svcca_raghu_eps1e-10") - expected) < 1e-8
    kx, ky = REFERENCES["cases"][case]["svcca_raghu_k"]
    assert sim.svcca_raghu(x, y, variance=None, k=max(kx, ky)) != pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_equals_kornblith_et_al(case: str, debiased: bool) -> None:
    x, y = CASES[case]
    key = f"{'debiased_' if debiased else ''}rbf_cka_centred"
    assert sim.rbf_cka(x, y, sigma=0.8, debiased=debiased) == pytest.approx(reference(case, key), abs=1e-10)
    raw = key.replace("centred", "raw")
    assert sim.rbf_cka(x, y, sigma=0.8, debiased=debiased) == pytest.approx(reference(case, raw), abs=1e-7)
    if not debiased:
        expected = reference(case, "rbf_cka_sigma0.5_centred")
        assert sim.rbf_cka(x, y, sigma=0.5) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("distance", ["euclidean", "correlation"])
@pytest.mark.parametrize("comparison", ["spearman", "pearson", "kendall"])
def test_rsa_equals_rsatoolbox(case: str, distance: str, comparison: str) -> None:
    x, y = CASES[case]
    expected = reference(case, f"rsa_{distance}_{comparison}_raw")
    # Duplicated rows make distances that are equal in exact arithmetic; rounding orders a few of them
    # differently in each implementation (rsatoolbox itself moves by 1e-7 when the features are centred first).
    tolerance = 1e-4 if case == "duplicated_rows" else 1e-10
    assert sim.rsa(x, y, distance=distance, comparison=comparison) == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("k", [2, 5, 10])
def test_cknna_equals_platonic_rep_in_both_orders(case: str, k: int) -> None:
    """platonic-rep's estimator is not symmetric (its mutual-neighbour mask is not, and its `sum(K~ L~)` term
    reads the first kernel's columns against the second's rows): both orders are checked."""
    x, y = CASES[case]
    # Duplicated rows tie in the kernels: which of the tied neighbours torch.topk keeps moves cknna by about 1e-4.
    tolerance = 1e-3 if case == "duplicated_rows" else 1e-10
    assert sim.cknna(x, y, k=k) == pytest.approx(reference(case, f"cknna_k{k}"), abs=tolerance)
    assert sim.cknna(y, x, k=k) == pytest.approx(reference(case, f"cknna_yx_k{k}"), abs=tolerance)


@pytest.mark.parametrize("case", NAMES)
def test_mutual_knn_follows_platonic_rep(case: str) -> None:
    x, y = CASES[case]
    tolerance = 0.02 if case == "duplicated_rows" else 1e-7  # ties: each breaks them its own way; theirs is float32
    assert sim.mutual_knn(x, y, k=10) == pytest.approx(REFERENCES["cases"][case]["mutual_knn_k10"], abs=tolerance)


# -- invariances ---------------------------------------------------------------------------------------------
def rotation(width: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(width, width)))
    return q


INVARIANT = {
    "svcca_raghu": lambda x, y: sim.svcca_raghu(x, y),
    "pwcca": lambda x, y: sim.pwcca(x, y),
    "pwcca_yx": lambda x, y: sim.pwcca(y, x),
    "rbf_cka": lambda x, y: sim.rbf_cka(x, y),
    "debiased_rbf_cka": lambda x, y: sim.debiased_rbf_cka(x, y),
    "rsa_spearman": lambda x, y: sim.rsa(x, y),
    "rsa_kendall": lambda x, y: sim.rsa(x, y, distance="euclidean", comparison="kendall"),
    "rsa_pearson": lambda x, y: sim.rsa(x, y, distance="euclidean", comparison="pearson"),
    "cknna": lambda x, y: sim.cknna(x, y),
}


@pytest.mark.parametrize("measure", sorted(INVARIANT))
@pytest.mark.parametrize("seed", range(2))
def test_orthogonal_rotation_and_isotropic_scaling_change_nothing(measure: str, seed: int) -> None:
    """PWCCA weights come from the neurons' own axes, so it is not rotation invariant: only scaling is checked."""
    x, y = (a.astype(np.float64) for a in CASES["unequal"])
    f = INVARIANT[measure]
    value = f(x, y)
    scaled = f(x * 3.5, y / 7.0)
    assert scaled == pytest.approx(value, abs=1e-9)
    if not measure.startswith("pwcca"):
        turned = f(x @ rotation(x.shape[1], seed), y @ rotation(y.shape[1], seed + 1))
        assert turned == pytest.approx(value, abs=1e-9)


def test_pwcca_changes_with_a_rotation_of_its_weighting_side() -> None:
    x, y = (a.astype(np.float64) for a in CASES["unequal"])
    assert sim.pwcca(x @ rotation(x.shape[1], 3), y) != pytest.approx(sim.pwcca(x, y), abs=1e-4)
    assert sim.pwcca(x, y @ rotation(y.shape[1], 3)) == pytest.approx(sim.pwcca(x, y), abs=1e-9)


def test_rsa_under_spearman_ignores_a_monotone_transform_of_the_distances() -> None:
    from featswap.similarity.rdm import compare_rdms, rdm_vector

    x, y = CASES["unequal"]
    a, b = rdm_vector(x), rdm_vector(y)
    base = compare_rdms(a, b)
    assert base == pytest.approx(sim.rsa(x, y))
    for transform in (np.sqrt, np.log1p, lambda d: d**3 + 2 * d):
        assert compare_rdms(transform(a), b) == pytest.approx(base, abs=1e-12)
        assert compare_rdms(a, transform(b), "kendall") == pytest.approx(compare_rdms(a, b, "kendall"), abs=1e-12)
    assert compare_rdms(np.sqrt(a), b, "pearson") != pytest.approx(compare_rdms(a, b, "pearson"), abs=1e-4)


@pytest.mark.parametrize("measure", ["svcca_raghu", "rbf_cka", "debiased_rbf_cka", "rsa"])
def test_symmetric(measure: str) -> None:
    x, y = CASES["unequal"]
    f = getattr(sim, measure)
    assert f(x, y) == pytest.approx(f(y, x), abs=1e-10)


def test_identical_features_are_most_similar() -> None:
    x, _ = CASES["unequal"]
    assert sim.rbf_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert sim.rsa(x, x, comparison="kendall") == pytest.approx(1.0, abs=1e-12)
    assert sim.svcca_raghu(x, x) == pytest.approx(1.0, abs=1e-9)
    assert sim.pwcca(x, x) == pytest.approx(1.0, abs=1e-9)
    assert 0.999 < sim.cknna(x, x) < 1.0  # platonic-rep's 1e-6 in the denominator


# -- outputs ---------------------------------------------------------------------------------------------------
def test_disagreement_and_jsd_against_scipy() -> None:
    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax

    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 7)) * 3
    b = a + rng.normal(size=(300, 7))
    expected = float((jensenshannon(softmax(a, 1), softmax(b, 1), axis=1, base=2) ** 2).mean())
    assert sim.jsd(a, b) == pytest.approx(expected, abs=1e-12)
    assert sim.disagreement(a, b) == pytest.approx(float((a.argmax(1) != b.argmax(1)).mean()))
    assert sim.jsd(a, a) == pytest.approx(0.0, abs=1e-15) and sim.disagreement(a, a) == 0.0
    certain = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert sim.jsd(certain, certain[::-1]) == pytest.approx(1.0)  # disjoint supports: 1 bit
    assert sim.disagreement(certain, certain[::-1]) == 1.0
    assert sim.jsd(a + 5.0, b) == pytest.approx(sim.jsd(a, b), abs=1e-12)  # softmax ignores a shift of all logits


def test_head_outputs_streamed_in_blocks_equal_one_pass() -> None:
    from featswap.similarity import outputs

    rng = np.random.default_rng(1)
    fa, fb = rng.normal(size=(10_000, 6)).astype(np.float32), rng.normal(size=(10_000, 4)).astype(np.float32)
    ha = (rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=5).astype(np.float32))
    hb = (rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=5).astype(np.float32))
    la, lb = outputs.logits_of(fa, *ha), outputs.logits_of(fb, *hb)
    differ, divergence = outputs.head_outputs(fa, ha, fb, hb)
    assert differ == sim.disagreement(la, lb) and divergence == pytest.approx(sim.jsd(la, lb), abs=1e-12)
    scored = np.array([0, 2, 3])
    differ, _ = outputs.head_outputs(fa, ha, fb, hb, scored)
    assert differ == sim.disagreement(la[:, scored], lb[:, scored])


# -- refusals ----------------------------------------------------------------------------------------------------
def test_bad_inputs_are_refused_with_a_reason() -> None:
    from featswap.similarity import kernels, outputs

    x, y = CASES["unequal"]
    with pytest.raises(DataError, match="2 <= k < N"):
        sim.cknna(x, y, k=1)
    with pytest.raises(DataError, match="a row of features is all zeros"):
        sim.cknna(np.vstack([x[:-1], np.zeros((1, x.shape[1]), np.float32)]), y, k=3)
    with pytest.raises(DataError, match="sigma must be > 0"):
        sim.rbf_cka(x, y, sigma=0.0)
    with pytest.raises(DataError, match="identical features"):
        sim.rbf_cka(np.ones_like(x), y)
    with pytest.raises(DataError, match="distance must be one of"):
        sim.rsa(x, y, distance="cityblock")
    with pytest.raises(DataError, match="comparison must be one of"):
        sim.rsa(x, y, comparison="tau-b")
    with pytest.raises(DataError, match="a row of features is constant"):
        sim.rsa(np.vstack([x[:-1], np.full((1, x.shape[1]), 3.0, np.float32)]), y, distance="correlation")
    with pytest.raises(DataError, match="equally dissimilar"):
        sim.rsa(np.tile(x[:1], (len(x), 1)) * 0 + np.eye(len(x), x.shape[1], dtype=np.float32) * 0 + 1, y)
    with pytest.raises(DataError, match="needs at least 3 samples"):
        sim.rsa(x[:2], y[:2])
    with pytest.raises(DataError, match="above its limit of 23,000 images"):
        kernels.check_rows(23_001, "rbf_cka")
    with pytest.raises(DataError, match="k must be >= 1"):
        sim.svcca_raghu(x, y, k=0)
    with pytest.raises(DataError, match=r"share of the variance in \(0, 1\]"):
        sim.svcca_raghu(x, y, variance=1.5)
    with pytest.raises(DataError, match="rows span at most"):
        sim.pwcca(x[:40], y[:40])
    with pytest.raises(DataError, match="no variance"):
        sim.pwcca(np.ones_like(x), y)
    with pytest.raises(DataError, match="over the same classes"):
        sim.jsd(x, y)
    with pytest.raises(DataError, match="at least 2 classes"):
        sim.disagreement(x[:, :1], y[:, :1])
    with pytest.raises(DataError, match="NaN or inf"):
        sim.jsd(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(DataError, match="No samples"):
        sim.jsd(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(DataError, match="one head predicts 5 classes and the other 4"):
        outputs.head_outputs(x[:, :3], (np.ones((5, 3)), np.ones(5)), x[:, :3], (np.ones((4, 3)), np.ones(4)))
    with pytest.raises(DataError, match="No samples"):
        outputs.head_outputs(x[:0, :3], (np.ones((5, 3)), np.ones(5)), x[:0, :3], (np.ones((5, 3)), np.ones(5)))


def test_ridge_r2_chooses_its_ridge_on_held_out_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 150)).astype(np.float32)  # 240 fitting rows for 151 parameters: ols overfits
    y = (x[:, :5] @ rng.normal(size=(5, 8)) + 2 * rng.normal(size=(300, 8))).astype(np.float32)
    ridge, plain = sim.ridge_r2(x, y), sim.map_r2(x, y)
    assert ridge > plain + 0.15 and ridge > 0.25
    big = rng.normal(size=(2000, 10)).astype(np.float32)
    target = big @ rng.normal(size=(10, 6)).astype(np.float32)
    assert sim.ridge_r2(big, target) == pytest.approx(1.0, abs=1e-5)
