"""A model's own preprocessing, described by timm's data-config keys and turned into a transform."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2

from featswap.errors import ModelError

INTERPOLATIONS = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class DataConfig:
    """timm's data config: `input_size` (C, H, W), `mean`/`std` per channel, resize interpolation and
    `crop_pct` (the image is resized to `H / crop_pct` on its short side, then centre-cropped to H x W)."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DataConfig:
        """Build from a timm-style dict, ignoring keys featswap does not use (e.g. `crop_mode`)."""
        try:
            size = tuple(int(v) for v in config["input_size"])
            mean = tuple(float(v) for v in config["mean"])
            std = tuple(float(v) for v in config["std"])
        except KeyError as err:
            raise ModelError(
                f"The data config lacks {err.args[0]!r}; it needs input_size, mean and std "
                "(timm's keys), for example {'input_size': (3, 224, 224), 'mean': (0.485, 0.456, 0.406), "
                "'std': (0.229, 0.224, 0.225)}."
            ) from None
        interpolation = str(config.get("interpolation", "bilinear"))
        crop_pct = float(config.get("crop_pct", 1.0) or 1.0)
        if len(size) != 3 or len(mean) != size[0] or len(std) != size[0]:
            raise ModelError(
                f"Inconsistent data config: input_size {size} has {size[0] if size else 0} channels but mean "
                f"has {len(mean)} and std {len(std)} values."
            )
        if interpolation not in INTERPOLATIONS:
            raise ModelError(f"Unknown interpolation {interpolation!r}; use one of {sorted(INTERPOLATIONS)}.")
        return cls((size[0], size[1], size[2]), mean, std, interpolation, crop_pct)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> float tensor (C, H, W), normalised; grayscale/CMYK/alpha converted first."""
        channels, height, width = self.input_size
        mode = "L" if channels == 1 else "RGB"
        scale = math.floor(min(height, width) / self.crop_pct)
        resize: Any = (height, width) if self.crop_pct == 1.0 else scale
        pipeline = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(resize, interpolation=INTERPOLATIONS[self.interpolation], antialias=True),
                v2.CenterCrop((height, width)),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )

        def apply(image: Image.Image) -> torch.Tensor:
            if image.mode != mode:
                image = image.convert(mode)
            return pipeline(image)

        return apply
