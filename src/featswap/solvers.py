"""Solvers that fit an affine map `y = W x + b` (`W` (Dy, Dx), `b` (Dy,)) from source to target features.

- `lstsq`: closed-form least squares (ridge when `alpha > 0`) with bias, from streamed float64 moments.
- `paper`: the paper's recipe exactly (Adam on the unit-normalised squared distance, see `PaperSettings`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from featswap.errors import FitError, SpecError, closest
from featswap.moments import Moments
from featswap.registry import Registry


@dataclass(frozen=True)
class FitResult:
    """A fitted map: `weight` (Dy, Dx) and `bias` (Dy,) float32, the per-batch loss curve (iterations,)
    of iterative solvers (empty for closed forms), and the iteration count."""

    weight: np.ndarray
    bias: np.ndarray
    curve: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    iterations: int = 0


def paper_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's loss: mean over rows of `|| t/||t|| - y/||y|| ||^2`, for `(n, D)` tensors."""
    unit_y = torch.nn.functional.normalize(predicted, dim=1, eps=1e-12)
    unit_t = torch.nn.functional.normalize(target, dim=1, eps=1e-12)
    return (unit_t - unit_y).pow(2).sum(dim=1).mean()


def paper_loss_numpy(predicted: np.ndarray, target: np.ndarray) -> float:
    """`paper_loss` on arrays `(n, D)`, in float64."""
    return float(paper_loss(torch.from_numpy(predicted).double(), torch.from_numpy(target).double()))


# -- lstsq ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LstsqSettings:
    """`alpha`: ridge strength added to the centred scatter matrix (0 = ordinary least squares;
    rank-deficient inputs then get the minimum-norm solution). `rcond`: eigenvalues below `rcond`
    times the largest count as zero."""

    alpha: float = 0.0
    rcond: float = 1e-10


def lstsq_from_moments(moments: Moments, alpha: float = 0.0, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares `(W (Dy, Dx), b (Dy,))` minimising `sum ||W x + b - y||^2 + alpha ||W||^2`.

    Solved through the eigendecomposition of the centred scatter matrix, so singular inputs (constant or
    duplicated features, fewer samples than features) give the minimum-norm solution, never NaN.
    """
    if moments.n < 2:
        raise FitError(f"Least squares needs at least 2 samples; got {moments.n}.")
    if alpha < 0:
        raise FitError(f"alpha must be >= 0; got {alpha}.")
    mx, my, cxx, cxy = moments.centred()
    values, vectors = np.linalg.eigh(cxx)
    values = values + alpha
    keep = values > rcond * max(float(values.max()), np.finfo(np.float64).tiny)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    w_t = vectors @ (inverse[:, None] * (vectors.T @ cxy))  # (Dx, Dy)
    bias = my - mx @ w_t
    return w_t.T.astype(np.float32), bias.astype(np.float32)


def fit_lstsq(source: np.ndarray, target: np.ndarray, settings: LstsqSettings, device: str = "cpu") -> FitResult:
    weight, bias = lstsq_from_moments(Moments.of(source, target), settings.alpha, settings.rcond)
    return FitResult(weight, bias)


# -- paper ---------------------------------------------------------------------------------------------
INITS = ("glorot_uniform", "zeros_identity", "torch_default")


@dataclass(frozen=True)
class PaperSettings:
    """The paper's recipe (section 4.2 and its footnote 1).

    Adam (`beta1` 0.9, `beta2` 0.999, `eps` 1e-8, TensorFlow's defaults) from learning rate `lr` 0.1,
    decayed exponentially by a factor `1 - decay` every iteration; batches of `batch_size` 2048 rows drawn
    uniformly at random (with replacement) from the training features; `iterations` 100,000.

    The paper does not say how the map starts. The default `init="glorot_uniform"` (bias zero) is the
    default of TensorFlow's dense kernels, the paper's framework; `zeros_identity` starts from the
    (zero-padded) identity, `torch_default` from `nn.Linear`'s initialisation.
    """

    iterations: int = 100_000
    batch_size: int = 2048
    lr: float = 0.1
    decay: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    seed: int = 0
    init: str = "glorot_uniform"


def initial_map(dx: int, dy: int, init: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Starting `W (Dy, Dx)`, `b (Dy,)` for iterative solvers."""
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / (dx + dy))
        weight = (torch.rand(dy, dx, generator=generator, dtype=torch.float64) * 2 - 1) * limit
        return weight.float(), torch.zeros(dy)
    if init == "zeros_identity":
        return torch.eye(dy, dx), torch.zeros(dy)
    if init == "torch_default":
        bound = 1.0 / math.sqrt(dx)
        weight = (torch.rand(dy, dx, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        bias = (torch.rand(dy, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        return weight.float(), bias.float()
    raise SpecError(f"Unknown init {init!r}.{closest(init, INITS)}")


def paper_optimizer(
    params: list[torch.Tensor], settings: PaperSettings
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.ExponentialLR]:
    """Adam with the paper's settings and its per-iteration exponential learning-rate decay.

    After `t` calls of `schedule.step()` the learning rate is `lr * (1 - decay) ** t`.
    """
    optimizer = torch.optim.Adam(params, lr=settings.lr, betas=(settings.beta1, settings.beta2), eps=settings.eps)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=1.0 - settings.decay)


def fit_paper(source: np.ndarray, target: np.ndarray, settings: PaperSettings, device: str = "cpu") -> FitResult:
    """The paper's recipe on in-memory features `source` (N, Dx), `target` (N, Dy)."""
    if settings.iterations < 1 or settings.batch_size < 1:
        raise FitError("iterations and batch_size must be at least 1.")
    generator = torch.Generator().manual_seed(settings.seed)
    weight0, bias0 = initial_map(source.shape[1], target.shape[1], settings.init, generator)
    x = torch.as_tensor(source, dtype=torch.float32, device=device)
    y = torch.as_tensor(target, dtype=torch.float32, device=device)
    weight = weight0.to(device).requires_grad_(True)
    bias = bias0.to(device).requires_grad_(True)
    optimizer, schedule = paper_optimizer([weight, bias], settings)
    curve = torch.empty(settings.iterations, device=device)
    # Batch indices come from a CPU generator so that a seed gives the same batches on every device.
    for step in range(settings.iterations):
        rows = torch.randint(len(source), (settings.batch_size,), generator=generator).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = paper_loss(x[rows] @ weight.T + bias, y[rows])
        loss.backward()
        optimizer.step()
        schedule.step()
        curve[step] = loss.detach()
    return FitResult(
        weight.detach().cpu().numpy(), bias.detach().cpu().numpy(), curve.cpu().numpy(), settings.iterations
    )


# -- registry ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Solver:
    """A named solver: its settings dataclass and its fit function."""

    name: str
    settings: type
    fit: Callable[..., FitResult]

    def make_settings(self, **params: object) -> object:
        known = {f.name for f in fields(self.settings)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise SpecError(
                f"Solver {self.name!r} has no setting {', '.join(map(repr, unknown))}; its settings are "
                f"{', '.join(sorted(known))}."
            )
        return self.settings(**params)


SOLVERS: Registry[Solver] = Registry("solver")
SOLVERS.register("lstsq")(Solver("lstsq", LstsqSettings, fit_lstsq))
SOLVERS.register("paper")(Solver("paper", PaperSettings, fit_paper))
