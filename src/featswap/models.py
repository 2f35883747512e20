"""Model SPECs -> Backbones. Built-in specs: `tiny-resnet`, `tiny-inception`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from featswap.backbone import Backbone, split_module
from featswap.preprocess import DataConfig
from featswap.registry import Registry
from featswap.tiny_models import TinyInception, TinyResNet
from featswap.weights import load_into

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


def load_backbone(
    spec: str,
    weights: str | Path | None = None,
    num_classes: int = 10,
    name: str | None = None,
    module: nn.Module | None = None,
) -> Backbone:
    """A Backbone from a model SPEC, optionally loading a local weight file (no network access)."""
    module = module if module is not None else build_module(spec, num_classes)
    sha = load_into(module, weights) if weights is not None else None
    config = DataConfig.from_mapping(module.data_config)  # type: ignore[arg-type]
    backbone = split_module(name or spec, spec, module, config)
    backbone.weights_sha256 = sha
    return backbone
