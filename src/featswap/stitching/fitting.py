"""The fitting pass: each network runs once per fitting image; the activations of every requested layer pair are
turned into rows (every position a sample) and their moments accumulated, for both directions of every pair at
once. Nothing of the activations is kept: memory is O(Cx^2 + Cx Cy) per map whatever the number of images.

The moments of each direction are kept in two parts, the images of `held_out_mask(images, holdout, seed)` and
the others, so that `lstsq`'s ridge strength can be chosen on held-out images (whole images, never single
positions of an image seen in fitting). Both closed forms then solve from the merged moments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from featswap.backbones.backbone import Backbone
from featswap.errors import DataError, SpecError
from featswap.mapping.moments import Moments
from featswap.mapping.solvers.lstsq import (
    LstsqSettings,
    choose_alpha,
    lstsq_from_moments,
    resolve_alpha,
    underdetermined,
)
from featswap.mapping.solvers.procrustes import ProcrustesSettings, procrustes_from_moments
from featswap.stitching.activations import as_rows, channels, to_grid
from featswap.stitching.taps import capture

#: The solvers that fit a map at a layer: closed forms from moments (every position is a row, so no solver
#: that holds rows in memory).
STITCH_SOLVERS = ("lstsq", "procrustes")


@dataclass(frozen=True)
class Route:
    """One direction of one layer pair: from `source` (index 0 or 1 of the two networks) at `source_layer`, with
    per-image shape `source_shape`, into the other network at `target_layer` (shape `target_shape`)."""

    source: int
    source_layer: str
    source_shape: tuple[int, ...]
    target_layer: str
    target_shape: tuple[int, ...]

    @property
    def target(self) -> int:
        return 1 - self.source

    def zeros(self) -> Moments:
        """The moments of no rows of this route: `(channels(source), channels(target))` wide."""
        return Moments.zeros(channels(self.source_shape), channels(self.target_shape))


@dataclass
class RouteMoments:
    """The moments of one route's rows on the fitting images (`fit`) and on the held-out ones (`held`)."""

    fit: Moments
    held: Moments

    @property
    def total(self) -> Moments:
        return self.fit.merge(self.held)


@dataclass(frozen=True)
class StitchMap:
    """A fitted map of channels: `weight` `(Cy, Cx)`, `bias` `(Cy,)` float64, its `solver`, the seconds the solve
    took, and what to report of the fit (`facts`: images, rows, source width, ridge strength or scale and rank, fit
    R^2)."""

    route: Route
    solver: str
    weight: np.ndarray
    bias: np.ndarray
    seconds: float
    facts: dict[str, Any] = field(default_factory=dict)

    def tensors(self, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The map as float32 tensors on `device`, for `apply_map`."""
        return (
            torch.as_tensor(self.weight, dtype=torch.float32, device=device),
            torch.as_tensor(self.bias, dtype=torch.float32, device=device),
        )


def holdout_of(solvers: Sequence[str], params: dict[str, dict[str, Any]]) -> tuple[float, int]:
    """`(holdout, seed)` of the held-out images: `lstsq`'s settings when it is fitted, else its defaults."""
    settings = LstsqSettings(**params.get("lstsq", {})) if "lstsq" in solvers else LstsqSettings()
    return settings.holdout, settings.seed


def layers_of(routes: Iterable[Route], network: int) -> list[str]:
    """The layers of `network` (0 or 1) that `routes` read, as source or as target."""
    return sorted({r.source_layer if r.source == network else r.target_layer for r in routes})


def accumulate(
    backbones: Sequence[Backbone],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, list[str]]],
    routes: Sequence[Route],
    held: np.ndarray,
    device: str = "cpu",
    progress: Callable[[int], None] = lambda _: None,
) -> list[RouteMoments]:
    """The moments of every route over the images of `batches`, in one forward pass of each network per image.

    `held` `(N,)` marks the held-out images; unreadable images (a problem given) are left out of both parts."""
    layers = [layers_of(routes, i) for i in (0, 1)]
    result = [RouteMoments(route.zeros(), route.zeros()) for route in routes]
    start = 0
    for x_first, x_second, problems in batches:
        ok = np.array([not p for p in problems], dtype=bool)
        rows = slice(start, start + len(problems))
        start += len(problems)
        if not ok.any():
            progress(len(problems))
            continue
        keep = torch.from_numpy(ok)
        acts = [
            capture(backbone, x[keep].to(device), names)[1]
            for backbone, x, names in zip(backbones, (x_first, x_second), layers, strict=True)
        ]
        held_here = torch.from_numpy(held[rows][ok])
        for route, moments in zip(routes, result, strict=True):
            target = acts[route.target][route.target_layer]
            source = to_grid(acts[route.source][route.source_layer], tuple(target.shape[1:]))
            moments.fit = moments.fit.merge(rows_moments(source[~held_here], target[~held_here], device))
            moments.held = moments.held.merge(rows_moments(source[held_here], target[held_here], device))
        progress(len(problems))
    return result


