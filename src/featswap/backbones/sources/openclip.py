"""`openclip:ARCH[:PRETRAINED]`: an OpenCLIP model's image tower with CLIP's zero-shot head (`featswap[clip]`).

The features are the normalised image embeddings; the head is the zero-shot classifier open_clip's own
`build_zero_shot_classifier` makes from the evaluation collection's class names under prompt templates
(`featswap.heads.zero_shot`): the normalised mean of the normalised text embeddings of each class, times the
model's logit scale. `ARCH` alone is the architecture with random weights (as `open_clip.create_model(ARCH)`);
`ARCH:PRETRAINED` loads a published tag (`openclip:ViT-B-32:openai`) from the user's cache (HF_HUB_OFFLINE
respected), or `--weights FILE` a local state dict of the whole model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featswap.backbones.checkpoints import load_into
from featswap.backbones.sources.family import Built, Family, register, summary
from featswap.errors import ModelError, SpecError, closest
from featswap.heads.kinds import HeadKind


def open_clip_module() -> Any:
    try:
        import open_clip
    except ImportError:
        raise ModelError("openclip: models need the open_clip library: pip install 'featswap[clip]'.") from None
    return open_clip


class CLIPImageClassifier(nn.Module):
    """CLIP as a classifier: `logit_scale * normalize(encode_image(x)) @ classifier`, as open_clip scores zero-shot
    ImageNet; `classifier` `(D, C)` is open_clip's, set by `zero_shot`."""

    classifier: torch.Tensor

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("classifier", torch.zeros(0), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised image embeddings `(N, D)`."""
        model: Any = self.model
        out: torch.Tensor = model.encode_image(x, normalize=True)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(N, C)`; the embeddings `(N, D)` while no zero-shot head is built (`featswap layers`)."""
        model: Any = self.model
        if self.classifier.numel() == 0:
            return self.embed(x)
        result: torch.Tensor = model.logit_scale.exp() * self.embed(x) @ self.classifier
        return result


def preprocess_config(model: Any, open_clip: Any) -> dict[str, Any]:
    """timm's data-config keys from the model's own preprocessing (`visual.preprocess_cfg`): CLIP resizes the shorter
    side to the input size (bicubic) and centre-crops."""
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    size = cfg.get("size", getattr(model.visual, "image_size", 224))
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
    std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
    interpolation = cfg.get("interpolation", "bicubic")
    if interpolation not in ("bicubic", "bilinear", "nearest") or cfg.get("resize_mode", "shortest") != "shortest":
        raise ModelError(
            f"This OpenCLIP model's preprocessing ({cfg}) is not one featswap reproduces; give --data-config."
        )
    return {"input_size": (3, int(height), int(width)), "mean": tuple(mean), "std": tuple(std),
            "interpolation": interpolation, "crop_pct": 1.0, "resize_mode": "shortest"}  # fmt: skip


def template_text(template: Any) -> str:
    """A template as text with `{}` for the name (open_clip's are functions of the name)."""
    return template("{}") if callable(template) else str(template)


class OpenCLIPFamily(Family):
    prefix = "openclip"
    description = "an OpenCLIP model with its zero-shot head (ARCH random, ARCH:TAG published; featswap[clip])"
    example = "openclip:ViT-B-32:openai"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        open_clip = open_clip_module()
        arch, _, tag = arg.partition(":")
        known = open_clip.list_models()
        if arch not in known:
            raise SpecError(f"open_clip has no architecture {arch!r}.{closest(arch, known)}")
        root = logging.getLogger()
        level = root.level
        try:
            root.setLevel(logging.ERROR)  # open_clip warns on the root logger that random weights are random
            model = open_clip.create_model(arch, pretrained=tag if tag and pretrained else None)
        except (RuntimeError, OSError, ValueError) as err:
            if not tag or not pretrained:
                raise SpecError(f"open_clip cannot build {arch!r}: {summary(err)}") from err
            raise ModelError(
                f"Cannot load the published weights {tag!r} of {arch} ({summary(err)}): they come from your Hugging "
                "Face cache or the network. Give --weights FILE, or openclip:ARCH alone for random weights."
            ) from None
        finally:
            root.setLevel(level)
        model.eval()
        module = CLIPImageClassifier(model)
        tokenizer = open_clip.get_tokenizer(arch)

        def zero_shot(classes: Sequence[str], templates: Sequence[str] | None) -> tuple[nn.Module, HeadKind]:
            from open_clip.zero_shot_classifier import build_zero_shot_classifier
            from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

            from featswap.heads.zero_shot import class_texts

            imagenet_templates = [template_text(t) for t in OPENAI_IMAGENET_TEMPLATES]
            names, prompts = class_texts(classes, templates, IMAGENET_CLASSNAMES, imagenet_templates)
            with torch.inference_mode():
                classifier = build_zero_shot_classifier(
                    model, tokenizer, names, prompts, num_classes_per_batch=10, device="cpu", use_tqdm=False
                )  # (D, C), each column normalised
            module.classifier = classifier.clone()
            head = nn.Linear(classifier.shape[0], classifier.shape[1], bias=False)
            head.weight.data = (model.logit_scale.detach().exp() * classifier.T).clone()
            return head, HeadKind("zero-shot", names, prompts)

        return Built(module, preprocess_config(model, open_clip), features=module.embed, zero_shot=zero_shot)

    def load_weights(self, built: Built, path: Path) -> str:
        """A state dict (safetensors or PyTorch) of the whole OpenCLIP model (image and text towers)."""
        inner: Any = built.module
        return load_into(inner.model, path)


OPENCLIP = register(OpenCLIPFamily())
