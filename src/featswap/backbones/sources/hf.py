"""`hf:NAME_OR_DIR`: a Hugging Face transformers image model (the `featswap[hf]` extra).

A directory written by `save_pretrained` (model and image processor) works offline; a hub name is read through
the user's Hugging Face cache (`HF_HUB_OFFLINE=1` keeps it there). A model whose config names an
`...ForImageClassification` architecture has its own head: the features are exactly what that head consumes
(the input of its final `nn.Linear`: for ViT the final-layernormed CLS token, not `pooler_output`; for ConvNeXt and
ResNet the pooled, normed vector). Any other model (`AutoModel`) is a headless encoder: the CLS token of its last
hidden state (token models) or its pooled output (convolutional ones), with a probe head. Preprocessing comes from
its image processor (size, crop, resample, mean, std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.checkpoints import load_into
from featswap.backbones.feature_choice import FeatureFn
from featswap.backbones.forward_errors import network_runs
from featswap.backbones.sources.family import Built, Family, register, summary
from featswap.backbones.sources.heads import hooked_features
from featswap.errors import ModelError, SpecError

#: PIL's resampling codes (image processors' `resample`) that featswap's preprocessing has.
RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}


class HFImageModel(nn.Module):
    """A transformers image model as `x -> tensor`: the logits of a classifier, else the last hidden state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: Any = self.model(pixel_values=x)
        logits = getattr(out, "logits", None)
        result: torch.Tensor = logits if logits is not None else out.last_hidden_state
        return result


def transformers_module() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError("hf: models need the transformers library: pip install 'featswap[hf]'.") from None
    transformers.logging.set_verbosity_error()  # load reports (unused weights) would drown the progress lines
    transformers.logging.disable_progress_bar()
    return transformers


def token_choices(base: nn.Module, name: str) -> Any:
    """`--features` choice -> `x -> (N, D)` on the base model (the encoder under any head)."""

    def output(x: torch.Tensor) -> Any:
        return base(pixel_values=x)

    def cls(x: torch.Tensor) -> torch.Tensor:
        hidden = output(x).last_hidden_state
        if hidden.ndim != 3:
            raise ModelError(f"{name} has no tokens (its last hidden state is {tuple(hidden.shape)}); use pooled.")
        return hidden[:, 0]

    def mean_tokens(x: torch.Tensor) -> torch.Tensor:
        hidden = output(x).last_hidden_state
        if hidden.ndim != 3:
            raise ModelError(f"{name} has no tokens (its last hidden state is {tuple(hidden.shape)}); use pooled.")
        return hidden.mean(dim=1)

    def pooled(x: torch.Tensor) -> torch.Tensor:
        out = getattr(output(x), "pooler_output", None)
        if out is None:
            raise ModelError(f"{name} has no pooled output (pooler_output); use cls or mean-tokens.")
        return out.flatten(1)

    choices: dict[str, FeatureFn] = {"cls": cls, "mean-tokens": mean_tokens, "pooled": pooled}

    def choose(choice: str) -> FeatureFn:
        return choices[choice]

    return choose, cls, pooled


