"""Swap metrics on hand-made cases with known answers, and the statistics behind them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from featswap.config import EvaluationSettings
from featswap.errors import DataError, SpecError
from featswap.evaluation.stats import bootstrap_ci, mcnemar_exact
from featswap.evaluation.swap import Predictions, SwapOutcome, check_labels, classify, pair_metrics
from featswap.evaluation.venn import venn_counts
from featswap.outputs.metrics_json import invariant_violations

# Ten images; which of the three classifiers (source S, target T, mapped M) label each correctly.
S = np.array([1, 1, 1, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
T = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
M = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0], dtype=bool)


def outcome(source_ok: np.ndarray, target_ok: np.ndarray, mapped_ok: np.ndarray) -> SwapOutcome:
    """Outcomes with label 0 everywhere: a right answer predicts 0, a wrong one 1 (top-5 always right)."""
    labels = np.zeros(len(source_ok), dtype=np.int64)

    def preds(ok: np.ndarray) -> Predictions:
        return Predictions(np.where(ok, 0, 1), np.ones(len(ok), dtype=bool))

    return SwapOutcome(labels, preds(source_ok), preds(target_ok), preds(mapped_ok), 0.1)


def test_venn_counts_known_case() -> None:
    venn = venn_counts(S, T, M)
    assert venn == {
        "all": 2,  # images 0, 1
        "source_target": 1,  # 2
        "source_mapped": 1,  # 3
        "target_mapped": 1,  # 4
        "target_only": 1,  # 5
        "mapped_only": 1,  # 6
        "source_only": 1,  # 7
        "none": 2,  # 8, 9
    }
    assert sum(venn.values()) == len(S)


def test_pair_metrics_known_case() -> None:
    m = pair_metrics(outcome(S, T, M), n_boot=200)
    assert (m["mapped_correct"], m["native_correct"], m["total"]) == (5, 5, 10)
    assert m["loss"] == 0.0
    # fixed: T wrong & M right = images 3, 6; broken: T right & M wrong = images 2, 5.
    assert (m["fixed"], m["broken"]) == (2, 2)
    assert m["mcnemar_p"] == 1.0
    low, high = m["loss_ci95"]
    assert low <= 0.0 <= high


def test_pair_metrics_loss_sign() -> None:
    target = np.ones(20, dtype=bool)
    mapped = np.r_[np.ones(15, dtype=bool), np.zeros(5, dtype=bool)]
    m = pair_metrics(outcome(target, target, mapped), n_boot=100)
    assert m["loss"] == pytest.approx(0.25)
    assert (m["fixed"], m["broken"]) == (0, 5)
    assert m["mcnemar_p"] == pytest.approx(2 * 0.5**5)


@pytest.mark.parametrize(("fixed", "broken"), [(0, 0), (3, 0), (10, 4), (40, 61), (7, 7)])
def test_mcnemar_matches_scipy_binomial(fixed: int, broken: int) -> None:
    expected = 1.0 if fixed + broken == 0 else binomtest(fixed, fixed + broken, 0.5).pvalue
    assert mcnemar_exact(fixed, broken) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_bootstrap_contains_the_estimate_and_shrinks_with_more_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    widths = []
    for n in (200, 5000):
        native = rng.random(n) < 0.8
        mapped = np.where(rng.random(n) < 0.9, native, ~native)
        ci = bootstrap_ci(native, mapped, n_boot=400, seed=seed)
        low, high = ci["loss"]
        assert low <= native.mean() - mapped.mean() <= high
        assert ci["native_accuracy"][0] <= native.mean() <= ci["native_accuracy"][1]
        widths.append(high - low)
    assert widths[1] < widths[0] / 3


def test_too_few_bootstrap_resamples_are_refused_everywhere() -> None:
    """One resample gave a "95% CI" that did not contain its own estimate; 20 is the floor on every path."""
    native = mapped = np.ones(50, dtype=bool)
    with pytest.raises(SpecError, match="n_boot must be at least 20; got 19"):
        bootstrap_ci(native, mapped, n_boot=19)
    with pytest.raises(SpecError, match="n_boot must be at least 20; got 1"):
        EvaluationSettings(n_boot=1)
    assert bootstrap_ci(native, mapped, n_boot=20)["loss"] == (0.0, 0.0)
    with pytest.raises(SpecError, match="n_boot must be at most 1000000; got 1000000000000"):
        EvaluationSettings(n_boot=10**12)  # refused where it enters, not after the run runs out of memory
    assert EvaluationSettings(n_boot=np.int64(50)).n_boot == 50  # numpy's integers are whole numbers too
    with pytest.raises(DataError, match="needs one outcome per image from each classifier"):
        bootstrap_ci(native, mapped[:40])
    with pytest.raises(DataError, match="No images to resample"):
        bootstrap_ci(native[:0], mapped[:0])


def test_invariants_catch_broken_metrics() -> None:
    pair = {"source": "a", "target": "b", "solver": "lstsq"} | pair_metrics(outcome(S, T, M), n_boot=50)
    metrics = {"models": {"b": {"val_correct": 5}}, "pairs": [pair]}
    assert invariant_violations(metrics) == []
    broken = {"models": {"b": {"val_correct": 6}}, "pairs": [pair | {"loss": 0.5, "fixed": 9}]}
    problems = "\n".join(invariant_violations(broken))
    assert "loss != native_accuracy - mapped_accuracy" in problems
    assert "native_correct 5 != target val_correct 6" in problems
    assert "disagree with venn" in problems


def test_predict_and_label_checks() -> None:
    w = np.eye(3, dtype=np.float32)
    one = np.zeros(1, dtype=np.int64)
    assert classify(np.array([[0, 2, 1]], dtype=np.float32), w, np.zeros(3, dtype=np.float32), one).top1.tolist() == [1]
    with pytest.raises(DataError, match="takes 3 features but got 2"):
        classify(np.zeros((1, 2), dtype=np.float32), w, np.zeros(3, dtype=np.float32), one)
    with pytest.raises(DataError, match="predicts 3 classes"):
        check_labels(np.array([0, 3]), 3, "model")


def test_every_invariant_is_checked() -> None:
    pair = {"source": "a", "target": "b", "solver": "lstsq"} | pair_metrics(outcome(S, T, M), n_boot=50)
    wrong = pair | {
        "venn": {**pair["venn"], "extra": 1},
        "mapped_accuracy": 0.9,
        "native_accuracy": 0.9,
        "mapped_correct": 7,
    }
    problems = "\n".join(invariant_violations({"models": {"b": {"val_correct": 5}}, "pairs": [wrong]}))
    for text in ("venn keys", "sum to 11", "mapped_accuracy != mapped_correct / total",
                 "native_accuracy != native_correct / total", "mapped - native correct != fixed - broken"):  # fmt: skip
        assert text in problems


def test_venn_inputs_must_match() -> None:
    with pytest.raises(ValueError, match="equal-length 1-D"):
        venn_counts(S, T[:-1], M)


def test_readings_follow_the_papers_logic() -> None:
    from featswap.outputs.report import reading

    base = {"source": "I", "target": "R", "solver": "lstsq", "fixed": 1, "broken": 9, "mcnemar_p": 0.02, "total": 300}
    assert "loses 4.5 points" in reading(base | {"loss": 0.045, "loss_ci95": [0.02, 0.07]})
    gain = reading(base | {"loss": -0.014, "loss_ci95": [-0.02, -0.01]})
    assert "gains 1.4 points (95% interval [-2.0, -1.0])" in gain and "chance" not in gain
    unsure = reading(base | {"loss": -0.014, "loss_ci95": [-0.02, -0.01], "mcnemar_p": 0.0625})
    assert "McNemar's test does not rule out chance for the gain itself." in unsure
    same = reading(base | {"loss": 0.001, "loss_ci95": [-0.01, 0.012]})
    assert "as accurate as on R's own features, to within 1.2 points" in same
    # A large loss whose wide interval still includes 0 is undecided, never "as accurate".
    wide = reading(base | {"loss": 0.057, "loss_ci95": [-0.003, 0.117]})
    assert "as accurate" not in wide and "these 300 images cannot tell" in wide and "[-0.3, +11.7]" in wide
    # The heads map reproduces the source's logits by construction: its result is no evidence either way.
    heads = reading(base | {"solver": "heads", "loss": -0.014, "loss_ci95": [-0.02, -0.01], "mapped_accuracy": 0.9})
    assert "by construction" in heads and "not evidence" in heads and "gains" not in heads
    # A map fitted on fewer images than its parameters may lose for want of images: the reading says so.
    small = {"fit_size": 500, "source_dim": 1024, "underdetermined": True}
    few = reading(base | {"loss": 0.45, "loss_ci95": [0.4, 0.5], "fit": small})
    assert "loses 45.0 points, but the map was fitted on 500 images, fewer than I's 1,024 features + 1" in few
    assert "is missing from" not in few


def test_table1_heading_gives_the_iterations_of_every_map() -> None:
    from featswap.outputs.report import iterations_note

    # refine stops early, so its maps differ; the heading must not show one map's count as everyone's.
    assert iterations_note([400, 550, 200]) == ", 200 to 550 iterations"
    assert iterations_note([3000, 3000]) == ", 3,000 iterations"
    assert iterations_note([0, 0]) == ", closed form"


def test_top5_agreement_and_per_class_on_a_known_case() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    # Logits over 7 classes; the label's rank decides top-1 and top-5.
    eye = np.eye(7, dtype=np.float32)
    target_logits = eye[[0, 0, 1, 1, 2, 2]]  # all right
    mapped_logits = eye[[0, 3, 1, 1, 4, 4]] + 0.5 * eye[[6, 0, 6, 6, 6, 6]]
    target = classify(target_logits, eye, np.zeros(7, dtype=np.float32), labels)
    mapped = classify(mapped_logits, eye, np.zeros(7, dtype=np.float32), labels)
    assert mapped.top1.tolist() == [0, 3, 1, 1, 4, 4]
    assert mapped.topk_ok[:4].all()  # image 1 ranks its label second
    assert target.topk_ok.all()
    m = pair_metrics(SwapOutcome(labels, target, target, mapped, 0.0), n_boot=50, classes=("zero", "one", "two"))
    assert m["agreement"] == pytest.approx(3 / 6)  # images 0, 2, 3 get the same top-1 from both
    assert m["native_top5_accuracy"] == 1.0
    losses = m["per_class"]["largest_losses"]
    assert [(r["class"], r["loss"]) for r in losses] == [("two", 1.0), ("zero", 0.5)]
    assert m["per_class"]["largest_gains"] == []
    low, high = m["mapped_accuracy_ci95"]
    assert low <= 0.5 <= high


def test_top5_excludes_the_label_ranked_sixth() -> None:
    logits = np.array([[6, 5, 4, 3, 2, 1, 0]], dtype=np.float32)
    eye = np.eye(7, dtype=np.float32)
    assert classify(logits, eye, np.zeros(7, dtype=np.float32), np.array([4])).topk_ok.tolist() == [True]
    assert classify(logits, eye, np.zeros(7, dtype=np.float32), np.array([5])).topk_ok.tolist() == [False]


def test_class_changes_name_the_classes_or_say_that_none_moved() -> None:
    from featswap.outputs.report import class_changes

    moved = {"class": "cat", "loss": 0.125, "images": 40}
    pair = {"source": "a", "target": "b", "per_class": {"largest_losses": [moved], "largest_gains": []}}
    assert class_changes(pair) == (
        "- a → b: largest drops class cat (-12.5, n = 40); no class gains accuracy (points of per-class accuracy; "
        "n: the class's held-out images)."
    )
    pair["per_class"] = {"largest_losses": [], "largest_gains": [{"class": "dog", "loss": -0.05, "images": 20}]}
    assert class_changes(pair).startswith("- a → b: no class loses accuracy; largest gains class dog (+5.0, n = 20)")
    pair["per_class"] = {"largest_losses": [], "largest_gains": []}
    assert class_changes(pair) == "- a → b: no class loses accuracy; no class gains accuracy."


def per_image_bootstrap(native: np.ndarray, mapped: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The textbook paired bootstrap, image by image: `(n_boot, 2)` resampled accuracies (native, mapped)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(len(native), size=(n_boot, len(native)))
    return np.stack([native[rows].mean(1), mapped[rows].mean(1)], axis=1)


@pytest.mark.parametrize("seed", range(2))
def test_bootstrap_over_outcome_categories_equals_resampling_images(seed: int) -> None:
    """Counts over the four outcome categories are the per-image bootstrap's distribution: the intervals agree
    within Monte Carlo noise, for any N, and their cost does not grow with N."""
    rng = np.random.default_rng(100 + seed)
    n = 3000
    native = rng.random(n) < 0.7
    mapped = np.where(rng.random(n) < 0.85, native, ~native)
    ci = bootstrap_ci(native, mapped, n_boot=20_000, seed=seed)
    reference = per_image_bootstrap(native, mapped, 4000, seed + 7)
    loss = reference[:, 0] - reference[:, 1]
    spread = float(np.std(loss))
    for (low, high), ref in ((ci["loss"], loss), (ci["native_accuracy"], reference[:, 0])):
        ref_low, ref_high = np.percentile(ref, [2.5, 97.5])
        assert abs(low - ref_low) < 0.15 * spread and abs(high - ref_high) < 0.15 * spread
    # The interval width is the normal approximation's (1.96 standard deviations of the paired difference).
    d = native.astype(float) - mapped.astype(float)
    expected = 2 * 1.96 * d.std() / np.sqrt(n)
    assert ci["loss"][1] - ci["loss"][0] == pytest.approx(expected, rel=0.05)
    # A million images cost what a thousand cost: only the four counts are drawn.
    big = np.tile(native, 400)
    assert bootstrap_ci(big, np.tile(mapped, 400), n_boot=1000)["loss"][0] < d.mean()


def test_bootstrap_of_identical_or_opposite_outcomes_is_exact() -> None:
    ones, zeros = np.ones(30, dtype=bool), np.zeros(30, dtype=bool)
    ci = bootstrap_ci(ones, zeros, n_boot=50)
    assert ci == {"native_accuracy": (1.0, 1.0), "mapped_accuracy": (0.0, 0.0), "loss": (1.0, 1.0)}
    assert bootstrap_ci(zeros, zeros, n_boot=50)["loss"] == (0.0, 0.0)


def test_venn_figure_shows_every_region_legibly_when_almost_all_images_are_in_all_three() -> None:
    import matplotlib.pyplot as plt

    from featswap.evaluation.venn import REGIONS
    from featswap.outputs.report import MEMBERSHIP, REGION_LABELS, venn_figure

    assert set(MEMBERSHIP) == set(REGIONS) | {"none"} == set(REGION_LABELS)
    venn = dict(zip([*REGIONS, "none"], [2, 3, 4, 1, 2, 1, 12_345, 7], strict=True))
    fig = venn_figure({"source": "a", "target": "b", "solver": "lstsq", "venn": venn, "total": sum(venn.values())})
    diagram, dots, bars = fig.axes
    plt.close(fig)
    # each count is drawn in the diagram (seven regions, all with room) and beside its bar (eight), with separators
    drawn = sorted(t.get_text() for t in diagram.texts if t.get_text() and t.get_text()[0].isdigit())
    assert drawn == sorted(f"{venn[r]:,}" for r in REGIONS)
    assert [t.get_text() for t in bars.texts] == [f"{c:,}" for c in sorted(venn.values(), reverse=True)]
    labels = [t.get_text() for t in dots.get_yticklabels()]
    assert labels[0] == "all three" and set(labels) == set(REGION_LABELS.values())  # largest region first
