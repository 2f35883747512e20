"""TF-slim's evaluation preprocessing, `inception_preprocessing.preprocess_for_eval`, in torch.

An image (uint8 RGB) -> `tf.image.convert_image_dtype` (x * float32(1/255)) -> `tf.image.central_crop` (offsets
`int((size - size * fraction) / 2)` on each side, computed in float64) -> TF1's `resize_bilinear`
(`align_corners=False`, no half-pixel centres, no antialiasing: source `y * (in / out)` in float32, the lower and
upper neighbours `floor` and `min(ceil, in - 1)`) -> `(x - 0.5) * 2` (given as mean 0.5, std 0.5).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def central_crop_box(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """`tf.image.central_crop`'s box: (top, left, crop height, crop width)."""
    top = int((height - height * fraction) / 2)
    left = int((width - width * fraction) / 2)
    return top, left, height - 2 * top, width - 2 * left


def legacy_neighbours(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each output index: lower and upper source indices and the float32 weight of the upper one, as TF1's
    `resize_bilinear` computes them (`align_corners=False`, `half_pixel_centers=False`)."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.arange(out_size, dtype=np.float32) * scale
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    lerp = (source - floor).astype(np.float32)
    return torch.from_numpy(lower), torch.from_numpy(upper), torch.from_numpy(lerp)


def resize_bilinear_tf1(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`x (C, H, W)` float32 resized to `(C, height, width)` as TF1's `resize_bilinear` (see the module)."""
    y0, y1, dy = legacy_neighbours(x.shape[1], height)
    x0, x1, dx = legacy_neighbours(x.shape[2], width)
    top, bottom = x[:, y0], x[:, y1]
    top_left, top_right = top[:, :, x0], top[:, :, x1]
    bottom_left, bottom_right = bottom[:, :, x0], bottom[:, :, x1]
    upper = top_left + (top_right - top_left) * dx
    lower = bottom_left + (bottom_right - bottom_left) * dx
    return upper + (lower - upper) * dy[:, None]


def preprocess_for_eval(
    image: Image.Image | np.ndarray,
    height: int,
    width: int,
    central_fraction: float = 0.875,
    mean: tuple[float, ...] = (0.5, 0.5, 0.5),
    std: tuple[float, ...] = (0.5, 0.5, 0.5),
) -> torch.Tensor:
    """An RGB image (PIL, or uint8 `(H, W, C)`) -> float32 `(C, height, width)` as TF-slim's eval preprocessing
    (with the default mean and std, `(x - 0.5) * 2`)."""
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    x = pixels.permute(2, 0, 1).to(torch.float32) * torch.tensor(1 / 255, dtype=torch.float32)
    if central_fraction < 1.0:
        top, left, crop_h, crop_w = central_crop_box(x.shape[1], x.shape[2], central_fraction)
        x = x[:, top : top + crop_h, left : left + crop_w]
    x = resize_bilinear_tf1(x, height, width)
    shift = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    scale = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return ((x - shift) / scale).contiguous()
