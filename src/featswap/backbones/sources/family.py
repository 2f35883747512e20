"""The contract every source of networks fulfils: a SPEC's argument -> a module, its preprocessing and its split.

A family is registered once in `FAMILIES` under the prefix of its SPECs (`timm:NAME` -> "timm"); the rest of
featswap never asks which family built a `Backbone`. Optional libraries (TensorFlow, transformers, open_clip)
are imported only inside their family's module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.checkpoints import load_into
from featswap.errors import ModelError
from featswap.registry import Registry

#: `x (N, C, H, W) -> features (N, D)`.
FeatureFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Built:
    """What a family builds from a SPEC: the module and the preprocessing it declares (timm's data-config keys,
    or None when it declares none), and optionally its split (None: featswap finds the last linear layer)."""

    module: nn.Module
    data_config: Mapping[str, Any] | None
    features: FeatureFn | None = None
    head: nn.Module | None = None
    #: Leading head outputs that are not classes, when the family knows (None: decided from the head's size).
    head_offset: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class Family:
    """A source of networks. Subclasses set `prefix` and `description` and implement `build`."""

    prefix: str = ""
    description: str = ""
    #: A SPEC of this family with an example argument, for `--help` and error messages.
    example: str = ""

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        """The module for `prefix:arg`, with random weights when not `pretrained`."""
        raise NotImplementedError

    def load_weights(self, built: Built, path: Path) -> str:
        """Load a local weight file into `built.module` strictly; returns the file's sha256."""
        return load_into(built.module, path)

    def split(self, built: Built, name: str) -> tuple[FeatureFn, nn.Module]:
        """`(features, head)`: the family's own split when it declared one, else the generic split."""
        from featswap.backbones.sources.heads import generic_split

        if built.features is not None and built.head is not None:
            return built.features, built.head
        return generic_split(built.module, name)


#: Families by SPEC prefix: `prefix:ARG`.
FAMILIES: Registry[Family] = Registry("model family")


def register(family: Family) -> Family:
    """Add a family under its prefix."""
    FAMILIES.register(family.prefix)(family)
    return family


def summary(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def published_weights_missing(spec: str, err: BaseException) -> str:
    """Why a network's published weights could not be loaded, and what to do instead."""
    return (
        f"Cannot load the published weights of {spec} ({summary(err)}): they come from the download cache or "
        "the network. Give a local weight file with --weights FILE, or use --no-pretrained for random weights."
    )


def no_preprocessing(spec: str) -> ModelError:
    return ModelError(
        f"{spec}: no preprocessing known. Give the module a `data_config` attribute (timm's keys: input_size, "
        "mean, std, interpolation, crop_pct) or pass --data-config."
    )
