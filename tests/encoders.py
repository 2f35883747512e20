"""Small random-weight encoders written by tests: a transformers ViT classifier and a headless ViT, each saved with
`save_pretrained` beside its image processor, and a tiny OpenCLIP architecture registered with open_clip (its
tokenizer ships in the package). Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

#: The tiny OpenCLIP architecture the tests register (`openclip:featswap-tiny-clip`).
TINY_CLIP = "featswap-tiny-clip"


def vit_config(**extra: Any) -> Any:
    import transformers

    return transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        **extra,
    )  # fmt: skip


def save_vit(folder: Path, classes: int | None = 3, seed: int = 0) -> Path:
    """A random ViT (with an image-classification head of `classes` outputs, or headless) and its processor."""
    import transformers

    torch.manual_seed(seed)
    if classes is None:
        model: Any = transformers.ViTModel(vit_config())
    else:
        model = transformers.ViTForImageClassification(
            vit_config(num_labels=classes, architectures=["ViTForImageClassification"])
        )
    model.save_pretrained(folder)
    transformers.ViTImageProcessor(
        size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3]
    ).save_pretrained(folder)
    return folder


def register_tiny_clip(folder: Path) -> str:
    """Register a small OpenCLIP architecture (32 x 32 images) with open_clip; returns its name."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return TINY_CLIP
