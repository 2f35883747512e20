"""Similarity measures for every pair of models in a store: `{MEASURE: {SOURCE: {TARGET: value}}}`."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featswap.errors import DataError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.moments import merge_nonempty
from featswap.similarity import MEASURES, GramStats, chunk_gram_stats, mutual_knn, r2_score
from featswap.store import FeatureStore

#: `{MEASURE: {SOURCE: {TARGET: value}}}`; None where the measure is undefined for the pair.
Matrices = dict[str, dict[str, dict[str, float | None]]]


@dataclass
class Similarity:
    """Every measure for every ordered pair of distinct models (`values`), and why a measure is undefined
    where it is (`undefined`: `{"measure", "source", "target", "reason"}` entries)."""

    values: Matrices
    undefined: list[dict[str, str]] = field(default_factory=list)

    def record(self, measure: str, source: str, target: str, compute: Callable[[], float], both: bool) -> None:
        """Store `compute()` for `source -> target` (and `target -> source` when `both`), or None and the
        reason when the measure is undefined for this pair."""
        value: float | None
        try:
            value = float(compute())
        except DataError as err:
            value = None
            self.undefined.append({"measure": measure, "source": source, "target": target, "reason": str(err)})
        self.values[measure][source][target] = value
        if both:
            self.values[measure][target][source] = value

    def to_json(self) -> dict[str, Any]:
        return {"similarity": self.values, "similarity_undefined": self.undefined}


def similarity_matrices(
    store: FeatureStore,
    names: Sequence[str],
    split: str = "val",
    maps: Mapping[tuple[str, str], AffineMap] | None = None,
    knn_k: int = 10,
    svcca_k: int = 20,
    engine: str = "local",
) -> Similarity:
    """Every measure of `featswap.similarity` for every ordered pair of distinct models on `split`.

    Symmetric measures are computed once per unordered pair from streamed `GramStats` (and exactly, in
    blocks, for `mutual_knn`); `map_r2` is the held-out R^2 of the given fitted maps `(source, target)`.
    Self pairs are absent. A measure undefined for a pair (a constant feature set, too few rows) is None
    there, with the reason in `undefined`; the other measures and pairs are still computed. With `engine`
    "ray" the chunk statistics are Ray tasks.
    """
    result = Similarity({m: {n: {} for n in names} for m in MEASURES})
    for a, b in itertools.combinations(names, 2):
        stats: GramStats = merge_nonempty(
            store.pairs(split, a, b, engine=engine).map_chunks(chunk_gram_stats),
            DataError(f"No samples in split {split!r} to compare {a!r} and {b!r}."),
        )
        measures: dict[str, Callable[[], float]] = {
            "linear_cka": stats.linear_cka,
            "debiased_cka": stats.debiased_cka,
            "procrustes": stats.procrustes,
            "cca_mean": stats.cca_mean,
            "svcca": functools.partial(stats.svcca, svcca_k),
            "mutual_knn": functools.partial(_stored_knn, store, split, a, b, knn_k),
        }
        for measure, compute in measures.items():
            result.record(measure, a, b, compute, both=True)
    for (source, target), amap in (maps or {}).items():
        r2 = functools.partial(_stored_r2, store, split, source, target, amap)
        result.record("map_r2", source, target, r2, both=False)
    return result


def _stored_knn(store: FeatureStore, split: str, a: str, b: str, k: int) -> float:
    return mutual_knn(store.features(split, a), store.features(split, b), k=k)


def _stored_r2(store: FeatureStore, split: str, source: str, target: str, amap: AffineMap) -> float:
    return r2_score(store.features(split, target), amap.transform(store.features(split, source)))


def rank_agreement(
    similarity: Mapping[str, Mapping[str, float | None]], losses: Mapping[str, Mapping[str, float]], symmetric: bool
) -> float:
    """Spearman correlation across model pairs between a measure and the swap test (`nan` with fewer than 3
    pairs where the measure is defined). A symmetric measure is ranked against each unordered pair's mean
    loss over both directions (the swap test as a divergence); a directional one against each ordered pair's
    loss."""
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
