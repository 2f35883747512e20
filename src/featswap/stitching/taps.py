"""Forward hooks on named layers of a backbone: read their activations in one pass (`capture`), or run the
network with one layer's output replaced (`replaced`), which runs the network's own, untouched later layers on
the replacement. No graph surgery: whatever consumes the layer's output (a skip connection too) sees the
replacement.

`POOLED` names the pooled features that feed the head; replacing them is applying the head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from featswap.backbones.backbone import Backbone
from featswap.errors import ModelError

#: The pooled penultimate features `(N, D)`, the paper's `F(x)`: not a module, the input of the head.
POOLED = "@pooled"


def named_module(backbone: Backbone, layer: str) -> nn.Module:
    """The module named `layer` (a dotted path from `named_modules`)."""
    found = dict(backbone.module.named_modules()).get(layer)
    if found is None or not layer:
        raise ModelError(f"{backbone.name} has no layer {layer!r}; `featswap layers --model SPEC` lists its layers.")
    return found


def _twice(backbone: Backbone, layer: str) -> ModelError:
    return ModelError(
        f"{backbone.name}: layer {layer!r} runs more than once in one forward pass (a module reused at several "
        "places), so its output is not one activation; name the block around it instead (`featswap layers` shows "
        "how often each layer runs)."
    )


@torch.inference_mode()
def capture(backbone: Backbone, x: torch.Tensor, layers: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The pooled features `(N, D)` of preprocessed images `x` `(N, C, H, W)` and the activation of each of
    `layers` (`(N, C, H, W)`, `(N, T, C)` or `(N, D)`; `POOLED` gives the features), from one forward pass."""
    acts: dict[str, torch.Tensor] = {}

    def hook(layer: str):  # type: ignore[no-untyped-def]
        def keep(_module: nn.Module, _inputs: object, output: object) -> None:
            if layer in acts:
                raise _twice(backbone, layer)
            if not isinstance(output, torch.Tensor):
                raise ModelError(
                    f"{backbone.name}: layer {layer!r} outputs {type(output).__name__}, not one tensor; name a layer "
                    "that outputs a feature map, tokens or a vector."
                )
            acts[layer] = output.detach().clone()  # later in-place operations must not change what was read

        return keep

    handles = [named_module(backbone, layer).register_forward_hook(hook(layer)) for layer in layers if layer != POOLED]
    try:
        features = backbone.features(x)
    finally:
        for handle in handles:
            handle.remove()
    if POOLED in layers:
        acts[POOLED] = features
    missing = [layer for layer in layers if layer not in acts]
    if missing:
        raise ModelError(
            f"{backbone.name}: layer {missing[0]!r} does not run before the pooled features (the head, or a part the "
            f"forward pass skips); stitch at a layer before the head, or at {POOLED}."
        )
    return features, acts


@torch.inference_mode()
def replaced(backbone: Backbone, x: torch.Tensor, layer: str, value: torch.Tensor) -> torch.Tensor:
    """The pooled features `(N, D)` of the network on images `x` with the output of `layer` replaced by `value`
    (the layer's own shape): every layer after it runs as it is. For `POOLED`, `value` itself."""
    if layer == POOLED:
        return value
    calls = [0]

    def replace(_module: nn.Module, _inputs: object, output: object) -> torch.Tensor:
        calls[0] += 1
        if calls[0] > 1:
            raise _twice(backbone, layer)
        if not isinstance(output, torch.Tensor) or output.shape != value.shape:
            raise ModelError(
                f"{backbone.name}: layer {layer!r} output {tuple(getattr(output, 'shape', ()))} here but "
                f"{tuple(value.shape)} when it was measured; give every image the same size (--data-config)."
            )
        return value.to(output.dtype)

    handle = named_module(backbone, layer).register_forward_hook(replace)
    try:
        return backbone.features(x)
    finally:
        handle.remove()
