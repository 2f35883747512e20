"""The similarity measures and what a reader needs to know of each, declared once: the report, metrics.json's
readers and the docs read them here. Pure Python: `featswap report` imports it without numpy's heavier friends
or torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from featswap.errors import SpecError
from featswap.registry import Registry


@dataclass(frozen=True)
class Measure:
    """A similarity measure and what a reader needs to know of it, declared once: its `span` (range), which way
    is more similar (`better`: "higher" or "lower"), whether it is `symmetric`, and what it is computed from
    (`source`: "gram" for the streamed `GramStats` of the pair, "features" for both feature sets whole, "kernel"
    for N x N matrices of the images, "outputs" for the two networks' logits, "map" for a fitted map's held-out
    predictions); whether it `streams` (memory independent of N), its `memory` at N images (D1, D2 the widths,
    C the classes, k the neighbours), whether the run computes it by `default`, its `reference` (the
    implementation its values are checked against) and a one-line `summary` (the formula)."""

    name: str
    span: str
    better: str
    symmetric: bool
    source: str
    summary: str
    streams: bool = True
    memory: str = "8 (D1 + D2)^2 B"
    default: bool = True
    reference: str = ""


#: Peak bytes per pair of images of the N x N measures, the worst of them (`rsa` with Spearman: two float64
#: triangles and scipy's ranking of one; `rbf_cka` needs 27), measured by `benchmarks/nxn_memory.py`.
NXN_BYTES_PER_PAIR = 44
#: The most images the N x N measures (`source == "kernel"`) take: 23,000 need 21.7 GiB at 44 bytes per pair, within
#: the 24 GiB of CI's machine with room for the features and imports. `--nxn-rows` runs them on a seeded subsample.
MAX_ROWS = 23_000


MEASURES: Registry[Measure] = Registry("similarity measure")
for _measure in (
    Measure("linear_cka", "0..1", "higher", True, "gram", "||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)",
            reference="Kornblith et al. 2019, feature_space_linear_cka"),
    Measure("debiased_cka", "about -1..1", "higher", True, "gram", "CKA from unbiased HSIC (Song et al. 2012)",
            reference="Kornblith et al. 2019, feature_space_linear_cka(debiased=True)"),
    Measure("procrustes", "0..sqrt(2)", "lower", True, "gram", "distance after the best rotation",
            reference="scipy.linalg.orthogonal_procrustes"),
    Measure("cca_mean", "0..1", "higher", True, "gram", "mean canonical correlation",
            reference="google/svcca get_cca_similarity"),
    Measure("svcca", "0..1", "higher", True, "gram",
            "cca_mean of each side's top k principal directions (fixed k = --svcca-k, 20)",
            reference="google/svcca tutorial (fixed k)"),
    Measure("svcca_raghu", "0..1", "higher", True, "gram",
            "cca_mean of the principal directions keeping 99% of each side's variance (Raghu et al. 2017)",
            reference="google/svcca (SVD to 99% variance, then get_cca_similarity)"),
    Measure("pwcca", "0..1", "higher", False, "gram",
            "canonical correlations weighted by their projection on the first side's centred features",
            reference="google/svcca compute_pwcca (Morcos et al. 2018)"),
    Measure("mutual_knn", "0..1", "higher", True, "features", "shared share of the k nearest neighbours",
            streams=False, memory="4 N (D1 + D2) + 4 N 1024 B", reference="platonic-rep mutual_knn"),
    Measure("cknna", "about -1..1", "higher", False, "features",
            "unbiased HSIC of linear kernels restricted to mutual k-NN pairs (Huh et al. 2024; as platonic-rep's, "
            "not symmetric in its arguments)",
            streams=False, memory="8 N (D1 + D2 + 4 k) + 8 N 1024 B", default=False,
            reference="platonic-rep AlignmentMetrics.cknna"),
    Measure("rbf_cka", "0..1", "higher", True, "kernel",
            "CKA of Gaussian kernels, bandwidth --rbf-sigma (0.8) x median distance",
            streams=False, memory="27 N^2 B", default=False, reference="Kornblith et al. 2019, cka(gram_rbf(.))"),
    Measure("debiased_rbf_cka", "about -1..1", "higher", True, "kernel",
            "rbf_cka from unbiased HSIC (Szekely and Rizzo's U-centring)",
            streams=False, memory="27 N^2 B", default=False,
            reference="Kornblith et al. 2019, cka(gram_rbf(.), debiased=True)"),
    Measure("rsa", "-1..1", "higher", True, "kernel",
            "--rsa-compare (spearman) of the two RDMs by --rsa-distance (euclidean)",
            streams=False, memory="20 N^2 B (pearson), 32 (kendall), 44 (spearman)", default=False,
            reference="rsatoolbox calc_rdm + compare"),
    Measure("disagreement", "0..1", "lower", True, "outputs",
            "share of images whose top-1 classes differ (each network's own head)",
            memory="8 C 4096 B", reference="ReSi output measures"),
    Measure("jsd", "0..1", "lower", True, "outputs",
            "mean Jensen-Shannon divergence of the two softmaxes, bits",
            memory="8 C 4096 B", reference="ReSi output measures"),
    Measure("map_r2", "-inf..1", "higher", False, "map", "R^2 of the fitted affine map on held-out images",
            memory="the map's", reference="sklearn r2_score (variance_weighted)"),
    Measure("ridge_r2", "-inf..1", "higher", False, "map",
            "R^2 on held-out images of a ridge map, its strength chosen on held-out fitting rows",
            default=False, reference="sklearn RidgeCV-style selection"),
):  # fmt: skip
    MEASURES.register(_measure.name)(_measure)


def default_measures() -> tuple[str, ...]:
    """The measures a run computes when `--measures` is not given: all that need no N x N matrix or extra fit."""
    return tuple(name for name in MEASURES if MEASURES.get(name).default)


def selected(names: str | Sequence[str]) -> tuple[str, ...]:
    """Measure names from `a,b,...` text or a list, checked against the catalogue (an unknown name suggests the
    closest), in the catalogue's order; `all` selects every measure."""
    texts = [names] if isinstance(names, str) else [str(n) for n in names]
    items = [n.strip() for text in texts for n in text.split(",") if n.strip()]
    if items == ["all"]:
        return tuple(MEASURES)
    if not items:
        raise SpecError(f"--measures needs at least one measure name: {', '.join(MEASURES)} (or all).")
    for name in items:
        MEASURES.get(name)
    return tuple(n for n in MEASURES if n in items)


def rank_agreement(
    similarity: Mapping[str, Mapping[str, float | None]], losses: Mapping[str, Mapping[str, float]], symmetric: bool
) -> float:
    """Spearman correlation across model pairs between a measure and the swap test (`nan` with fewer than 3
    pairs where the measure is defined). A symmetric measure is ranked against each unordered pair's mean
    loss over both directions (the swap test as a divergence); a directional one against each ordered pair's
    loss."""
    import numpy as np
    from scipy.stats import spearmanr

    xs, ys = [], []
    for source, row in losses.items():
        for target, loss in row.items():
            value = similarity.get(source, {}).get(target)
            if value is None:
                continue
            if symmetric:
                if source > target or source not in losses.get(target, {}):
                    continue
                loss = (loss + losses[target][source]) / 2
            xs.append(value)
            ys.append(loss)
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return float(spearmanr(np.asarray(xs), np.asarray(ys)).statistic)
