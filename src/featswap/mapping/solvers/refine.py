"""`refine` (the default): the closed-form `lstsq` map as a start, then Adam on the paper's loss until a
held-out loss stops improving."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from featswap.catalog.solvers import LstsqSettings, RefineSettings
from featswap.mapping.losses import paper_loss, unit_rows
from featswap.mapping.paired import PairedFeatures, check_fits_in_memory
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.early_stopping import until_flat
from featswap.mapping.solvers.lstsq import (
    choose_alpha,
    fit_lstsq,
    lstsq_from_moments,
    resolve_alpha,
    streamed_split_moments,
)
from featswap.mapping.solvers.paper import adam_on_paper_loss
from featswap.progress import steps
from featswap.rows import sample_rows, split_rows


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
    x, units = torch.as_tensor(xs, device=device), unit_rows(torch.as_tensor(ys, device=device))
    x_eval, y_eval = (torch.as_tensor(a, device=device) for a in (xe, ye))
    weight = torch.as_tensor(w0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    bias = torch.as_tensor(b0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    rms = float(torch.sqrt((weight.detach() ** 2).mean())) or 1.0
    optimizer = torch.optim.Adam([weight, bias], lr=settings.lr * rms)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(paper_loss(x_eval @ weight.T + bias, y_eval))

    def run(chunk: int) -> torch.Tensor:
        curve = adam_on_paper_loss(x, units, weight, bias, optimizer, None, chunk, settings.batch_size, generator).cpu()
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
        fit_refine,
        fits_scale=True,
        r2_rank=1,
        summary="lstsq start, then Adam on the paper's loss, early stopping",
    )
)
