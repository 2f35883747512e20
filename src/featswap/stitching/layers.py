"""Which layers to stitch: a network's layers as its features pass runs them, each checked once, and the layer
pairs a run's `layers` setting names (`A:B` pairs of layers, or `stages` for every pair of stage outputs)."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence

import torch

from featswap.backbones.backbone import Backbone
from featswap.backbones.forward_errors import network_runs
from featswap.backbones.layers import Layer, module_device, probe_layers
from featswap.errors import ModelError, SpecError
from featswap.stitching.activations import check_pair
from featswap.stitching.taps import POOLED, capture, replaced

#: `--layers stages`: every pair of the two networks' stage outputs (and their pooled features).
STAGES = "stages"


def layer_pair(item: str) -> tuple[str, str]:
    """`A:B` as `(layer of the first model, layer of the second)`."""
    first, sep, second = item.partition(":")
    if not sep or not first or not second or ":" in second:
        raise SpecError(
            f"--layers takes LAYER_A:LAYER_B (one colon; layers of the first and the second --model, as "
            f"`featswap layers` names them) or {STAGES}; got {item!r}."
        )
    return first, second


class NetworkLayers:
    """The layers of one backbone that its features pass runs (`featswap.backbones.layers.probe_layers`), plus
    `POOLED`, the pooled features; `get` checks a layer before it is stitched."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        input_size = backbone.data_config.input_size
        with network_runs(backbone.name, (1, *input_size)):
            found = probe_layers(backbone.module, backbone.features_fn, input_size)
        self.layers: dict[str, Layer] = {layer.name: layer for layer in found}
        self.layers[POOLED] = Layer(POOLED, "pooled features", (backbone.feature_dim,), True, 1, 1.0)
        self._checked: set[str] = set()

    @property
    def stages(self) -> list[str]:
        """The stage outputs in forward order, then `POOLED`."""
        return [name for name, layer in self.layers.items() if layer.stage and name != POOLED] + [POOLED]

    def get(self, name: str) -> Layer:
        """The layer `name`, refused when unknown, run more than once per pass, or when its output does not reach
        the pooled features (the head, or anything after it)."""
        layer = self.layers.get(name)
        if layer is None and "/" in name:  # TF-slim's end-point names (block1/unit_3) are module paths with dots
            layer = self.layers.get(name.replace("/", "."))
            name = name.replace("/", ".") if layer is not None else name
        if layer is None:
            near = difflib.get_close_matches(name, list(self.layers), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
            raise SpecError(
                f"{self.backbone.name} has no layer {name!r} run before its pooled features.{hint} "
                f"`featswap layers --model {self.backbone.spec}` lists its layers; {POOLED} is the pooled features."
            )
        if layer.calls > 1:
            raise SpecError(
                f"{self.backbone.name}: layer {name!r} runs {layer.calls} times in one forward pass (a module reused "
                "at several places), so its output is not one activation; name the block around it instead."
            )
        if name != POOLED and name not in self._checked:
            self._check_reaches_features(layer)
            self._checked.add(name)
        return layer

    def _check_reaches_features(self, layer: Layer) -> None:
        """Refuse a layer whose output, replaced by noise, leaves the pooled features unchanged: stitching there
        would report the network's native accuracy whatever the map."""
        x = torch.zeros(2, *self.backbone.data_config.input_size, device=module_device(self.backbone.module))
        native, acts = capture(self.backbone, x, [layer.name])
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(acts[layer.name].shape, generator=generator) * 10
        value = noise.to(device=x.device, dtype=acts[layer.name].dtype)
        if torch.equal(replaced(self.backbone, x, layer.name, value), native):
            raise ModelError(
                f"{self.backbone.name}: the output of layer {layer.name!r} does not reach the pooled features (it is "
                f"the head, or after it), so stitching there would measure nothing; stitch before the head, or at "
                f"{POOLED}."
            )


def stage_pairs(first: NetworkLayers, second: NetworkLayers) -> list[tuple[str, str]]:
    """Every stage output of the first network with every one of the second that a map can join (feature maps
    with feature maps, tokens with as many tokens), and the pooled features with the pooled features."""
    pairs = []
    for a, b in itertools.product(first.stages, second.stages):
        try:
            check_pair(a, first.layers[a].shape, b, second.layers[b].shape)
        except SpecError:
            continue
        pairs.append((a, b))
    return pairs


def layer_pairs(items: Sequence[str], first: NetworkLayers, second: NetworkLayers) -> list[tuple[str, str]]:
    """The layer pairs `(layer of the first network, layer of the second)` that `items` name, in order, each once:
    `A:B` items, and `STAGES` for every stage pair (`stage_pairs`). Every layer is
    checked (`NetworkLayers.get`), and every pair's shapes (`check_pair`)."""
    if not items:
        raise SpecError(f"--layers needs at least one LAYER_A:LAYER_B pair, or {STAGES}.")
    pairs: list[tuple[str, str]] = []
    for item in items:
        named = stage_pairs(first, second) if item == STAGES else [layer_pair(item)]
        pairs += [pair for pair in named if pair not in pairs]
    for a, b in pairs:
        la, lb = first.get(a), second.get(b)
        check_pair(f"{first.backbone.name}.{a}", la.shape, f"{second.backbone.name}.{b}", lb.shape)
    return pairs
