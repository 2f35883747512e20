"""`refine` (the default): the closed-form `lstsq` map as a start, then Adam on the paper's loss until a
held-out loss stops improving."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from featswap.catalog.solvers import LstsqSettings, RefineSettings
from featswap.mapping.losses import paper_loss
from featswap.mapping.paired import PairedFeatures, check_fits_in_memory
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
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
    x, y = (torch.as_tensor(a, device=device) for a in (xs, ys))
    x_eval, y_eval = (torch.as_tensor(a, device=device) for a in (xe, ye))
    weight = torch.as_tensor(w0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    bias = torch.as_tensor(b0, device=device, dtype=x.dtype).clone().requires_grad_(True)
    rms = float(torch.sqrt((weight.detach() ** 2).mean())) or 1.0
    optimizer = torch.optim.Adam([weight, bias], lr=settings.lr * rms)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(paper_loss(x_eval @ weight.T + bias, y_eval))

    best = start = held_out_loss()
    best_state = (weight.detach().clone(), bias.detach().clone())
    trace, curves, bad, done = [(0, start)], [], 0, 0
    with steps(settings.max_iterations) as advance:  # a bar to the cap; early stopping leaves it short
        while done < settings.max_iterations and bad < settings.patience:
            chunk = min(settings.eval_every, settings.max_iterations - done)
            curves.append(
                adam_on_paper_loss(x, y, weight, bias, optimizer, None, chunk, settings.batch_size, generator).cpu()
            )
            done += chunk
            advance(chunk)
            loss = held_out_loss()
            trace.append((done, loss))
            if loss < best * (1 - settings.min_delta):
                best, bad = loss, 0
                best_state = (weight.detach().clone(), bias.detach().clone())
            else:
                bad += 1
    curve = torch.cat(curves).numpy() if curves else np.zeros(0, dtype=np.float32)
    info: dict[str, Any] = {"alpha": alpha, "alpha_chosen": chosen, "start_heldout_loss": start,
                            "best_heldout_loss": best, "heldout_trace": trace,
                            "converged": bad >= settings.patience}  # fmt: skip
    if bad < settings.patience:
        info["message"] = (
            f"not converged: the held-out loss was still improving at the last of {done:,} iterations "
            f"(max_iterations); a higher cap (--param refine.max_iterations=N) may fit better"
        )
    return FitResult(best_state[0].cpu().numpy(), best_state[1].cpu().numpy(), curve, done, info)


SOLVERS.register("refine")(
    Solver(
        "refine",
        fit_refine,
        fits_scale=True,
        r2_rank=1,
        summary="lstsq start, then Adam on the paper's loss, early stopping",
    )
)
