"""Representational similarity measures, beside the swap test: `featswap.similarity.<measure>(X, Y) -> float` for
`X` `(N, D1)` and `Y` `(N, D2)` with the same rows, their streaming form `GramStats`, and the catalogue
`MEASURES` (each measure's range, direction, symmetry and source, declared once).

Names are imported on first use, so that reading the catalogue (as `featswap report` does) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "MEASURES": "catalog",
    "Measure": "catalog",
    "rank_agreement": "catalog",
    "GramStats": "gram",
    "chunk_gram_stats": "gram",
    "chunk_split_gram": "gram",
    "linear_cka": "measures",
    "debiased_cka": "measures",
    "procrustes": "measures",
    "cca_mean": "measures",
    "svcca": "measures",
    "mutual_knn": "measures",
    "map_r2": "measures",
    "ridge_r2": "measures",
    "svcca_raghu": "measures",
    "pwcca": "measures",
    "cknna": "kernels",
    "rbf_cka": "kernels",
    "debiased_rbf_cka": "kernels",
    "rsa": "rdm",
    "disagreement": "outputs",
    "jsd": "outputs",
    "default_measures": "catalog",
    "selected": "catalog",
    "r2_score": "measures",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'featswap.similarity' has no attribute {name!r}")
    return getattr(importlib.import_module(f"featswap.similarity.{_WHERE[name]}"), name)