#: Rows of float64 per `Moments.of_torch` call, times the width of both sides: bounds the temporaries of a batch of
#: large feature maps (256 images of 112 x 112 positions are 3.2 M rows) to about 64 MB.
CHUNK_VALUES = 2**23


def rows_moments(source: torch.Tensor, target: torch.Tensor, device: str) -> Moments:
    """The moments of the rows of paired activations `source` `(n, Cx, ...)` and `target` `(n, Cy, ...)` (the
    same images), a few images at a time so that no temporary exceeds `CHUNK_VALUES` float64 values."""
    total = Moments.zeros(source.shape[1] if source.ndim == 4 else source.shape[-1],
                          target.shape[1] if target.ndim == 4 else target.shape[-1])  # fmt: skip
    if len(source) == 0:
        return total
    per_image = as_rows(source[:1]).shape[0] * (total.cxx.shape[0] + total.cxy.shape[1])
    step = max(1, CHUNK_VALUES // per_image)
    for start in range(0, len(source), step):
        x = as_rows(source[start : start + step]).cpu().numpy()
        y = as_rows(target[start : start + step]).cpu().numpy()
        total = total.merge(Moments.of_torch(x, y, device))
    return total


def check_settings(solver: str, params: dict[str, Any]) -> None:
    """Refuse, before any pass over the images, a solver or a setting that stitching cannot fit."""
    if solver not in STITCH_SOLVERS:
        raise SpecError(
            f"Stitching fits closed forms from streamed moments (every position is a row): --solver "
            f"{' or '.join(STITCH_SOLVERS)}, not {solver}."
        )
    if solver == "lstsq" and LstsqSettings(**params).normalize_target:
        raise SpecError("Stitching fits lstsq to the target's activations as they are: normalize_target is not "
                        "available (it is for pooled features); leave it out.")  # fmt: skip


def solve(route: Route, moments: RouteMoments, solver: str, params: dict[str, Any], images: int) -> StitchMap:
    """The map of one route with `solver` (`lstsq` or `procrustes`) and its settings `params`, from its moments
    over `images` fitting images."""
    began = time.perf_counter()
    total = moments.total
    if total.n < 2:
        raise DataError(f"Too few readable fitting images to fit a map ({total.n} rows); give more fitting images.")
    dx = int(total.cxx.shape[0])
    facts: dict[str, Any] = {"fit_size": images, "rows": int(total.n), "source_dim": dx}
    check_settings(solver, params)
    if solver == "lstsq":
        settings = LstsqSettings(**params)
        alpha = resolve_alpha(settings.alpha, total.n, dx)
        facts["alpha_chosen"] = alpha is None
        if alpha is None:
            if moments.fit.n == 0 or moments.held.n == 0:
                raise DataError(
                    f"Choosing lstsq's ridge strength needs held-out fitting images, and {images} fitting images "
                    "leave none; give more fitting images or a fixed --param alpha=VALUE."
                )
            alpha, _ = choose_alpha(moments.fit, moments.held, settings.rcond)
        weight, bias = lstsq_from_moments(total, alpha, settings.rcond)
        facts["alpha"] = float(alpha)
    else:
        weight, bias, scale, rank = procrustes_from_moments(total, ProcrustesSettings(**params).scale)
        facts["scale"] = float(scale)
        if rank < min(weight.shape):
            facts["rank"] = rank
    if underdetermined(int(total.n), dx):
        facts["underdetermined"] = True
    facts["train_r2"] = fit_r2(total, weight, bias)
    return StitchMap(route, solver, weight, bias, time.perf_counter() - began, facts)


def fit_r2(moments: Moments, weight: np.ndarray, bias: np.ndarray) -> float | None:
    """`1 - SSE / SST` of the map on the rows of `moments` (SST: the target's squared deviation from its mean), at
    most 1 (an exact map can compute a tiny negative SSE from moments); None when the target is constant."""
    if moments.tyy <= 0:
        return None
    return min(1.0, 1.0 - moments.squared_error(weight, bias) / moments.tyy)
