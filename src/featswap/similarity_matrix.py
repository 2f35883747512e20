"""Similarity measures for every pair of models in a store: `{MEASURE: {SOURCE: {TARGET: value}}}`."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from featswap.affine_map import AffineMap
from featswap.errors import DataError
from featswap.moments import merge_nonempty
from featswap.similarity import MEASURES, chunk_gram_stats, mutual_knn, r2_score
from featswap.store import FeatureStore

Matrices = dict[str, dict[str, dict[str, float]]]


def similarity_matrices(
    store: FeatureStore,
    names: Sequence[str],
    split: str = "val",
    maps: Mapping[tuple[str, str], AffineMap] | None = None,
    knn_k: int = 10,
    svcca_k: int = 20,
    engine: str = "local",
) -> Matrices:
    """Every measure of `featswap.similarity` for every ordered pair of distinct models on `split`.

    Symmetric measures are computed once per unordered pair from streamed `GramStats` (and exactly, in
    blocks, for `mutual_knn`); `map_r2` is the held-out R^2 of the given fitted maps `(source, target)`.
    Self pairs are absent. With `engine` "ray" the chunk statistics are Ray tasks.
    """
    matrices: Matrices = {m: {n: {} for n in names} for m in MEASURES}
    for a, b in itertools.combinations(names, 2):
        stats = merge_nonempty(
            store.pairs(split, a, b, engine=engine).map_chunks(chunk_gram_stats),
            DataError(f"No samples in split {split!r} to compare {a!r} and {b!r}."),
        )
        values = {
            "linear_cka": stats.linear_cka(),
            "debiased_cka": stats.debiased_cka(),
            "procrustes": stats.procrustes(),
            "cca_mean": stats.cca_mean(),
            "svcca": stats.svcca(svcca_k),
            "mutual_knn": mutual_knn(store.features(split, a), store.features(split, b), k=knn_k),
        }
        for measure, value in values.items():
            matrices[measure][a][b] = matrices[measure][b][a] = float(value)
    for (source, target), amap in (maps or {}).items():
        y = store.features(split, target)
        matrices["map_r2"][source][target] = r2_score(y, amap.transform(store.features(split, source)))
    return matrices


def rank_agreement(
    similarity: Mapping[str, Mapping[str, float]], losses: Mapping[str, Mapping[str, float]], symmetric: bool
) -> float:
    """Spearman correlation across model pairs between a measure and the swap test (`nan` with fewer than 3
    pairs). A symmetric measure is ranked against each unordered pair's mean loss over both directions (the
    swap test as a divergence); a directional one against each ordered pair's loss."""
    from scipy.stats import spearmanr

    xs, ys = [], []
    for source, row in losses.items():
        for target, loss in row.items():
            if target not in similarity.get(source, {}):
                continue
            if symmetric:
                if source > target or source not in losses.get(target, {}):
                    continue
                loss = (loss + losses[target][source]) / 2
            xs.append(similarity[source][target])
            ys.append(loss)
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return float(spearmanr(np.asarray(xs), np.asarray(ys)).statistic)
