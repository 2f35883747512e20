"""JPEG decoding on the device (`--decode device`): the worker processes only read each file's bytes; the main
process decodes a whole batch with torchvision's `decode_jpeg` on the extraction's device (nvJPEG on a GPU, where a
few CPU cores cannot decode 1,000+ images/s; libjpeg-turbo on the CPU) and preprocesses it there with each network's
preprocessing as tensor operations (`DataConfig.tensor_transform`).

Images that are not JPEG files (PNGs, the digits), and JPEGs `decode_jpeg` refuses (CMYK on some devices), are
decoded by Pillow in the workers, as the default path does, and travel as pixels. The pixels differ from Pillow's
by the decoders' rounding and the resize's (a tensor resize is not Pillow's), so the store records the decoding as
part of the model: features decoded on the device are not paired with Pillow-decoded ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

from featswap.data.collections import Collection
from featswap.data.decode import to_mode
from featswap.errors import DataError, ModelError

#: A JPEG file's first bytes (its start-of-image marker).
JPEG_START = b"\xff\xd8"
#: Largest difference between a network's input from Pillow's decoding and preprocessing and from the device's,
#: in its normalised units, that `check_preprocessing` accepts (the decoders and resizes round differently by a few
#: of 255 levels; a different preprocessing, another crop or mean, differs by far more).
PREPROCESSING_TOLERANCE = 0.25

#: One image as a worker hands it on: ("jpeg", its bytes (L,) uint8), or ("pixels", (3, H, W) uint8), or
#: ("", an empty tensor) with the reason it is unreadable.
Encoded = tuple[str, torch.Tensor, str]


class EncodedImages(TorchDataset[Encoded]):
    """The images of a collection as their JPEG bytes, or (not a JPEG file) as RGB pixels decoded by Pillow, each
    with "" or why it is unreadable. With `skip`, an unreadable image's reason travels back; else it raises."""

    def __init__(self, collection: Collection, skip: bool) -> None:
        self.collection, self.skip = collection, skip

    def __len__(self) -> int:
        return len(self.collection)

    def __getitem__(self, i: int) -> Encoded:
        key = self.collection.keys[i] if self.collection.keys else ""
        path = Path(key) if key else None
        try:
            if path is not None and path.is_file():
                data = path.read_bytes()
                if data[:2] == JPEG_START:
                    return "jpeg", torch.frombuffer(bytearray(data), dtype=torch.uint8), ""
            return "pixels", pixels(self.collection, i), ""
        except (DataError, OSError) as err:
            if not self.skip:
                raise DataError(f"Cannot read image {self.collection.ids[i]!r}: {err}") from err
            return "", torch.empty(0, dtype=torch.uint8), str(err)


def pixels(collection: Collection, i: int) -> torch.Tensor:
    """Image `i` decoded by Pillow, as RGB `(3, H, W)` uint8."""
    import numpy as np

    image = to_mode(collection.load(i), "RGB", collection.ids[i])
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def as_list(items: list[Encoded]) -> list[Encoded]:
    """The DataLoader's collate: a batch stays a list (images differ in size)."""
    return items


def jpeg_decoder() -> Callable[..., Any]:
    """torchvision's `decode_jpeg` to RGB, without its notice that torchvision's decoders are deprecated in favour
    of TorchCodec's (0.29): they still work, and TorchCodec has no batched nvJPEG decoding of still images yet."""
    import functools
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

    def decode(data: Any, device: str = "cpu") -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)

    return functools.wraps(decode_jpeg)(decode)


def decode_batch(
    items: Sequence[Encoded], device: str, fallback: Callable[[int], torch.Tensor]
) -> list[torch.Tensor | None]:
    """Each item as RGB `(3, H, W)` uint8 on `device` (None for an unreadable one): the JPEGs in one `decode_jpeg`
    call on the device; a JPEG it refuses is decoded by `fallback(position)` (Pillow) instead."""
    result: list[torch.Tensor | None] = [None] * len(items)
    jpegs = [k for k, (kind, _, _) in enumerate(items) if kind == "jpeg"]
    decoded: list[torch.Tensor | None] = []
    try:
        decoded = list(jpeg_decoder()([items[k][1] for k in jpegs], device=device)) if jpegs else []
    except RuntimeError:  # one of them is refused: decode them one by one, to find it
        decoded = []
        for k in jpegs:
            try:
                decoded.append(jpeg_decoder()(items[k][1], device=device))
            except RuntimeError:
                decoded.append(None)
    for k, image in zip(jpegs, decoded, strict=True):
        result[k] = image if image is not None else fallback(k).to(device)
    for k, (kind, tensor, _) in enumerate(items):
        if kind == "pixels":
            result[k] = tensor.to(device, non_blocking=True)
    return result


def preprocess_batch(
    images: Sequence[torch.Tensor | None], transform: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]
) -> torch.Tensor:
    """`(B, C, H, W)` float32 on the images' device: each image through `transform`, zeros for an unreadable one."""
    device = next((image.device for image in images if image is not None), torch.device("cpu"))
    return torch.stack(
        [transform(image) if image is not None else torch.zeros(shape, device=device) for image in images]
    )


def check_preprocessing(
    name: str,
    pil_transform: Callable[..., torch.Tensor],
    tensor_transform: Callable[[torch.Tensor], torch.Tensor],
    collection: Collection,
    index: int,
) -> float:
    """The largest difference between a network's input from Pillow's decoding and preprocessing and from this
    module's (decoded by torchvision on the CPU), on image `index`; a ModelError beyond `PREPROCESSING_TOLERANCE`
    (a network whose preprocessing has no tensor form here)."""
    reference = pil_transform(collection.load(index))
    key = Path(collection.keys[index]) if collection.keys else None
    data = key.read_bytes() if key is not None and key.is_file() else b""
    if data[:2] == JPEG_START:
        image = jpeg_decoder()(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    else:
        image = pixels(collection, index)
    ours = tensor_transform(image)
    difference = float((ours - reference).abs().max()) if ours.shape == reference.shape else float("inf")
    if difference > PREPROCESSING_TOLERANCE:
        raise ModelError(
            f"{name}: its preprocessing on the device differs from its own by {difference:.3g} on image "
            f"{collection.ids[index]!r} (at most {PREPROCESSING_TOLERANCE} expected); extract it with --decode pil."
        )
    return difference
