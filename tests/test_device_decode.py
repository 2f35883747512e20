"""`--decode device`: JPEGs read by the workers and decoded by torchvision's `decode_jpeg` on the extraction's device
(here the CPU: the same code as on a GPU, which only changes `device`), then preprocessed there as tensors. Real
files of every colour mode (CMYK JPEGs and PNGs go through Pillow), a truncated one; the features agree with the
default path's to the rounding of the decoders and resizes, and the store keeps the two apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.config import ExtractionSettings, RunConfig
from featswap.data.collections import open_spec
from featswap.errors import DataError, ModelError, SpecError
from featswap.extraction.device_decode import EncodedImages, check_preprocessing, decode_batch
from featswap.extraction.local import extract_together
from featswap.store import FeatureStore
from images import write_folder


def photos(root: Path, count: int = 12) -> Path:
    """`count` smooth colour photos of assorted sizes (JPEG), as one class of an image folder."""
    rng = np.random.default_rng(1)
    folder = root / "things"
    folder.mkdir(parents=True)
    for i in range(count):
        h, w = 30 + 7 * i, 50 + 5 * i
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(x / (5 + i)), np.cos(y / 7), np.sin((x + y) / 11)], axis=-1) * 100 + 128
        image = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:03d}.jpg", quality=92)
    return root


def features(collection_spec: str, store: Path, decode: str, skip: bool = False) -> np.ndarray:
    collection = open_spec(collection_spec).parts["all"]
    backbone = load_backbone("tiny-inception", None, 3)  # 16 x 16 grayscale input: the luma conversion too
    settings = ExtractionSettings(batch_size=5, decode=decode, on_bad_image="skip" if skip else "fail")
    with FeatureStore.create(store) as feature_store:
        extract_together([backbone], collection, feature_store, settings, "cpu", "fit", quiet=True)
        return feature_store.features(collection.name, backbone.name)


def test_features_from_device_decoding_agree_with_pillows_to_the_decoders_rounding(tmp_path: Path) -> None:
    spec = f"imagefolder:{photos(tmp_path / 'photos')}"
    ours, theirs = features(spec, tmp_path / "device.zarr", "device"), features(spec, tmp_path / "pil.zarr", "pil")
    scale = np.linalg.norm(theirs, axis=1)
    relative = np.linalg.norm(ours - theirs, axis=1) / scale
    assert relative.max() < 0.05, relative  # resizes and decoders round differently; the same images
    assert relative.max() > 0  # and it is really another path (the photos are resized)


def test_every_colour_mode_and_a_truncated_file_go_through_the_device_path(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "modes", per_class=5, truncated=True)
    spec = f"imagefolder:{root}"
    with pytest.raises(DataError, match="zz_truncated"):
        features(spec, tmp_path / "fail.zarr", "device")
    ours = features(spec, tmp_path / "device.zarr", "device", skip=True)
    theirs = features(spec, tmp_path / "pil.zarr", "pil", skip=True)
    with FeatureStore.open(tmp_path / "device.zarr") as store:
        skipped = store.skipped("modes")
    assert list(skipped) == ["dog/zz_truncated.jpg"]
    kept = np.linalg.norm(theirs, axis=1) > 0
    relative = np.linalg.norm(ours - theirs, axis=1)[kept] / np.linalg.norm(theirs, axis=1)[kept]
    assert relative.max() < 0.1, relative  # 20 x 24 images upscaled to 16 x 16: the resizes differ the most


def test_a_jpeg_the_device_refuses_is_decoded_by_pillow_instead(tmp_path: Path) -> None:
    spec = f"imagefolder:{photos(tmp_path / 'photos', 2)}"
    collection = open_spec(spec).parts["all"]
    items = [EncodedImages(collection, skip=False)[i] for i in range(2)]
    assert [kind for kind, _, _ in items] == ["jpeg", "jpeg"]
    broken = [("jpeg", items[0][1][:40].clone(), ""), items[1]]  # cut short: decode_jpeg refuses it
    used: list[int] = []

    def fallback(k: int) -> torch.Tensor:
        used.append(k)
        return torch.full((3, 4, 4), 7, dtype=torch.uint8)

    decoded = decode_batch(broken, "cpu", fallback)
    assert used == [0] and decoded[0] is not None and int(decoded[0].max()) == 7
    assert decoded[1] is not None and decoded[1].shape == (3, 37, 55)


def test_a_preprocessing_without_a_tensor_form_is_refused(tmp_path: Path) -> None:
    spec = f"imagefolder:{photos(tmp_path / 'photos', 1)}"
    collection = open_spec(spec).parts["all"]
    backbone = load_backbone("tiny-inception", None, 3)
    assert check_preprocessing("tiny", backbone.transform(), backbone.tensor_transform(), collection, 0) < 0.25
    other = load_backbone("tiny-inception", None, 3, data_config={"input_size": (1, 16, 16), "mean": [0.1],
                                                                  "std": [0.1]})  # fmt: skip
    with pytest.raises(ModelError, match="--decode pil"):
        check_preprocessing("tiny", backbone.transform(), other.tensor_transform(), collection, 0)


def test_the_store_keeps_device_decoded_features_apart_and_ray_refuses_the_option(
    runner: CliRunner, tmp_path: Path
) -> None:
    root = photos(tmp_path / "photos", 6)
    store = tmp_path / "store.zarr"
    base = ["extract", "--model", "tiny-inception", "--fit-data", f"images:{root}", "--eval-data",
            f"imagefolder:{root}", "--store", str(store), "--batch-size", "3", "--quiet"]  # fmt: skip
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, [*base, "--decode", "device"])
    assert result.exit_code == 2 and "with decode 'pil', not 'device'" in result.output
    result = runner.invoke(app, [*base, "--precision", "bf16"])
    assert result.exit_code == 2 and "with precision 'fp32', not 'bf16'" in result.output
    result = runner.invoke(app, [*base, "--decode", "gpu"])
    assert result.exit_code == 2 and "--decode must be one of pil, device" in result.output
    with pytest.raises(SpecError, match="with --engine ray use --decode pil"):
        RunConfig.build(overrides={"extraction": {"decode": "device"}, "engine": {"kind": "ray"}})


def test_tf_slims_preprocessing_on_the_device_is_the_same_float32_arithmetic(tmp_path: Path) -> None:
    from featswap.backbones.preprocessing import DataConfig
    from featswap.data.decode import open_image
    from featswap.extraction.device_decode import jpeg_decoder

    root = photos(tmp_path / "photos", 3)
    config = DataConfig.from_mapping({"input_size": (3, 29, 31), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                                      "crop_pct": 0.875, "pipeline": "tf-inception"})  # fmt: skip
    for path in sorted((root / "things").glob("*.jpg")):
        theirs = config.transform()(open_image(path, path.name))
        ours = config.tensor_transform()(
            jpeg_decoder()(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8))
        )
        assert torch.equal(ours, theirs), path.name
