"""Reading image files into the pixels a model's preprocessing expects.

- Images decode fully (a truncated file is an error naming the sample, never a half-grey image).
- A file whose header promises more than Pillow's decompression-bomb limit (about 179 million pixels) is an
  unreadable image: refused, or skipped with `--on-bad-image skip`; it is never decoded.
- 16-bit images (`I;16`, and 32-bit `I` images whose values reach above 255 but stay within 0..65535, as Pillow
  reads 16-bit PGMs) are scaled to 8 bits (`value * 255 / 65535`), and float images (`F`) in [0, 1] to 0..255,
  not clipped: converting them as torchvision's and timm's loaders do (`.convert("RGB")`) would clip every value
  above 255 and turn most 16-bit photos white. Images whose scale is ambiguous are refused as unreadable: a float
  image outside [0, 1], and a 32-bit `I` image whose values all lie within 0..255 (8-bit values, or a very dark
  16-bit image?) or beyond 65535.
- EXIF orientation is not applied: pixels are used as stored, as torchvision's `ImageFolder` and timm's
  loaders (and so the networks' published accuracies) use them.
- Hidden files (names starting with `.`, such as macOS's `._photo.jpg`) are not images.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from featswap.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def is_image_file(path: Path) -> bool:
    """A visible file with an image extension."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def open_image(path: Path, sample_id: str) -> Image.Image:
    """A fully decoded image; unreadable, truncated or oversized files raise a DataError naming the sample."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # large but below the hard limit
            with Image.open(path) as image:
                image.load()
                return image.copy()
    except Image.DecompressionBombError as err:
        raise DataError(
            f"Cannot read image {sample_id!r} ({path}): it is larger than Pillow's limit for safe decoding ({err}). "
            "Fix or remove the file."
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"Cannot read image {sample_id!r} ({path}): {err}. Fix or remove the file.") from err


def to_mode(image: Image.Image, mode: str, sample_id: str = "") -> Image.Image:
    """`image` in mode "L" or "RGB", with 16-bit and float pixels scaled to 8 bits rather than clipped."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        image = _to_eight_bit(image, sample_id)
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # what Pillow asks for before converting such palettes
    return image if image.mode == mode else image.convert(mode)


def _to_eight_bit(image: Image.Image, sample_id: str) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        low, high, scale = 0.0, 1.0, 255.0
    else:
        low, high, scale = 0.0, 65535.0, 255.0 / 65535.0
    if image.mode == "I" and values.size and values.max() <= 255:
        raise DataError(
            f"Cannot read image {sample_id!r}: its 32-bit integer pixels all lie within 0..255, so it is unclear "
            "whether they are 8-bit values or a dark 16-bit image. Save it with 8 or 16 bits per channel."
        )
    if not np.isfinite(values).all() or values.min(initial=0.0) < low or values.max(initial=0.0) > high:
        raise DataError(
            f"Cannot read image {sample_id!r}: its {image.mode} pixels range over "
            f"{values.min():g}..{values.max():g}, outside {low:g}..{high:g}, so they have no agreed scale to 8 "
            "bits. Convert the file to 8 or 16 bits per channel."
        )
    return Image.fromarray(np.round(values * scale).astype(np.uint8), mode="L")
