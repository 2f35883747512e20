"""Activations as rows of channels, grids resampled, affine maps applied at every position.

A layer's activation is one of three kinds, by its shape per image: a feature map `(C, H, W)`, tokens `(T, C)`
or a vector `(D,)`. Every position of a feature map (every token) is one sample of its `C` channels; a map
between two layers is one affine map of channels applied at every position, a 1x1 convolution.

When the source's grid differs from the target's, the source activation is resampled to the target's grid
with bilinear interpolation (`torch.nn.functional.interpolate`, `align_corners=False`, antialiased when it
shrinks), before the map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from featswap.errors import SpecError

KINDS = {3: "feature map", 2: "tokens", 1: "vector"}
RESAMPLING = "bilinear, antialiased when shrinking"


def kind(shape: tuple[int, ...]) -> str:
    """What an activation of per-image `shape` is: "feature map", "tokens" or "vector"."""
    return KINDS.get(len(shape), f"{len(shape)}-d array")


def channels(shape: tuple[int, ...]) -> int:
    """The width of the rows of an activation of per-image `shape`: C of `(C, H, W)`, of `(T, C)`, D of `(D,)`."""
    return int(shape[0] if len(shape) == 3 else shape[-1])


def positions(shape: tuple[int, ...]) -> int:
    """Samples per image: H x W of a feature map, T of tokens, 1 of a vector."""
    return int(shape[1] * shape[2]) if len(shape) == 3 else int(shape[0]) if len(shape) == 2 else 1


def check_pair(source: str, source_shape: tuple[int, ...], target: str, target_shape: tuple[int, ...]) -> None:
    """Refuse a map between activations of per-image shapes that no 1x1 map joins: different kinds, or token
    layers with different numbers of tokens."""
    a, b = kind(source_shape), kind(target_shape)
    shown = f"{source} {'x'.join(map(str, source_shape))} -> {target} {'x'.join(map(str, target_shape))}"
    if a not in KINDS.values() or a != b:
        raise SpecError(
            f"Cannot stitch {shown}: a map joins a feature map to a feature map, tokens to tokens or a vector to a "
            "vector; pick layers of the same kind (`featswap layers` shows their shapes)."
        )
    if a == "tokens" and source_shape[0] != target_shape[0]:
        raise SpecError(
            f"Cannot stitch {shown}: the layers have {source_shape[0]} and {target_shape[0]} tokens, and tokens are "
            "not resampled; pick layers with as many tokens."
        )


def resampled(shape: tuple[int, ...], target_shape: tuple[int, ...]) -> bool:
    """Whether a feature map of per-image `shape` is resampled to the grid of `target_shape`."""
    return len(shape) == 3 and shape[1:] != target_shape[1:]


def as_rows(act: torch.Tensor) -> torch.Tensor:
    """`(N * positions, C)` rows of an activation `(N, C, H, W)`, `(N, T, C)` or `(N, D)`, image by image."""
    if act.ndim == 4:
        return act.permute(0, 2, 3, 1).reshape(-1, act.shape[1])
    return act.reshape(-1, act.shape[-1])


def to_grid(act: torch.Tensor, target_shape: tuple[int, ...]) -> torch.Tensor:
    """A source activation `(N, C, H, W)` on the target's grid `(*, H', W')` (unchanged when equal or not a map)."""
    if act.ndim != 4 or tuple(act.shape[2:]) == tuple(target_shape[1:]):
        return act
    size = (int(target_shape[1]), int(target_shape[2]))
    shrinks = size[0] < act.shape[2] or size[1] < act.shape[3]
    return F.interpolate(act.float(), size=size, mode="bilinear", align_corners=False, antialias=shrinks)


def apply_map(weight: torch.Tensor, bias: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """`W x + b` at every position of `act` (`(N, Cx, H, W)`, `(N, T, Cx)` or `(N, Cx)`), same layout with `Cy`
    channels; `weight` `(Cy, Cx)`, `bias` `(Cy,)`."""
    if act.ndim == 4:
        return F.conv2d(act, weight[:, :, None, None], bias)
    return act @ weight.T + bias


def position_paper_loss(mapped: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """The sum over positions of the paper's loss `||m/|m| - t/|t| ||^2` between mapped and target activations
    (same layout), and the number of positions."""
    m = F.normalize(as_rows(mapped).double(), dim=1, eps=1e-12)
    t = F.normalize(as_rows(target).double(), dim=1, eps=1e-12)
    return float((m - t).pow(2).sum()), int(m.shape[0])
