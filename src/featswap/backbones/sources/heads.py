"""Finding a network's classifier when its family declares no split: the last linear layer, and its input."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from featswap.backbones.sources.family import FeatureFn
from featswap.errors import ModelError


def generic_split(module: nn.Module, name: str) -> tuple[FeatureFn, nn.Module]:
    """timm's `forward_features` + `head` when the module has them, else the last linear layer and its input."""
    dynamic: Any = module  # timm-style attributes are not visible to the type checker
    if hasattr(module, "forward_features") and isinstance(getattr(module, "head", None), nn.Linear):
        return dynamic.forward_features, dynamic.head
    head = last_linear(module, name)
    return hooked_features(module, head, name), head


def last_linear(module: nn.Module, name: str) -> nn.Module:
    """The classifier: the module's last `nn.Linear` (or 1x1 `nn.Conv2d`) in registration order."""
    heads = [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d) and is_affine_head(m)]
    if not heads:
        raise ModelError(f"{name}: no nn.Linear classifier found; featswap needs a final linear layer.")
    return heads[-1]


def is_affine_head(m: nn.Module) -> bool:
    """An `nn.Linear`, or a 1x1 ungrouped `nn.Conv2d` (the same map on a 1x1 feature map)."""
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1)


def hooked_features(module: nn.Module, head: nn.Module, name: str) -> FeatureFn:
    """`x -> (N, D)`: the input of `head` during the module's own forward pass (dropout and identity
    layers in front of it are inactive in eval mode). A head that reads a feature map wider than 1x1
    (SqueezeNet's 1x1 convolution, pooled after it) is not an affine map on pooled features: refused."""

    def features(x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            module(x)
        finally:
            handle.remove()
        seen = captured[-1]
        if seen.ndim > 2 and seen.shape[2:].numel() > 1:
            raise ModelError(
                f"{name}: its classifier reads an unpooled feature map of shape {tuple(seen.shape)}, so it is not "
                "an affine map on pooled features. Give a file.py:function model whose last nn.Linear is the "
                "classifier on pooled features."
            )
        return seen.flatten(1)

    return features


def as_linear(head: nn.Module) -> nn.Module:
    """A 1x1 convolution head as the equivalent nn.Linear (same weights, viewed as (C, D))."""
    if isinstance(head, nn.Conv2d) and is_affine_head(head):
        linear = nn.Linear(head.in_channels, head.out_channels, bias=head.bias is not None)
        linear.weight.data = head.weight.detach().flatten(1)
        if head.bias is not None:
            linear.bias.data = head.bias.detach()
        return linear
    return head
