"""Model SPECs -> Backbones.

- `tiny-resnet`, `tiny-inception`: the built-in digits networks.
- `timm:NAME`: any timm model; features from `forward_head(pre_logits=True)`, head `get_classifier()`.
- `torchvision:NAME`: any torchvision classification model; the head is its last `nn.Linear`.
- `path/to/file.py:function`: a user's factory returning an `nn.Module`; the head is its last `nn.Linear`
  (or `head`, with `forward_features`, as in timm); preprocessing from its `data_config` attribute or
  from the caller.

Pretrained weights come from timm / torchvision (`pretrained=True`, which needs their download cache or the
network) or from a local file (`weights=...`: safetensors or a `weights_only` PyTorch checkpoint).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.backbone import Backbone, split_module
from featswap.backbones.checkpoints import load_into
from featswap.backbones.naming import check_name, model_name
from featswap.backbones.preprocessing import DataConfig
from featswap.backbones.tiny import TinyInception, TinyResNet
from featswap.errors import ModelError, SpecError, closest
from featswap.registry import Registry

#: Built-in architectures: name -> factory(num_classes) returning an untrained module.
BUILTIN: Registry[Callable[[int], nn.Module]] = Registry("model")
BUILTIN.register("tiny-resnet")(TinyResNet)
BUILTIN.register("tiny-inception")(TinyInception)

#: torchvision's evaluation preprocessing of ImageNet classifiers (resize 256, centre crop 224).
IMAGENET_CONFIG = {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                   "interpolation": "bilinear", "crop_pct": 224 / 256}  # fmt: skip


def build_module(spec: str, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """An untrained built-in module, initialised from `seed`."""
    factory = BUILTIN.get(spec)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(num_classes)


def last_linear(module: nn.Module, name: str) -> nn.Module:
    """The classifier: the module's last `nn.Linear` (or 1x1 `nn.Conv2d`) in registration order."""
    heads = [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d) and _is_affine_head(m)]
    if not heads:
        raise ModelError(f"{name}: no nn.Linear classifier found; featswap needs a final linear layer.")
    return heads[-1]


def _is_affine_head(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1)


