"""`paper`: the paper's fitting recipe, exactly (section 4.2 and its footnote 1)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from featswap.catalog.solvers import PaperSettings
from featswap.mapping.losses import paper_loss, paper_loss_to_units, unit_rows
from featswap.mapping.paired import PairedFeatures, check_fits_in_memory
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.early_stopping import until_flat
from featswap.progress import steps
from featswap.rows import split_rows
from featswap.threads import SMALL_WORK, torch_threads_for

#: The most iterations when `iterations` is left out (the paper's count); the held-out loss stops the fit sooner.
MAX_ITERATIONS = 100_000


def initial_map(dx: int, dy: int, init: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Starting `W (Dy, Dx)`, `b (Dy,)` for the paper recipe."""
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / (dx + dy))
        weight = (torch.rand(dy, dx, generator=generator, dtype=torch.float64) * 2 - 1) * limit
        return weight.float(), torch.zeros(dy)
    if init == "zeros_identity":
        return torch.eye(dy, dx), torch.zeros(dy)
    bound = 1.0 / math.sqrt(dx)  # torch_default, the last of INITS (the settings refuse any other name)
    weight = (torch.rand(dy, dx, generator=generator, dtype=torch.float64) * 2 - 1) * bound
    bias = (torch.rand(dy, generator=generator, dtype=torch.float64) * 2 - 1) * bound
    return weight.float(), bias.float()


def paper_optimizer(
    params: list[torch.Tensor], settings: PaperSettings
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.ExponentialLR]:
    """Adam with the paper's settings and its per-iteration exponential learning-rate decay.

    After `t` calls of `schedule.step()` the learning rate is `lr * (1 - decay) ** t`.
    """
    optimizer = torch.optim.Adam(params, lr=settings.lr, betas=(settings.beta1, settings.beta2), eps=settings.eps)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=1.0 - settings.decay)


def adam_on_paper_loss(
    x: torch.Tensor,
    units: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None,
    iterations: int,
    batch_size: int,
    generator: torch.Generator,
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run `iterations` steps on random batches (with replacement) of rows of `x` (n, Dx) and of the targets
    `units` (n, Dy), scaled to unit rows beforehand (`featswap.mapping.losses.unit_rows`, once per fit); updates
    `weight`, `bias` in place and returns the per-batch losses `(iterations,)`. `advance(n)` is told of the steps
    done, about 200 times in all (a progress bar)."""
    curve = torch.empty(iterations, device=x.device)
    # Small steps run on one CPU thread, so that a busy machine does not stall them (`featswap.threads`).
    work = batch_size * int(weight.shape[0]) * int(weight.shape[1]) if x.device.type == "cpu" else SMALL_WORK
    with torch_threads_for(work):
        every = max(1, iterations // 200)
        # Batch indices come from a CPU generator so that a seed gives the same batches on every device.
        for step in range(iterations):
            rows = torch.randint(len(x), (batch_size,), generator=generator).to(x.device)
            optimizer.zero_grad(set_to_none=True)
            loss = paper_loss_to_units(x[rows] @ weight.T + bias, units[rows])
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            curve[step] = loss.detach()
            if advance is not None and (step + 1) % every == 0:
                advance(every)
    if advance is not None and iterations % every:
        advance(iterations % every)
    return curve


def fit_paper(pairs: PairedFeatures | None, settings: PaperSettings, device: str, heads: Heads | None) -> FitResult:
    """The paper's recipe; holds the training features in memory (N x (Dx + Dy) x 4 bytes). With `iterations`
    left out, stopped early on held-out fitting rows (see `PaperSettings`)."""
    assert pairs is not None
    check_fits_in_memory(pairs.n, pairs.dx, pairs.dy, "paper")
    generator = torch.Generator().manual_seed(settings.seed)
    weight0, bias0 = initial_map(pairs.dx, pairs.dy, settings.init, generator)
    xs, ys = pairs.take(np.arange(pairs.n))
    x, y = torch.as_tensor(xs, device=device), torch.as_tensor(ys, device=device)  # the features' own dtype
    weight = weight0.to(device, x.dtype).requires_grad_(True)
    bias = bias0.to(device, x.dtype).requires_grad_(True)
    optimizer, schedule = paper_optimizer([weight, bias], settings)
    total = settings.iterations if settings.iterations is not None else MAX_ITERATIONS
    with steps(total) as advance:  # early stopping leaves the bar short
        if settings.iterations is not None:  # the recipe exactly: every row, every iteration asked for
            curve = adam_on_paper_loss(
                x, unit_rows(y), weight, bias, optimizer, schedule, settings.iterations, settings.batch_size,
                generator, advance,
            )  # fmt: skip
            losses = curve.cpu().numpy()
            return FitResult(
                weight.detach().cpu().numpy(),
                bias.detach().cpu().numpy(),
                losses,
                settings.iterations,
                still_falling(losses),
            )
        fit_rows, held_rows = split_rows(pairs.n, settings.holdout, settings.seed)
        fit_index, held_index = (torch.as_tensor(r, device=device) for r in (fit_rows, held_rows))
        x_fit, units_fit, x_held, y_held = x[fit_index], unit_rows(y[fit_index]), x[held_index], y[held_index]

        def held_out_loss() -> float:
            with torch.no_grad():
                return float(paper_loss(x_held @ weight.T + bias, y_held))

        def run(chunk: int) -> torch.Tensor:
            return adam_on_paper_loss(
                x_fit, units_fit, weight, bias, optimizer, schedule, chunk, settings.batch_size, generator, advance
            )

        stopped = until_flat(run, held_out_loss, weight, bias, cap=MAX_ITERATIONS, every=settings.eval_every,
                             patience=settings.patience, min_delta=settings.min_delta)  # fmt: skip
    losses = torch.cat(stopped.curves).cpu().numpy()
    info: dict[str, Any] = {"stopped_early": stopped.done < MAX_ITERATIONS, "best_heldout_loss": stopped.best,
                            "heldout_trace": stopped.trace, "converged": stopped.converged}  # fmt: skip
    if not stopped.converged:
        info["message"] = (
            f"not converged: the held-out loss was still improving at the last of {stopped.done:,} iterations; "
            "more iterations (--param paper.iterations=N) may fit better"
        )
    weight_, bias_ = stopped.state
    return FitResult(weight_.cpu().numpy(), bias_.cpu().numpy(), losses, stopped.done, info)


#: The paper's recipe has a fixed number of iterations; it is said to be still improving at its end when the mean
#: batch loss of its last tenth is more than this fraction below that of the tenth before.
STILL_FALLING = 0.01


def still_falling(curve: np.ndarray) -> dict[str, Any]:
    """`converged` False, with a message saying by how much, when the per-batch losses `(iterations,)` were still
    falling at the last iteration (the last tenth's mean more than 1% below the tenth before); else True."""
    tenth = len(curve) // 10
    if tenth < 10:
        return {}
    last, before = float(curve[-tenth:].mean()), float(curve[-2 * tenth : -tenth].mean())
    drop = (before - last) / before if before > 0 else 0.0
    if drop <= STILL_FALLING:
        return {"converged": True}
    return {
        "converged": False,
        "message": f"not converged: the batch loss was still falling at the last of {len(curve):,} iterations (the "
        f"last tenth's mean {drop:.1%} below the tenth before); more iterations (--param paper.iterations=N) may "
        "fit better",
    }


SOLVERS.register("paper")(
    Solver(
        "paper",
        fit_paper,
        fits_scale=False,
        r2_rank=3,
        summary="the paper's recipe: Adam on the unit-vector loss",
    )
)
