"""Model SPECs -> Backbones, through a registry of families (one module each; `family.py` holds the contract).

- `tiny-resnet`, `tiny-inception`: the built-in digits networks (`builtin.py`).
- `timm:NAME` (`timm_models.py`), `torchvision:NAME` (`torchvision_models.py`).
- `path/to/file.py:function`: a user's factory (`factory.py`).

Pretrained weights come from a family's own published weights (`pretrained=True`, which needs their download
cache or the network) or from a local file (`weights=...`: safetensors or a `weights_only` PyTorch checkpoint,
or what the family's `load_weights` reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.backbone import Backbone, split_module
from featswap.backbones.naming import check_name, model_name
from featswap.backbones.preprocessing import DataConfig
from featswap.backbones.sources import timm_models, torchvision_models  # noqa: F401  (registers the families)
from featswap.backbones.sources.builtin import BUILTIN, BUILTIN_FAMILY, build_module
from featswap.backbones.sources.factory import FACTORY_FAMILY, is_factory_spec
from featswap.backbones.sources.family import FAMILIES, Built, Family, no_preprocessing
from featswap.backbones.sources.heads import as_linear
from featswap.errors import ModelError

__all__ = ["BUILTIN", "FAMILIES", "BackboneRecipe", "Family", "build_module", "family_of", "load_backbone"]


def family_of(spec: str) -> tuple[Family, str]:
    """The family that reads `spec`, and the argument it is given: `prefix:ARG` -> (that family, ARG); a
    `file.py:function` -> the factory family with the whole SPEC; anything else is a built-in name."""
    prefix, sep, arg = spec.partition(":")
    if sep and prefix in FAMILIES:
        return FAMILIES.get(prefix), arg
    if is_factory_spec(spec):
        return FACTORY_FAMILY, spec
    return BUILTIN_FAMILY, spec


def load_backbone(
    spec: str,
    weights: str | Path | None = None,
    num_classes: int = 10,
    name: str | None = None,
    module: nn.Module | None = None,
    pretrained: bool = False,
    data_config: Mapping[str, Any] | None = None,
    head_offset: int | None = None,
) -> Backbone:
    """A Backbone from a model SPEC, optionally loading a local weight file (no network access).

    `pretrained` asks the family for its published weights (ignored with `weights`); `data_config` (timm's keys)
    overrides the preprocessing the model declares; `head_offset` is how many leading head outputs are not
    classes (None: the family's, else `resolve_head_offset`'s default); `module` wraps a module already built.
    """
    name = check_name(name) if name else model_name(spec)
    family, arg = family_of(spec)
    if module is not None:
        built = Built(module, getattr(module, "data_config", None))
        family = BUILTIN_FAMILY  # a module handed in is split like any other: the generic split
    else:
        built = family.build(arg, num_classes=num_classes, pretrained=pretrained and weights is None)
    sha = family.load_weights(built, Path(weights)) if weights is not None else None
    config = data_config or built.data_config
    if not config:
        raise no_preprocessing(spec)
    built.module.eval()
    features, head = family.split(built, name)
    backbone = split_module(name, spec, built.module, DataConfig.from_mapping(config), features, as_linear(head))
    backbone.weights_sha256 = sha
    offset = head_offset if head_offset is not None else built.head_offset
    backbone.head_offset = resolve_head_offset(offset, backbone.head_outputs, name)
    return backbone


#: ImageNet-1k's classes plus TF-slim's "background" at index 0: a head of this many outputs drops its first.
TF_SLIM_OUTPUTS = 1001


def resolve_head_offset(offset: int | None, outputs: int, name: str) -> int:
    """How many leading outputs of a head of `outputs` rows are not classes: `offset` when given, else 1 for a
    1001-output head (TF-slim's ImageNet networks: background, then the 1,000 classes), else 0."""
    if offset is None:
        return 1 if outputs == TF_SLIM_OUTPUTS else 0
    if not 0 <= offset < outputs:
        raise ModelError(
            f"{name}: --head-offset {offset} leaves no class outputs of its head's {outputs}; give a number from 0 "
            f"to {outputs - 1}."
        )
    return offset


@dataclass(frozen=True)
class BackboneRecipe:
    """`load_backbone`'s arguments, picklable, so that each worker of a cluster can build its own backbone.

    `build` seeds torch's generator (0) around construction, so a network without weights gets the same
    random initialisation in every process."""

    spec: str
    weights: str | None = None
    num_classes: int = 10
    name: str | None = None
    pretrained: bool = False
    data_config: Mapping[str, Any] | None = None
    head_offset: int | None = None

    def build(self) -> Backbone:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return load_backbone(
                self.spec,
                Path(self.weights) if self.weights else None,
                self.num_classes,
                name=self.name,
                pretrained=self.pretrained,
                data_config=self.data_config,
                head_offset=self.head_offset,
            )