def hooked_features(module: nn.Module, head: nn.Module, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
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


def timm_module(name: str, num_classes: int, pretrained: bool) -> tuple[nn.Module, dict[str, Any]]:
    import timm

    if name.partition(".")[0] not in timm.list_models(name.partition(".")[0]):
        raise SpecError(f"timm has no model {name!r}.{closest(name, timm.list_models())}")
    try:
        options: dict[str, Any] = {} if pretrained else {"num_classes": num_classes}
        module = timm.create_model(name, pretrained=pretrained, **options)
    except (RuntimeError, OSError, ValueError) as err:
        if not pretrained:
            raise SpecError(f"timm cannot build {name!r}: {_summary(err)}") from err
        raise ModelError(published_weights_missing(f"timm:{name}", err)) from err
    return module, dict(timm.data.resolve_data_config({}, model=module))


def torchvision_module(name: str, num_classes: int, pretrained: bool) -> tuple[nn.Module, dict[str, Any]]:
    from torchvision.models import get_model, get_model_weights, list_models

    if name not in list_models():
        raise SpecError(f"torchvision has no model {name!r}.{closest(name, list_models())}")
    if not pretrained:
        return get_model(name, weights=None, num_classes=num_classes), dict(IMAGENET_CONFIG)
    weights = get_model_weights(name).DEFAULT
    try:
        module = get_model(name, weights=weights)
    except (RuntimeError, OSError, ValueError) as err:
        raise ModelError(published_weights_missing(f"torchvision:{name}", err)) from err
    t = weights.transforms()
    crop, resize = t.crop_size[0], t.resize_size[0]
    config = {"input_size": (3, crop, crop), "mean": tuple(t.mean), "std": tuple(t.std),
              "interpolation": t.interpolation.value, "crop_pct": crop / resize}  # fmt: skip
    return module, config


def factory_module(spec: str) -> tuple[nn.Module, dict[str, Any] | None]:
    """Call `function` of `path/to/file.py` (the spec `path/to/file.py:function`)."""
    path_text, _, function = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"Model factory file {path_text!r} does not exist (spec {spec!r}, form file.py:function).")
    loader_spec = importlib.util.spec_from_file_location(f"featswap_user_{path.stem}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"{path} is not a Python module featswap can import; the factory file must end in .py.")
    user = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(user)
    except (Exception, SystemExit) as err:
        raise ModelError(
            f"Importing {path} failed: {_summary(err)}. Fix the module so that `python {path}` runs."
        ) from err
    factory = getattr(user, function, None)
    if not callable(factory):
        raise SpecError(f"{path} has no function {function!r}.")
    try:
        module = factory()
    except TypeError as err:
        raise ModelError(
            f"Calling {function}() from {path} failed: {_summary(err)}. featswap calls the factory with no "
            f"arguments; wrap the constructor, e.g. `def {function}_default(): return {function}(...)`."
        ) from err
    except (Exception, SystemExit) as err:
        raise ModelError(f"Calling {function}() from {path} failed: {_summary(err)}.") from err
    if not isinstance(module, nn.Module):
        raise ModelError(f"{spec} returned {type(module).__name__}, not a torch.nn.Module.")
    config = getattr(module, "data_config", None)
    return module, dict(config) if isinstance(config, Mapping) else None


def published_weights_missing(spec: str, err: BaseException) -> str:
    """Why a network's published weights could not be loaded, and what to do instead."""
    return (
        f"Cannot load the published weights of {spec} ({_summary(err)}): they come from the download cache or "
        "the network. Give a local weight file with --weights FILE, or use --no-pretrained for random weights."
    )


def _summary(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


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

    `pretrained` asks timm / torchvision for their published weights (ignored with `weights`);
    `data_config` (timm's keys) overrides the preprocessing the model declares; `head_offset` is how many
    leading head outputs are not classes (None: `resolve_head_offset`'s default).
    """
    name = check_name(name) if name else model_name(spec)
    kind, _, arg = spec.partition(":")
    declared: dict[str, Any] | None
    if module is not None:
        declared = getattr(module, "data_config", None)
    elif kind == "timm":
        module, declared = timm_module(arg, num_classes, pretrained and weights is None)
    elif kind == "torchvision":
        module, declared = torchvision_module(arg, num_classes, pretrained and weights is None)
    elif ".py:" in spec:
        module, declared = factory_module(spec)
    else:
        module = build_module(spec, num_classes)
        declared = dict(module.data_config)  # type: ignore[arg-type]
    sha = load_into(module, weights) if weights is not None else None
    config = data_config or declared
    if not config:
        raise ModelError(
            f"{spec}: no preprocessing known. Give the module a `data_config` attribute (timm's keys: input_size, "
            "mean, std, interpolation, crop_pct) or pass --data-config."
        )
    module.eval()
    dynamic: Any = module  # timm-style attributes are not visible to the type checker
    head: nn.Module
    features: Callable[[torch.Tensor], torch.Tensor]
    if kind == "timm":
        features = lambda x: dynamic.forward_head(dynamic.forward_features(x), pre_logits=True)  # noqa: E731
        head = dynamic.get_classifier()
    elif hasattr(module, "forward_features") and isinstance(getattr(module, "head", None), nn.Linear):
        features, head = dynamic.forward_features, dynamic.head
    else:
        head = last_linear(module, name)
        features = hooked_features(module, head, name)
    backbone = split_module(name, spec, module, DataConfig.from_mapping(config), features, _as_linear(head, name))
    backbone.weights_sha256 = sha
    backbone.head_offset = resolve_head_offset(head_offset, backbone.head_outputs, name)
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


def _as_linear(head: nn.Module, name: str) -> nn.Module:
    """A 1x1 convolution head as the equivalent nn.Linear (same weights, viewed as (C, D))."""
    if isinstance(head, nn.Conv2d) and _is_affine_head(head):
        linear = nn.Linear(head.in_channels, head.out_channels, bias=head.bias is not None)
        linear.weight.data = head.weight.detach().flatten(1)
        if head.bias is not None:
            linear.bias.data = head.bias.detach()
        return linear
    return head


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
