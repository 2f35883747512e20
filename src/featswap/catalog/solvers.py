"""Each solver's settings, checked where they enter (a config, `--param`, `AffineMap(solver, **params)`), and
the solvers' names: pure Python, so that `featswap.config` checks a run's solvers without importing the solvers
(numpy, torch). `featswap.mapping.solvers` registers each name's fit function with these settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from featswap import validate
from featswap.errors import SpecError
from featswap.registry import Registry

#: `alpha` by default: `auto` when the rows are fewer than the source's width + 1, else 0 (ordinary least squares).
AUTO_IF_FEW = "auto-if-few"
AUTOMATIC = ("auto", AUTO_IF_FEW)

#: How the paper's map starts (`PaperSettings.init`).
INITS = ("glorot_uniform", "zeros_identity", "torch_default")


def validate_ridge(alpha: float | str, normalize_target: bool, holdout: float, seed: int) -> None:
    """Check the ridge settings `lstsq` and `refine` share."""
    if alpha not in AUTOMATIC and (
        isinstance(alpha, str | bool) or not isinstance(alpha, int | float) or not alpha >= 0
    ):
        raise SpecError(f"alpha must be a number >= 0, 'auto' or '{AUTO_IF_FEW}'; got {alpha!r}.")
    if alpha not in AUTOMATIC:
        validate.real("alpha", alpha, 0)
    validate.flag("normalize_target", normalize_target)
    validate.real("holdout", holdout, 0, 1, low_open=True, high_open=True)
    validate.integer("seed", seed, 0)


@dataclass(frozen=True)
class RefineSettings:
    """Start: `lstsq` with `alpha` (a number, "auto" or "auto-if-few") and `normalize_target`, fitted on the rows
    outside a
    held-out fraction `holdout` of the training rows. Then Adam (`lr` relative to the root-mean-square of
    the starting weights, so that steps are scale-free) on the paper's loss with batches of `batch_size`
    rows; every `eval_every` iterations the paper's loss on (at most `max_eval_rows` of) the held-out rows
    is measured; it stops after `patience` measurements without a relative improvement of `min_delta`, or
    after `max_iterations`, and keeps the best map. Adam reads a seeded sample of at most `max_rows` fitting
    rows held in memory (all of them when there are fewer).

    The least-squares start fixes the scale of the mapped features, which the paper's loss leaves free:
    heads with a bias need features of the right length, so `normalize_target` stays off by default."""

    alpha: float | str = AUTO_IF_FEW
    normalize_target: bool = False
    holdout: float = 0.1
    lr: float = 0.01
    batch_size: int = 2048
    max_iterations: int = 3000
    eval_every: int = 25
    patience: int = 4
    min_delta: float = 1e-4
    max_rows: int = 131_072
    max_eval_rows: int = 32_768
    seed: int = 0

    def __post_init__(self) -> None:
        validate_ridge(self.alpha, self.normalize_target, self.holdout, self.seed)
        validate.real("lr", self.lr, 0, 1000, low_open=True)
        validate.integer("batch_size", self.batch_size, 1)
        validate.integer("max_iterations", self.max_iterations, 0)
        validate.integer("eval_every", self.eval_every, 1)
        validate.integer("patience", self.patience, 1)
        validate.real("min_delta", self.min_delta, 0, 1, high_open=True)
        validate.integer("max_rows", self.max_rows, 1)
        validate.integer("max_eval_rows", self.max_eval_rows, 1)


@dataclass(frozen=True)
class PaperSettings:
    """The paper's recipe.

    Adam (`beta1` 0.9, `beta2` 0.999, `eps` 1e-8, TensorFlow's defaults) from learning rate `lr` 0.1,
    decayed exponentially by a factor `1 - decay` every iteration; batches of `batch_size` 2048 rows drawn
    uniformly at random (with replacement) from the training features; `iterations` 100,000.

    `iterations` given (`--param iterations=N`): exactly N iterations on every fitting row, the recipe as written.
    Left out (None, the default): at most the paper's 100,000 (`featswap.mapping.solvers.paper.MAX_ITERATIONS`),
    stopped when the loss on a seeded held-out share `holdout` of the fitting rows has not improved by a relative
    `min_delta` in `patience` checks made every `eval_every` iterations; the map with the best held-out loss is
    kept, and the iterations run are recorded. The paper's Fig. 4 shows its curve flat long before 100,000; on
    1,000 fitting images 100,000 iterations take hours on a CPU and gain nothing.

    The paper does not say how the map starts. The default `init="glorot_uniform"` (bias zero) is the
    default of TensorFlow's dense kernels, the paper's framework; `zeros_identity` starts from the
    (zero-padded) identity, `torch_default` from `nn.Linear`'s initialisation.
    """

    iterations: int | None = None
    batch_size: int = 2048
    lr: float = 0.1
    decay: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    seed: int = 0
    init: str = "glorot_uniform"
    holdout: float = 0.1
    eval_every: int = 500
    patience: int = 4
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        if self.iterations is not None:
            validate.integer("iterations", self.iterations, 1)
        validate.real("holdout", self.holdout, 0, 1, low_open=True, high_open=True)
        validate.integer("eval_every", self.eval_every, 1)
        validate.integer("patience", self.patience, 1)
        validate.real("min_delta", self.min_delta, 0, 1, high_open=True)
        validate.integer("batch_size", self.batch_size, 1)
        validate.real("lr", self.lr, 0, 1000, low_open=True)
        validate.real("decay", self.decay, 0, 1, high_open=True)
        validate.real("beta1", self.beta1, 0, 1, high_open=True)
        validate.real("beta2", self.beta2, 0, 1, high_open=True)
        validate.real("eps", self.eps, 0, low_open=True)
        validate.integer("seed", self.seed, 0)
        validate.choice("init", self.init, INITS)


@dataclass(frozen=True)
class LstsqSettings:
    """`alpha`: ridge strength added to the centred scatter matrix `Cxx` (0: ordinary least squares, where
    rank-deficient inputs get the minimum-norm solution), or `"auto"`: chosen among `RELATIVE_ALPHAS`
    (`featswap.mapping.solvers.lstsq`) times the mean eigenvalue of `Cxx` by squared error on a held-out fraction
    `holdout` of the rows (seeded by `seed`), all from one eigendecomposition; `"auto-if-few"` (the default):
    `"auto"` when the rows are fewer than the source's width + 1 (ordinary least squares would reproduce them
    exactly), else 0. `normalize_target`: fit to unit-length targets `y/||y||` (the paper's loss compares
    directions only). `rcond`: eigenvalues below `rcond` times the largest count as zero."""

    alpha: float | str = AUTO_IF_FEW
    normalize_target: bool = False
    holdout: float = 0.1
    seed: int = 0
    rcond: float = 1e-10

    def __post_init__(self) -> None:
        validate_ridge(self.alpha, self.normalize_target, self.holdout, self.seed)
        validate.real("rcond", self.rcond, 0, 1, low_open=True, high_open=True)


@dataclass(frozen=True)
class ProcrustesSettings:
    """`scale`: also fit one global scale factor `s` (y = s Q x + b)."""

    scale: bool = False

    def __post_init__(self) -> None:
        validate.flag("scale", self.scale)


@dataclass(frozen=True)
class HeadsSettings:
    """`rcond`: singular values of the target head below `rcond` times the largest count as zero."""

    rcond: float = 1e-6

    def __post_init__(self) -> None:
        validate.real("rcond", self.rcond, 0, 1, low_open=True, high_open=True)


#: Each solver's name and its settings dataclass; `featswap.mapping.solvers.SOLVERS` holds the same names.
SOLVER_SETTINGS: Registry[type] = Registry("solver")
for _name, _settings in (
    ("refine", RefineSettings),
    ("paper", PaperSettings),
    ("lstsq", LstsqSettings),
    ("procrustes", ProcrustesSettings),
    ("heads", HeadsSettings),
):
    SOLVER_SETTINGS.register(_name)(_settings)


def make_settings(solver: str, **params: object) -> Any:
    """The settings of the solver named `solver` from `params` (its defaults for those left out); a SpecError names
    an unknown solver (with the closest known ones) or setting (with the solver's settings), or a bad value."""
    settings = SOLVER_SETTINGS.get(solver)
    known = {f.name for f in fields(settings)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise SpecError(
            f"Solver {solver!r} has no setting {', '.join(map(repr, unknown))}; its settings are "
            f"{', '.join(sorted(known))}."
        )
    return settings(**params)
