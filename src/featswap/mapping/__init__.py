"""Affine maps between two networks' features: `AffineMap` (`affine_map.py`), the solvers (`solvers/`), the
streamed, mergeable statistics they stand on (`moments.py`, `products.py`, `paired.py`) and the paper's loss.
"""
