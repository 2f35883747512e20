"""Solvers that fit an affine map `y = W x + b` (`W` (Dy, Dx), `b` (Dy,)) between two networks' features.

| solver | memory | what it optimises |
|---|---|---|
| `refine` (default) | O(D^2) + a sample of at most `max_rows` rows | lstsq start, then the paper's loss |
| `paper` | all training rows, N x (Dx + Dy) x 4 bytes | the paper's loss, the paper's exact recipe |
| `lstsq` | O(Dx^2 + Dx Dy), streamed | squared error (ridge optional) |
| `procrustes` | O(Dx^2 + Dx Dy), streamed | squared error over orthogonal maps |
| `heads` | O(C D), no features | reproduces the source's logits through the target's head |
"""

from featswap.catalog.solvers import LstsqSettings, PaperSettings, ProcrustesSettings, RefineSettings
from featswap.mapping.solvers import heads, lstsq, paper, procrustes, refine
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.lstsq import lstsq_from_moments
from featswap.mapping.solvers.paper import paper_optimizer

DEFAULT_SOLVER = "refine"

__all__ = [
    "DEFAULT_SOLVER",
    "SOLVERS",
    "FitResult",
    "Heads",
    "LstsqSettings",
    "PaperSettings",
    "ProcrustesSettings",
    "RefineSettings",
    "Solver",
    "heads",
    "lstsq",
    "lstsq_from_moments",
    "paper",
    "paper_optimizer",
    "procrustes",
    "refine",
]
