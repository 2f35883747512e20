"""The similarity measures and what a reader needs to know of each, declared once: the report, metrics.json's
readers and the docs read them here. Pure Python: `featswap report` imports it without numpy's heavier friends
or torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from featswap.registry import Registry


@dataclass(frozen=True)
class Measure:
    """A similarity measure and what a reader needs to know of it, declared once: its `span` (range), which way
    is more similar (`better`: "higher" or "lower"), whether it is `symmetric`, and what it is computed from
    (`source`: "gram" for the streamed `GramStats` of the pair, "features" for both feature sets whole, "map"
    for a fitted map's held-out predictions)."""

    name: str
    span: str
    better: str
    symmetric: bool
    source: str
    summary: str


MEASURES: Registry[Measure] = Registry("similarity measure")
for _measure in (
    Measure("linear_cka", "0..1", "higher", True, "gram", "||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F)"),
    Measure("debiased_cka", "about -1..1", "higher", True, "gram", "CKA from unbiased HSIC (Song et al. 2012)"),
    Measure("procrustes", "0..sqrt(2)", "lower", True, "gram", "distance after the best rotation"),
    Measure("cca_mean", "0..1", "higher", True, "gram", "mean canonical correlation"),
    Measure("svcca", "0..1", "higher", True, "gram", "cca_mean of each side's top k principal directions"),
    Measure("mutual_knn", "0..1", "higher", True, "features", "shared share of the k nearest neighbours"),
    Measure("map_r2", "-inf..1", "higher", False, "map", "R^2 of the fitted affine map on held-out images"),
):
    MEASURES.register(_measure.name)(_measure)


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
