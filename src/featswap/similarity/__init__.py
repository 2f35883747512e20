"""Representational similarity measures, beside the swap test: `featswap.similarity.<measure>(X, Y) -> float` for
`X` `(N, D1)` and `Y` `(N, D2)` with the same rows, their streaming form `GramStats`, and the catalogue
`MEASURES` (each measure's range, direction, symmetry and source, declared once in `featswap.catalog.measures`).

Names are imported on first use, so that reading the catalogue (as `featswap report` does) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "MEASURES": "featswap.catalog.measures",
    "Measure": "featswap.catalog.measures",
    "rank_agreement": "featswap.catalog.measures",
    "GramStats": "featswap.similarity.gram",
    "chunk_gram_stats": "featswap.similarity.gram",
    "chunk_split_gram": "featswap.similarity.gram",
    "linear_cka": "featswap.similarity.measures",
    "debiased_cka": "featswap.similarity.measures",
    "procrustes": "featswap.similarity.measures",
    "cca_mean": "featswap.similarity.measures",
    "svcca": "featswap.similarity.measures",
    "mutual_knn": "featswap.similarity.measures",
    "map_r2": "featswap.similarity.measures",
    "ridge_r2": "featswap.similarity.measures",
    "svcca_raghu": "featswap.similarity.measures",
    "pwcca": "featswap.similarity.measures",
    "cknna": "featswap.similarity.kernels",
    "rbf_cka": "featswap.similarity.kernels",
    "debiased_rbf_cka": "featswap.similarity.kernels",
    "rsa": "featswap.similarity.rdm",
    "disagreement": "featswap.similarity.outputs",
    "jsd": "featswap.similarity.outputs",
    "default_measures": "featswap.catalog.measures",
    "selected": "featswap.catalog.measures",
    "r2_score": "featswap.similarity.measures",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'featswap.similarity' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
