"""The layers of a network a user can name: every named module, with the shape of its output on one image in
the order the forward pass finishes them, how often one pass calls it, how deep it lies, and which of them are
the network's stage outputs.

Stage outputs are timm's `feature_info` modules where the network declares them (timm models). Otherwise they
are found from the shapes: the top-level modules in the order they run (a top-level `nn.Sequential` whose
children work at several spatial sizes is replaced by its children, recursively), grouped into runs of equal
spatial size; the last module of each run wider than 1 x 1 is a stage output (the output just before the
network next downsamples). For torchvision's ResNets that gives `relu`, `layer1` .. `layer4`; for a CIFAR
ResNet `layer1` .. `layer3`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from featswap.backbones.forward_errors import network_runs


@dataclass(frozen=True)
class Layer:
    """A named module: `name` (its dotted path, as `named_modules` gives it), `kind` (its class), `shape` (its
    output for one image without the batch axis: `(C, H, W)` for a feature map, `(T, C)` for tokens, `(D,)`),
    whether it is a stage output, `calls` (how often one forward pass runs it) and `depth` (the share of the
    pass's leaf modules finished when it first finishes, out of all of them plus one for what follows the last,
    the pooling: 0 < depth < 1, and the pooled features are at 1)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    stage: bool
    calls: int = 1
    depth: float = 0.0


def declared_stages(module: nn.Module) -> list[str]:
    """The modules timm's `feature_info` names as the network's stage outputs (empty when it declares none)."""
    info = getattr(module, "feature_info", None)
    if isinstance(info, list):
        return [str(d["module"]) for d in info if isinstance(d, dict) and d.get("module")]
    return []


def found_stages(module: nn.Module, shapes: dict[str, tuple[int, ...]], order: list[str]) -> list[str]:
    """Stage outputs from the shapes `(C, H, W)` of modules finished in `order`: see the module docstring."""
    children = dict(module.named_children())

    def units(prefix: str, members: dict[str, nn.Module]) -> list[str]:
        found = []
        for name, child in members.items():
            path = f"{prefix}{name}"
            if path not in shapes:
                continue
            inner = {f"{path}.{n}": c for n, c in child.named_children()}
            sizes = {shapes[p][1:] for p in inner if len(shapes.get(p, ())) == 3}
            if isinstance(child, nn.Sequential | nn.ModuleList) and len(sizes) > 1:
                found += units(f"{path}.", dict(child.named_children()))
            elif len(shapes[path]) == 3:
                found.append(path)
        return found

    ordered = sorted(units("", children), key=order.index)
    stages = []
    for i, name in enumerate(ordered):
        size = shapes[name][1:]
        last_of_run = i + 1 == len(ordered) or shapes[ordered[i + 1]][1:] != size
        if last_of_run and size != (1, 1):
            stages.append(name)
    return stages


def module_device(module: nn.Module) -> torch.device:
    """Where the module's parameters are (the CPU for a module without any)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


@torch.inference_mode()
def probe_layers(
    module: nn.Module, run: Callable[[torch.Tensor], object], input_size: tuple[int, int, int]
) -> list[Layer]:
    """Every named module of `module` that outputs one tensor when `run` (a forward pass of it, or part of one)
    is applied to one zero image of `input_size` `(C, H, W)`, in the order they first finish."""
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    calls: dict[str, int] = {}
    leaves_done: dict[str, int] = {}
    names = {m: n for n, m in module.named_modules() if n}
    leaves = {m for m in names if not any(True for _ in m.children())}
    finished = [0]

    def record(sub: nn.Module, _: object, output: object) -> None:
        name = names[sub]
        calls[name] = calls.get(name, 0) + 1
        if sub in leaves:
            finished[0] += 1
        if isinstance(output, torch.Tensor) and name not in shapes:
            shapes[name] = (type(sub).__name__, tuple(int(d) for d in output.shape[1:]))
            leaves_done[name] = finished[0]

    handles = [m.register_forward_hook(record) for m in names]
    try:
        module.eval()
        run(torch.zeros(1, *input_size, device=module_device(module)))
    finally:
        for handle in handles:
            handle.remove()
    order = list(shapes)
    stages = set(declared_stages(module)) or set(found_stages(module, {n: s for n, (_, s) in shapes.items()}, order))
    total = finished[0] + 1
    return [Layer(n, kind, shape, n in stages, calls[n], leaves_done[n] / total) for n, (kind, shape) in shapes.items()]


def list_layers(module: nn.Module, input_size: tuple[int, int, int], name: str = "the network") -> list[Layer]:
    """`probe_layers` of the module's whole forward pass (a failure of network `name` in it: `ModelError`)."""
    with network_runs(name, (1, *input_size)):
        return probe_layers(module, module, input_size)


def layers_table(layers: list[Layer], stages_only: bool = False) -> str:
    """The layers as aligned text: name, kind, output shape, and `stage` where it is one."""
    shown = [layer for layer in layers if layer.stage or not stages_only]
    rows = [("layer", "module", "output (per image)", "")]
    rows += [
        (
            la.name,
            la.kind,
            " x ".join(map(str, la.shape)) or "scalar",
            ("stage" if la.stage else "") + (f" (runs {la.calls}x per pass)" if la.calls > 1 else ""),
        )
        for la in shown
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)
