"""`--features LAYER`: a named layer's output as a network's features, pooled to `(N, D)`.

A feature map `(N, C, H, W)` is averaged over its positions, a token sequence `(N, T, C)` over its tokens, a vector
`(N, D)` is taken as it is. The families of token models (`hf:`) add their own choices (`pooled`, `cls`,
`mean-tokens`) and the default, what the head consumes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from featswap.errors import ModelError, SpecError, closest

#: `x (N, C, H, W) -> features (N, D)`.
FeatureFn = Callable[[torch.Tensor], torch.Tensor]

#: The choices of token models besides a layer's name.
TOKEN_CHOICES = ("pooled", "cls", "mean-tokens")


def pooled(out: torch.Tensor, where: str) -> torch.Tensor:
    """`(N, C, H, W)` -> mean over positions; `(N, T, C)` -> mean over tokens; `(N, D)` as it is."""
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    if out.ndim == 3:
        return out.mean(dim=1)
    if out.ndim == 2:
        return out
    raise ModelError(f"{where} outputs shape {tuple(out.shape)}; featswap pools (N, C, H, W), (N, T, C) or (N, D).")


def layer_features(module: nn.Module, layer: str, forward: Callable[[torch.Tensor], object], name: str) -> FeatureFn:
    """`x -> (N, D)`: the pooled output of `module`'s submodule `layer` (its dotted name, as `featswap layers`
    lists it) during `forward(x)`."""
    modules = dict(module.named_modules())
    if layer not in modules or not layer:
        known = [n for n in modules if n]
        raise SpecError(
            f"--features {layer!r}: {name} has no layer of that name (see `featswap layers --model SPEC`)."
            f"{closest(layer, known)}"
        )
    target = modules[layer]

    def features(x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def keep(_m: nn.Module, _args: object, out: object) -> None:
            first = out[0] if isinstance(out, tuple | list) else out
            if isinstance(first, torch.Tensor):
                captured.append(first)

        handle = target.register_forward_hook(keep)
        try:
            forward(x)
        finally:
            handle.remove()
        if not captured:
            raise ModelError(f"{name}: layer {layer!r} did not run (or output no tensor) during the forward pass.")
        return pooled(captured[0], f"{name}'s layer {layer!r}")

    return features
