"""featswap: do two trained networks extract the same information from their inputs?

Fits affine maps between the penultimate features of two networks and classifies held-out images with
the *other* network's untouched head (McNeely-White, Beveridge & Draper, 2019).

The public API, imported on first use (so that `import featswap` and `featswap --help` load no torch):
`run`, `stitch`, `Experiment`, `RunConfig` (and its parts), `AffineMap`, `FeatureStore`, `FeatswapError`; the similarity
measures are `featswap.similarity.<measure>(X, Y)`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_WHERE = {
    "run": "featswap.experiment",
    "stitch": "featswap.experiment",
    "Experiment": "featswap.experiment",
    "RunConfig": "featswap.config",
    "ModelConfig": "featswap.config",
    "DataSettings": "featswap.config",
    "ExtractionSettings": "featswap.config",
    "FitSettings": "featswap.config",
    "EvaluationSettings": "featswap.config",
    "EngineSettings": "featswap.config",
    "StitchSettings": "featswap.config",
    "AffineMap": "featswap.mapping.affine_map",
    "FeatureStore": "featswap.store",
    "FeatswapError": "featswap.errors",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'featswap' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