def processor_config(processor: Any, name: str) -> dict[str, Any]:
    """timm's data-config keys from a transformers image processor: input size, mean, std, resample and crop."""
    record: dict[str, Any] = processor.to_dict()

    def sizes(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            return {"shortest_edge": value}
        return {k: v for k, v in value.items() if v is not None}

    size = sizes(record.get("size")) or {}
    crop = sizes(record.get("crop_size"))
    center = bool(record.get("do_center_crop")) and crop is not None
    mean = record.get("image_mean") or (0.0, 0.0, 0.0)
    std = record.get("image_std") or (1.0, 1.0, 1.0)
    if not record.get("do_normalize", True):
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    rescale = float(record.get("rescale_factor") or 1 / 255) if record.get("do_rescale", True) else 1.0
    given: Any = record.get("resample")
    resample = 2 if given is None else int(given)
    if abs(rescale - 1 / 255) > 1e-9 or resample not in RESAMPLE:
        raise ModelError(
            f"{name}: its image processor rescales by {rescale:g} with resample {resample}, which featswap's "
            "preprocessing does not reproduce; give --data-config with input_size, mean, std, interpolation, crop_pct."
        )
    config: dict[str, Any] = {"mean": tuple(mean), "std": tuple(std), "interpolation": RESAMPLE[resample]}
    if "height" in size and "width" in size:
        h, w = int(size["height"]), int(size["width"])
        if center and crop is not None and (int(crop.get("height", h)), int(crop.get("width", w))) != (h, w):
            raise ModelError(f"{name}: its processor resizes to {h}x{w} then crops; give --data-config instead.")
        return {**config, "input_size": (3, h, w), "crop_pct": 1.0}
    edge = size.get("shortest_edge")
    if edge is None:
        raise ModelError(f"{name}: its image processor's size {size} is not one featswap reads; give --data-config.")
    edge = int(edge)
    crop_pct = record.get("crop_pct")
    if crop_pct is not None:  # ConvNeXt's processor: below 384, resize to edge / crop_pct and crop edge; else warp
        if edge < 384:
            return {**config, "input_size": (3, edge, edge), "crop_pct": float(crop_pct)}
        return {**config, "input_size": (3, edge, edge), "crop_pct": 1.0}
    if not center:
        raise ModelError(
            f"{name}: its processor resizes the shorter side to {edge} without cropping (images keep their shapes); "
            "give --data-config with a fixed input_size."
        )
    assert crop is not None  # center implies it
    height, width = int(crop.get("height", edge)), int(crop.get("width", edge))
    return {
        **config,
        "input_size": (3, height, width),
        "crop_pct": min(height, width) / edge,
        "resize_mode": "shortest",
    }


class HFFamily(Family):
    prefix = "hf"
    description = "a Hugging Face image model: a save_pretrained directory, or a hub name in the cache (featswap[hf])"
    example = "hf:google/vit-base-patch16-224"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        transformers = transformers_module()
        spec = f"hf:{arg}"
        if not arg:
            raise SpecError("hf: needs a model: hf:DIR (written by save_pretrained) or hf:ORG/NAME from the hub cache.")
        if arg.startswith(("/", ".", "~")) and not Path(arg).expanduser().is_dir():
            raise SpecError(
                f"{spec}: no directory {arg}; give a folder written by save_pretrained (model and image processor), "
                "or a hub name ORG/NAME already in your Hugging Face cache."
            )
        try:
            config = transformers.AutoConfig.from_pretrained(arg)
            processor = transformers.AutoImageProcessor.from_pretrained(arg)
        except (OSError, ValueError, KeyError) as err:
            where = "directory" if Path(arg).exists() else "name"
            raise ModelError(
                f"Cannot load {spec} ({summary(err)}). Give a directory written by save_pretrained (model and image "
                f"processor), or a hub name already in your Hugging Face cache (this {where} is neither)."
            ) from None
        architectures = list(getattr(config, "architectures", None) or [])
        classifier = any(a.endswith("ForImageClassification") for a in architectures)
        auto = transformers.AutoModelForImageClassification if classifier else transformers.AutoModel
        try:
            # use_kernels=False: recent transformers would otherwise fetch compute kernels from the hub.
            model = auto.from_pretrained(arg, use_kernels=False) if pretrained else auto.from_config(config)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise ModelError(
                f"Cannot load the weights of {spec} ({summary(err)}); give --weights FILE or --no-pretrained."
            ) from None
        module = HFImageModel(model)
        choose, cls, pooled = token_choices(getattr(model, "base_model", model), spec)
        data_config = processor_config(processor, spec)
        if classifier:
            head = [m for m in getattr(model, "classifier", model).modules() if isinstance(m, nn.Linear)]
            if not head:
                raise ModelError(f"{spec}: its classifier has no nn.Linear; featswap needs a final linear layer.")
            features = hooked_features(module, head[-1], spec)
            return Built(module, data_config, features=features, head=head[-1], choose_features=choose)
        probe = torch.zeros(1, *data_config["input_size"])
        with torch.inference_mode(), network_runs(spec, tuple(probe.shape)):
            tokens = model(pixel_values=probe).last_hidden_state.ndim == 3
        return Built(module, data_config, features=cls if tokens else pooled, choose_features=choose, headless=True)

    def load_weights(self, built: Built, path: Path) -> str:
        """A state dict (safetensors or PyTorch) of the transformers model itself (its own key names)."""
        inner: Any = built.module
        return load_into(inner.model, path)


HF = register(HFFamily())
