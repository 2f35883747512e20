"""`refine` (the default): the closed-form `lstsq` map as a start, then Adam on the paper's loss until a
held-out loss stops improving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from featswap import validate
from featswap.mapping.losses import paper_loss
from featswap.mapping.paired import PairedFeatures, check_fits_in_memory
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.early_stopping import until_flat
from featswap.mapping.solvers.lstsq import (
    AUTO_IF_FEW,
    LstsqSettings,
    choose_alpha,
    fit_lstsq,
    lstsq_from_moments,
    resolve_alpha,
    streamed_split_moments,
    validate_ridge,
)
from featswap.mapping.solvers.paper import adam_on_paper_loss
from featswap.progress import steps
from featswap.rows import sample_rows, split_rows


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


def fit_refine(pairs: PairedFeatures | None, settings: RefineSettings, device: str, heads: Heads | None) -> FitResult:
    assert pairs is not None
    if settings.max_iterations == 0 and settings.alpha != "auto":
        # No Adam stage and no ridge choice on the split: held-out rows would serve nothing, so this is lstsq.
        lstsq = LstsqSettings(settings.alpha, settings.normalize_target, settings.holdout, settings.seed)
        result = fit_lstsq(pairs, lstsq, device, heads)
        return FitResult(result.weight, result.bias, info=result.info)
    fit_rows, held_rows = split_rows(pairs.n, settings.holdout, settings.seed)
    # The start is fitted on the rows outside the held-out ones: those decide whether it could reproduce them.
    alpha = resolve_alpha(settings.alpha, len(fit_rows), pairs.dx)
    fit_m, held_m = streamed_split_moments(pairs, settings.holdout, settings.seed, settings.normalize_target, device)
    chosen = alpha is None
    if alpha is None:
        alpha, _ = choose_alpha(fit_m, held_m, LstsqSettings().rcond)
    w0, b0 = lstsq_from_moments(fit_m, alpha)
    if settings.max_iterations == 0:
        return FitResult(w0, b0, info={"alpha": alpha, "alpha_chosen": chosen})

    check_fits_in_memory(min(len(fit_rows), settings.max_rows) + min(len(held_rows), settings.max_eval_rows),
                         pairs.dx, pairs.dy, "refine")  # fmt: skip
    generator = torch.Generator().manual_seed(settings.seed)
    xs, ys = pairs.take(fit_rows[sample_rows(len(fit_rows), settings.max_rows, settings.seed)])
    xe, ye = pairs.take(held_rows[sample_rows(len(held_rows), settings.max_eval_rows, settings.seed + 1)])
    x, y = (torch.as_tensor(a, device=device) for a in (xs, ys))
    x_eval, y_eval = (torch.as_tensor(a, device=device) for a in (xe, ye))
    weight = torch.as_tensor(w0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    bias = torch.as_tensor(b0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    rms = float(torch.sqrt((weight.detach() ** 2).mean())) or 1.0
    optimizer = torch.optim.Adam([weight, bias], lr=settings.lr * rms)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(paper_loss(x_eval @ weight.T + bias, y_eval))

    def run(chunk: int) -> torch.Tensor:
        curve = adam_on_paper_loss(x, y, weight, bias, optimizer, None, chunk, settings.batch_size, generator).cpu()
        advance(chunk)
        return curve

    with steps(settings.max_iterations) as advance:  # a bar to the cap; early stopping leaves it short
        stopped = until_flat(
            run, held_out_loss, weight, bias, cap=settings.max_iterations, every=settings.eval_every,
            patience=settings.patience, min_delta=settings.min_delta,
        )  # fmt: skip
    curve = torch.cat(stopped.curves).numpy() if stopped.curves else np.zeros(0, dtype=np.float32)
    info: dict[str, Any] = {"alpha": alpha, "alpha_chosen": chosen, "start_heldout_loss": stopped.trace[0][1],
                            "best_heldout_loss": stopped.best, "heldout_trace": stopped.trace,
                            "converged": stopped.converged}  # fmt: skip
    if not stopped.converged:
        info["message"] = (
            f"not converged: the held-out loss was still improving at the last of {stopped.done:,} iterations "
            f"(max_iterations); a higher cap (--param refine.max_iterations=N) may fit better"
        )
    weight_, bias_ = stopped.state
    return FitResult(weight_.cpu().numpy(), bias_.cpu().numpy(), curve, stopped.done, info)


SOLVERS.register("refine")(
    Solver(
        "refine",
        RefineSettings,
        fit_refine,
        fits_scale=True,
        r2_rank=1,
        summary="lstsq start, then Adam on the paper's loss, early stopping",
    )
)
