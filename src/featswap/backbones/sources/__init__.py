"""Model SPECs -> Backbones, through a registry of families (one module each; `family.py` holds the contract).

- `tiny-resnet`, `tiny-inception`: the built-in digits networks (`builtin.py`).
- `timm:NAME` (`timm_models.py`), `torchvision:NAME` (`torchvision_models.py`).
- `tfslim:ARCH` (`tfslim/`): TF-slim's ResNet-v2 and Inception-v4, with Google's TF checkpoints.
- `path/to/file.py:function`: a user's factory (`factory.py`).

Pretrained weights come from a family's own published weights (`pretrained=True`, which needs their download
cache or the network) or from a local file (`weights=...`: safetensors or a `weights_only` PyTorch checkpoint,
or what the family's `load_weights` reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.backbone import Backbone, split_module
from featswap.backbones.forward_errors import network_runs
from featswap.backbones.preprocessing import DataConfig
from featswap.backbones.sources import hf, openclip, timm_models, torchvision_models  # noqa: F401  (registers)
from featswap.backbones.sources.builtin import BUILTIN, BUILTIN_FAMILY, build_module
from featswap.backbones.sources.factory import FACTORY_FAMILY, is_factory_spec
from featswap.backbones.sources.family import FAMILIES, Built, Family, no_preprocessing
from featswap.backbones.sources.heads import NoHeadError, as_linear
from featswap.backbones.sources.tfslim import family as tfslim_family  # noqa: F401  (registers tfslim)
from featswap.catalog.heads import HEAD_MODES
from featswap.catalog.naming import check_name, model_name
from featswap.errors import ModelError, SpecError
from featswap.heads.kinds import HeadKind

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
    head: str = "auto",
    features: str | None = None,
    classes: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
) -> Backbone:
    """A Backbone from a model SPEC, optionally loading a local weight file (no network access).

    `pretrained` asks the family for its published weights (ignored with `weights`); `data_config` (timm's keys)
    overrides the preprocessing the model declares; `head_offset` is how many leading head outputs are not
    classes (None: the family's, else `resolve_head_offset`'s default); `module` wraps a module already built.
    `head` "auto" keeps the network's own head (or its zero-shot head, built from `classes` and `templates`) and
    gives a network without one a probe head; "own" requires one; "probe" replaces it by a probe (of `num_classes`
    outputs, zeros until trained on the stored fitting features). `features` (pooled, cls, mean-tokens or a layer's
    name) takes other features than what the head consumes, so it implies a probe head.
    """
    if head not in HEAD_MODES:
        raise SpecError(f"--head {head!r} is not one of {', '.join(HEAD_MODES)}.")
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
    preprocessing = DataConfig.from_mapping(config)
    if features is not None or head == "probe" or built.headless:
        if head == "own":
            why = f"--features {features} are not what its head consumes" if features else "it has no head"
            raise SpecError(f"{name}: --head own, but {why}; use --head probe (or auto).")
        return probe_backbone(family, built, name, spec, preprocessing, num_classes, features, sha)
    kind = HeadKind()
    if built.zero_shot is not None:
        built.head, kind = built.zero_shot(tuple(classes or ()), tuple(templates) if templates else None)
    try:
        feature_fn, linear = family.split(built, name)
    except ModelError as err:
        if head == "own" or not isinstance(err, NoHeadError):
            raise
        return probe_backbone(family, built, name, spec, preprocessing, num_classes, None, sha)
    backbone = split_module(name, spec, built.module, preprocessing, feature_fn, as_linear(linear))
    backbone.weights_sha256 = sha
    backbone.head_kind = kind
    offset = head_offset if head_offset is not None else built.head_offset
    backbone.head_offset = resolve_head_offset(offset, backbone.head_outputs, name)
    return backbone


def probe_backbone(
    family: Family,
    built: Built,
    name: str,
    spec: str,
    preprocessing: DataConfig,
    num_classes: int,
    features: str | None,
    sha: str | None,
) -> Backbone:
    """A network with a probe head of `num_classes` outputs (zeros until trained): its features are `features`'
    choice, else what its own head consumes, else (no head) the family's features or the module's pooled output."""
    from featswap.backbones.feature_choice import TOKEN_CHOICES, layer_features, pooled

    module = built.module
    if features in TOKEN_CHOICES:
        if built.choose_features is None:
            raise SpecError(
                f"--features {features} is for token models (hf:); {name} takes a layer's name (see featswap layers)."
            )
        feature_fn = built.choose_features(features)
    elif features is not None:
        feature_fn = layer_features(module, features, module, name)
    elif built.features is not None:
        feature_fn = built.features
    else:
        try:
            feature_fn, _ = family.split(built, name)
        except NoHeadError:

            def feature_fn(x: torch.Tensor) -> torch.Tensor:
                out = module(x)
                if not isinstance(out, torch.Tensor):
                    raise ModelError(f"{name} outputs {type(out).__name__}, not a tensor of features.")
                return pooled(out, name)

    blank = torch.zeros(2, *preprocessing.input_size)
    with torch.inference_mode(), network_runs(name, tuple(blank.shape)):
        width = feature_fn(blank).shape
    if len(width) != 2:
        raise ModelError(f"{name}: its features have shape {tuple(width)}, not (N, D).")
    backbone = Backbone(
        name=name,
        spec=spec,
        module=module,
        features_fn=feature_fn,
        head_weight=torch.zeros(num_classes, int(width[1])),
        head_bias=torch.zeros(num_classes),
        data_config=preprocessing,
        forward=feature_fn,
        weights_sha256=sha,
        head_kind=HeadKind("probe"),
        features_choice=features,
    )
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
    head: str = "auto"
    features: str | None = None
    classes: tuple[str, ...] | None = None
    templates: tuple[str, ...] | None = None

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
                head=self.head,
                features=self.features,
                classes=self.classes,
                templates=self.templates,
            )
