"""A model's own preprocessing, described by timm's data-config keys and turned into a transform."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2

from featswap import validate
from featswap.data.decode import to_mode
from featswap.errors import ModelError, SpecError

#: How an image becomes a tensor: timm's (resize the short side, centre crop, antialiased) or TF-slim's
#: `inception_preprocessing.preprocess_for_eval` (central crop, then TF1's bilinear resize).
PIPELINES = ("timm", "tf-inception")

INTERPOLATIONS = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class DataConfig:
    """timm's data config: `input_size` (C, H, W), `mean`/`std` per channel, resize interpolation and
    `crop_pct` (the image is resized to `H / crop_pct` on its short side, then centre-cropped to H x W).

    `pipeline` "tf-inception" is TF-slim's `inception_preprocessing.preprocess_for_eval` instead: a central crop
    of `crop_pct` of each side, then TF1's bilinear resize to H x W (no antialiasing), then mean and std."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    pipeline: str = "timm"
    #: At `crop_pct` 1: "squash" resizes to H x W exactly; "shortest" resizes the shorter side to min(H, W) and
    #: centre-crops (CLIP's preprocessing). Left out of `to_dict` when "squash", so earlier identities still match.
    resize_mode: str = "squash"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DataConfig:
        """Build from a timm-style dict, ignoring keys featswap does not use (e.g. `crop_mode`); every value is
        checked (1 or 3 channels, positive sizes, finite means, positive stds, `crop_pct` in (0, 1])."""
        if not isinstance(config, Mapping):
            raise ModelError(f"A data config must be a mapping with input_size, mean and std; got {config!r}.")
        missing = [k for k in ("input_size", "mean", "std") if k not in config]
        if missing:
            raise ModelError(
                f"The data config lacks {', '.join(map(repr, missing))}; it needs input_size, mean and std "
                "(timm's keys), for example {'input_size': (3, 224, 224), 'mean': (0.485, 0.456, 0.406), "
                "'std': (0.229, 0.224, 0.225)}."
            )
        try:
            size = tuple(validate.integer("data config input_size", v, 1, 8192) for v in config["input_size"])
            mean = tuple(validate.real("data config mean", v) for v in config["mean"])
            std = tuple(validate.real("data config std", v, 0, low_open=True) for v in config["std"])
            crop = config.get("crop_pct")
            crop_pct = validate.real("data config crop_pct", 1.0 if crop is None else crop, 0, 1, low_open=True)
        except TypeError:
            raise ModelError(
                "The data config's input_size, mean and std must be lists of numbers, e.g. "
                '{"input_size": [3, 224, 224], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}.'
            ) from None
        except SpecError as err:
            raise ModelError(str(err)) from None
        interpolation = str(config.get("interpolation", "bilinear"))
        if len(size) != 3 or size[0] not in (1, 3) or len(mean) != size[0] or len(std) != size[0]:
            raise ModelError(
                f"Inconsistent data config: input_size {size} must be (channels, height, width) with 1 or 3 channels, "
                f"and mean ({len(mean)} values) and std ({len(std)}) need one value per channel."
            )
        if interpolation not in INTERPOLATIONS:
            raise ModelError(f"Unknown interpolation {interpolation!r}; use one of {sorted(INTERPOLATIONS)}.")
        pipeline = str(config.get("pipeline", "timm"))
        if pipeline not in PIPELINES:
            raise ModelError(f"Unknown preprocessing pipeline {pipeline!r}; use one of {', '.join(PIPELINES)}.")
        if pipeline == "tf-inception" and (size[0] != 3 or interpolation != "bilinear"):
            raise ModelError("The tf-inception pipeline takes RGB images (3 channels) and resizes bilinearly only.")
        resize_mode = str(config.get("resize_mode", "squash"))
        if resize_mode not in ("squash", "shortest"):
            raise ModelError(f"Unknown resize_mode {resize_mode!r}; use squash or shortest.")
        return cls((size[0], size[1], size[2]), mean, std, interpolation, crop_pct, pipeline, resize_mode)

    def to_dict(self) -> dict[str, Any]:
        """timm's keys, plus `pipeline` and `resize_mode` when they are not the defaults (so stores written before
        they existed still match)."""
        data = asdict(self)
        if self.pipeline == "timm":
            del data["pipeline"]
        if self.resize_mode == "squash":
            del data["resize_mode"]
        return data

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> float tensor (C, H, W), normalised; grayscale/CMYK/alpha/16-bit converted first (see
        `featswap.data.decode.to_mode`)."""
        channels, height, width = self.input_size
        mode = "L" if channels == 1 else "RGB"
        if self.pipeline == "tf-inception":
            from featswap.backbones.sources.tfslim.preprocessing import preprocess_for_eval

            crop, mean, std = self.crop_pct, self.mean, self.std
            return lambda image: preprocess_for_eval(to_mode(image, "RGB"), height, width, crop, mean, std)
        scale = math.floor(min(height, width) / self.crop_pct)
        squash = self.crop_pct == 1.0 and self.resize_mode == "squash"
        resize: Any = (height, width) if squash else scale
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
            return pipeline(to_mode(image, mode))

        return apply

    def tensor_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """RGB `(3, H, W)` uint8 on any device -> float tensor (C, H, W) there, normalised: `transform`'s steps as
        tensor operations (the resize rounds a little differently from Pillow's; grayscale by ITU-R 601-2 luma, as
        Pillow's). The tf-inception pipeline's steps are tensor operations already: the same here, on the device."""
        channels, height, width = self.input_size
        if self.pipeline == "tf-inception":
            return functools.partial(tf_inception_on_device, size=(height, width), config=self)
        scale = math.floor(min(height, width) / self.crop_pct)
        squash = self.crop_pct == 1.0 and self.resize_mode == "squash"
        resize: Any = (height, width) if squash else scale
        steps: list[Any] = [v2.Grayscale(1)] if channels == 1 else []
        return v2.Compose(
            [
                *steps,
                v2.Resize(resize, interpolation=INTERPOLATIONS[self.interpolation], antialias=True),
                v2.CenterCrop((height, width)),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )


def tf_inception_on_device(image: torch.Tensor, size: tuple[int, int], config: DataConfig) -> torch.Tensor:
    """TF-slim's `preprocess_for_eval` (`featswap.backbones.sources.tfslim.preprocessing`) of RGB `(3, H, W)` uint8 on
    its own device: the same float32 operations in the same order, so on the CPU the same numbers."""
    from featswap.backbones.sources.tfslim.preprocessing import central_crop_box, legacy_neighbours

    device = image.device
    x = image.to(torch.float32) * torch.tensor(1 / 255, dtype=torch.float32)
    if config.crop_pct < 1.0:
        top, left, crop_h, crop_w = central_crop_box(x.shape[1], x.shape[2], config.crop_pct)
        x = x[:, top : top + crop_h, left : left + crop_w]
    y0, y1, dy = (t.to(device) for t in legacy_neighbours(x.shape[1], size[0]))
    x0, x1, dx = (t.to(device) for t in legacy_neighbours(x.shape[2], size[1]))
    top_rows, bottom_rows = x[:, y0], x[:, y1]
    upper = top_rows[:, :, x0] + (top_rows[:, :, x1] - top_rows[:, :, x0]) * dx
    lower = bottom_rows[:, :, x0] + (bottom_rows[:, :, x1] - bottom_rows[:, :, x0]) * dx
    x = upper + (lower - upper) * dy[:, None]
    shift = torch.tensor(config.mean, dtype=torch.float32, device=device)[:, None, None]
    scale = torch.tensor(config.std, dtype=torch.float32, device=device)[:, None, None]
    return ((x - shift) / scale).contiguous()
