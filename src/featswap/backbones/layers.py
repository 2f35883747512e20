"""The layers of a network a user can name: every named module, with the shape of its output on one image in
the order the forward pass runs them, and which of them are the network's stage outputs.

Stage outputs are timm's `feature_info` modules where the network declares them (timm models); otherwise the
top-level child modules whose output is a feature map `(C, H, W)` (torchvision's `layer1`..`layer4` of a ResNet,
the blocks of a user's `nn.Sequential`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    """A named module: `name` (its dotted path, as `named_modules` gives it), `kind` (its class), `shape` (its
    output for one image without the batch axis: `(C, H, W)` for a feature map, `(T, C)` for tokens, `(D,)`),
    and whether it is a stage output."""

    name: str
    kind: str
    shape: tuple[int, ...]
    stage: bool


def declared_stages(module: nn.Module) -> list[str]:
    """The modules timm's `feature_info` names as the network's stage outputs (empty when it declares none)."""
    info = getattr(module, "feature_info", None)
    if isinstance(info, list):
        return [str(d["module"]) for d in info if isinstance(d, dict) and d.get("module")]
    return []


@torch.inference_mode()
def list_layers(module: nn.Module, input_size: tuple[int, int, int]) -> list[Layer]:
    """Every named module of `module` that outputs one tensor, in the order a forward pass on one zero image of
    `input_size` `(C, H, W)` calls them (a module called twice is listed at its first call)."""
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    names = {m: n for n, m in module.named_modules() if n}

    def record(sub: nn.Module, _: object, output: object) -> None:
        name = names[sub]
        if isinstance(output, torch.Tensor) and name not in shapes:
            shapes[name] = (type(sub).__name__, tuple(int(d) for d in output.shape[1:]))

    handles = [m.register_forward_hook(record) for m in names]
    try:
        module.eval()
        module(torch.zeros(1, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    stages = set(declared_stages(module)) or {n for n, (_, shape) in shapes.items() if "." not in n and len(shape) == 3}
    return [Layer(n, kind, shape, n in stages) for n, (kind, shape) in shapes.items()]


def layers_table(layers: list[Layer], stages_only: bool = False) -> str:
    """The layers as aligned text: name, kind, output shape, and `stage` where it is one."""
    shown = [layer for layer in layers if layer.stage or not stages_only]
    rows = [("layer", "module", "output (per image)", "")]
    rows += [
        (la.name, la.kind, " x ".join(map(str, la.shape)) or "scalar", "stage" if la.stage else "") for la in shown
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)
