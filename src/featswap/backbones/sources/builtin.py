"""The built-in networks: `tiny-resnet` and `tiny-inception`, the demo's digits classifiers (no prefix)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from featswap.backbones.sources.family import Built, Family
from featswap.backbones.tiny import TinyInception, TinyResNet
from featswap.registry import Registry

#: Built-in architectures: name -> factory(num_classes) returning an untrained module.
BUILTIN: Registry[Callable[[int], nn.Module]] = Registry("model")
BUILTIN.register("tiny-resnet")(TinyResNet)
BUILTIN.register("tiny-inception")(TinyInception)


def build_module(spec: str, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """An untrained built-in module, initialised from `seed`."""
    factory = BUILTIN.get(spec)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(num_classes)


class BuiltinFamily(Family):
    description = "featswap's built-in digits networks"
    example = "tiny-resnet"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        module = build_module(arg, num_classes)
        return Built(module, dict(module.data_config))  # type: ignore[arg-type]


BUILTIN_FAMILY = BuiltinFamily()
