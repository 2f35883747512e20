"""`lstsq`: closed-form least squares (ridge when `alpha > 0`) with bias, from streamed float64 moments."""

from __future__ import annotations

import functools

import numpy as np

from featswap.catalog.solvers import AUTO_IF_FEW, LstsqSettings
from featswap.errors import FitError
from featswap.mapping.moments import Moments, merge_nonempty
from featswap.mapping.paired import PairedFeatures
from featswap.mapping.products import check_conditioning
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.rows import held_out_mask, split_rows

#: The held-out share of the split whose two parts, merged, give all rows' moments from shared statistics (the
#: default `holdout` of `lstsq` and `refine`, so that one pass serves every closed-form fit).
SHARED_HOLDOUT = 0.1

#: Candidate ridge strengths for `alpha="auto"`, relative to the mean eigenvalue of the centred scatter.
RELATIVE_ALPHAS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def underdetermined(rows: int, source_dim: int) -> bool:
    """Whether an affine map from `source_dim` features (`source_dim + 1` parameters per output) fitted on `rows`
    rows can reproduce them exactly: fewer rows than parameters."""
    return rows < source_dim + 1


def unit_rows(y: np.ndarray) -> np.ndarray:
    """Rows of `y` `(n, D)` scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    return y / np.where(norms > 0, norms, 1.0)


def chunk_moments(x: np.ndarray, y: np.ndarray, start: int, device: str, normalize: bool = False) -> Moments:
    """Moments of one chunk `x (m, Dx)`, `y (m, Dy)` (a `ChunkFn`), with unit-length targets if `normalize`;
    float64 products."""
    return Moments.of(x, unit_rows(y) if normalize else y, device)


def streamed_moments(pairs: PairedFeatures, normalize: bool, device: str) -> Moments:
    """Moments of all rows, merged chunk by chunk in order (chunks computed wherever `pairs` computes them), or
    from the moments `pairs` already has for both directions of its pair."""
    shared = pairs.split_moments(SHARED_HOLDOUT, 0, normalize)
    if shared is not None:
        return shared[0].merge(shared[1])
    parts = pairs.map_chunks(functools.partial(chunk_moments, normalize=normalize), device)
    return merge_nonempty(parts, FitError("No samples to fit on."))


class Eigen:
    """The eigendecomposition of a moments' centred scatter, reusable for any ridge strength."""

    def __init__(self, moments: Moments) -> None:
        if moments.n < 2:
            raise FitError(f"Least squares needs at least 2 samples; got {moments.n}.")
        self.mx, self.my, cxx, cxy = moments.centred()
        self.roundoff = moments.roundoff
        self.values, self.vectors = np.linalg.eigh(cxx)
        self.projected = self.vectors.T @ cxy  # (Dx, Dy) in the eigenbasis
        self.mean_eigenvalue = float(max(self.values.mean(), 0.0))

    def solve(self, alpha: float, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """`(W (Dy, Dx), b (Dy,))` float64 minimising `sum ||W x + b - y||^2 + alpha ||W||^2`, minimum-norm when
        singular (constant or duplicated features, fewer samples than features): never NaN. Raises
        `PrecisionError` when the kept eigenvalues' condition number is too large for the moments' products."""
        if alpha < 0:
            raise FitError(f"alpha must be >= 0; got {alpha}.")
        values = self.values + alpha
        keep = values > rcond * max(float(values.max()), np.finfo(np.float64).tiny)
        if keep.any():
            check_conditioning(float(values.max() / values[keep].min()), self.roundoff, "least squares")
        inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
        w_t = self.vectors @ (inverse[:, None] * self.projected)  # (Dx, Dy)
        return np.ascontiguousarray(w_t.T), self.my - self.mx @ w_t


#: Condition numbers (LAPACK's estimate) up to which a Cholesky factorisation solves the normal equations; above
#: it, the eigendecomposition (minimum-norm where eigenvalues fall below `rcond` times the largest).
CHOLESKY_CONDITION = 1e8


def lstsq_from_moments(moments: Moments, alpha: float = 0.0, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares `(W (Dy, Dx), b (Dy,))` float64 from moments: by Cholesky when `Cxx + alpha I` is
    well-conditioned (a tenth of the work of an eigendecomposition), else as `Eigen.solve`."""
    if moments.n < 2:
        raise FitError(f"Least squares needs at least 2 samples; got {moments.n}.")
    if alpha < 0:
        raise FitError(f"alpha must be >= 0; got {alpha}.")
    solved = _cholesky_solve(moments, alpha)
    return solved if solved is not None else Eigen(moments).solve(alpha, rcond)


def _condition(matrix: np.ndarray, factor: np.ndarray, iterations: int = 30) -> float:
    """An estimate of the 2-norm condition number of the positive definite `matrix` `(D, D)` from its Cholesky
    `factor`: power iteration for its largest eigenvalue, inverse iteration (two triangular solves a step) for
    its smallest; seeded, O(iterations * D^2)."""
    from scipy.linalg import lapack

    rng = np.random.default_rng(0)
    top, bottom = rng.standard_normal(len(matrix)), rng.standard_normal((len(matrix), 1))
    largest = inverse_smallest = 0.0
    for _ in range(iterations):
        top = matrix @ top
        largest = float(np.linalg.norm(top))
        top /= largest
        bottom, _ = lapack.dpotrs(factor, bottom, lower=True)
        inverse_smallest = float(np.linalg.norm(bottom))
        bottom /= inverse_smallest
    return largest * inverse_smallest


def _cholesky_solve(moments: Moments, alpha: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The solution by Cholesky, or None when `Cxx + alpha I` is not positive definite or its estimated
    condition number (`_condition`) exceeds `CHOLESKY_CONDITION`; raises `PrecisionError` when the moments'
    products are too coarse for that condition number."""
    from scipy.linalg import lapack

    mx, my, cxx, cxy = moments.centred()
    matrix = cxx + alpha * np.eye(len(cxx)) if alpha else cxx
    factor, info = lapack.dpotrf(matrix, lower=True, clean=True)
    if info != 0:
        return None
    condition = _condition(matrix, factor)
    if condition > CHOLESKY_CONDITION:
        return None
    check_conditioning(condition, moments.roundoff, "least squares")
    w_t, info = lapack.dpotrs(factor, cxy, lower=True)
    if info != 0:  # pragma: no cover - dpotrs fails only on invalid arguments
        return None
    return np.ascontiguousarray(w_t.T), my - mx @ w_t


def choose_alpha(fit: Moments, held_out: Moments, rcond: float = 1e-10) -> tuple[float, dict[str, float]]:
    """The ridge strength with the least held-out squared error, among `RELATIVE_ALPHAS` times the mean
    eigenvalue of the fit part's scatter; returns it and the mean held-out error of every candidate."""
    eigen = Eigen(fit)
    errors = {}
    for relative in RELATIVE_ALPHAS:
        alpha = relative * eigen.mean_eigenvalue
        weight, bias = eigen.solve(alpha, rcond)
        errors[f"{alpha:.6g}"] = held_out.squared_error(weight, bias) / max(held_out.n, 1)
    best = min(errors, key=lambda k: errors[k])
    return float(best), errors


def chunk_split_moments(
    x: np.ndarray,
    y: np.ndarray,
    start: int,
    device: str,
    n: int,
    holdout: float,
    seed: int,
    normalize: bool,
) -> tuple[Moments, Moments]:
    """Moments of one chunk's fitting rows and of its held-out rows (a `ChunkFn`; the mask is rebuilt from
    the seed, so a worker gets only these few numbers)."""
    mask = held_out_mask(n, holdout, seed)[start : start + len(x)]
    y = unit_rows(y) if normalize else y
    return Moments.of(x[~mask], y[~mask], device), Moments.of(x[mask], y[mask], device)


def streamed_split_moments(
    pairs: PairedFeatures, holdout: float, seed: int, normalize: bool, device: str
) -> tuple[Moments, Moments]:
    """Moments of the fitting rows and of the held-out rows of `split_rows(pairs.n, holdout, seed)`, in one
    pass over the chunks (or from the moments `pairs` already has)."""
    shared = pairs.split_moments(holdout, seed, normalize)
    if shared is not None:
        return shared
    fit, out = Moments.zeros(pairs.dx, pairs.dy), Moments.zeros(pairs.dx, pairs.dy)
    chunk_fn = functools.partial(chunk_split_moments, n=pairs.n, holdout=holdout, seed=seed, normalize=normalize)
    for fit_part, held_part in pairs.map_chunks(chunk_fn, device):
        fit, out = fit.merge(fit_part), out.merge(held_part)
    return fit, out


def resolve_alpha(alpha: float | str, rows: int, source_dim: int) -> float | None:
    """A fixed ridge strength (validated by the settings), or None where it is to be chosen on held-out rows:
    "auto", and "auto-if-few" for a fit on fewer `rows` than `source_dim + 1`."""
    if alpha == AUTO_IF_FEW:
        return None if underdetermined(rows, source_dim) else 0.0
    return None if alpha == "auto" else float(alpha)


def fit_lstsq(pairs: PairedFeatures | None, settings: LstsqSettings, device: str, heads: Heads | None) -> FitResult:
    """Least squares from moments of float64 products. Float32 products would hold the weights within 1e-6 only
    where the source's scatter has a condition number below about 4 (`featswap.mapping.products.
    check_conditioning`), which real features never have: trying them first would only add a pass."""
    assert pairs is not None
    alpha = resolve_alpha(settings.alpha, pairs.n, pairs.dx)
    info: dict[str, object] = {"alpha_chosen": alpha is None}
    if alpha is None:
        fit, out = streamed_split_moments(pairs, settings.holdout, settings.seed, settings.normalize_target, device)
        if fit.n == 0 or out.n == 0:
            split_rows(pairs.n, settings.holdout, settings.seed)  # says that there are too few rows to hold out
        alpha, info["alpha_heldout_mse"] = choose_alpha(fit, out, settings.rcond)
        moments = fit.merge(out)
    else:
        moments = streamed_moments(pairs, settings.normalize_target, device)
    info["alpha"] = alpha
    weight, bias = lstsq_from_moments(moments, alpha, settings.rcond)
    return FitResult(weight, bias, info=info)


SOLVERS.register("lstsq")(
    Solver(
        "lstsq",
        fit_lstsq,
        fits_scale=True,
        r2_rank=0,
        summary="closed-form least squares / ridge from streamed moments",
    )
)
