"""Representational similarity measures, beside the swap test: `featswap.similarity.<measure>(X, Y) -> float` for
`X` `(N, D1)` and `Y` `(N, D2)` with the same rows, their streaming form `GramStats`, and the registry
`MEASURES` (each measure's range, direction and symmetry)."""

from featswap.similarity.measures import (
    MEASURES,
    GramStats,
    cca_mean,
    chunk_gram_stats,
    debiased_cka,
    linear_cka,
    map_r2,
    mutual_knn,
    procrustes,
    r2_score,
    svcca,
)

__all__ = [
    "MEASURES",
    "GramStats",
    "cca_mean",
    "chunk_gram_stats",
    "debiased_cka",
    "linear_cka",
    "map_r2",
    "mutual_knn",
    "procrustes",
    "r2_score",
    "svcca",
]
