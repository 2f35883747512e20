"""featswap: do two trained networks extract the same information from their inputs?

Fits affine maps between the penultimate features of two networks and classifies held-out images with
the *other* network's untouched head (McNeely-White, Beveridge & Draper, 2019).
"""

from __future__ import annotations

__version__ = "0.1.0"

from featswap.errors import FeatswapError
from featswap.mapping.affine_map import AffineMap

__all__ = ["AffineMap", "FeatswapError", "__version__"]
