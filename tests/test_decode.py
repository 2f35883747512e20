"""Images decode as the model's own pipeline would: 16-bit and float pixels scaled, not clipped; a decompression
bomb is an unreadable image; hidden files are not images. Real files written here."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from featswap.backbones.preprocessing import DataConfig
from featswap.cli import app
from featswap.data.collections import open_spec
from featswap.data.decode import open_image, to_mode
from featswap.errors import DataError
from images import write_folder

GREY = DataConfig.from_mapping({"input_size": (1, 16, 16), "mean": (0.0,), "std": (1.0,)})
SMALL_JSON = '{"input_size": [3, 16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}'


def gradient16() -> np.ndarray:
    """A 16 x 16 16-bit gradient over the whole range 0..65535."""
    return np.linspace(0, 65535, 256).round().astype(np.uint16).reshape(16, 16)


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    Image.fromarray(gradient16()).save(tmp_path / "deep.png")
    image = open_image(tmp_path / "deep.png", "deep.png")
    assert image.mode.startswith("I")
    eight_bit = Image.fromarray(np.round(gradient16() / 65535 * 255).astype(np.uint8), mode="L")
    scaled = GREY.transform()(image)
    torch.testing.assert_close(scaled, GREY.transform()(eight_bit))
    assert 0.45 < float(scaled.mean()) < 0.55  # a gradient, not the all-white image clipping would give
    assert float(GREY.transform()(image.convert("L")).mean()) > 0.9  # what plain conversion does


def test_32_bit_and_float_images() -> None:
    wide = Image.fromarray(gradient16().astype(np.int32), mode="I")
    assert np.asarray(to_mode(wide, "L")).max() == 255
    unit = Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16), mode="F")
    assert np.asarray(to_mode(unit, "RGB")).shape == (16, 16, 3) and np.asarray(to_mode(unit, "L")).max() == 255
    with pytest.raises(DataError, match=r"its F pixels range over 0\.\.300, outside 0\.\.1"):
        to_mode(Image.fromarray(np.linspace(0, 300, 256, dtype=np.float32).reshape(16, 16), mode="F"), "L", "x")
    with pytest.raises(DataError, match=r"outside 0\.\.65535"):
        to_mode(Image.fromarray(np.full((4, 4), 70000, np.int32), mode="I"), "L", "x")
    with pytest.raises(DataError, match=r"32-bit integer pixels all lie within 0\.\.255"):
        to_mode(Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4) * 10, mode="I"), "L", "x")


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A tiny PNG file whose header says `side` x `side` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


def test_a_decompression_bomb_is_an_unreadable_image(tmp_path: Path, runner: CliRunner) -> None:
    with pytest.raises(DataError, match="larger than Pillow's limit for safe decoding"):
        open_image(bomb_png(tmp_path / "bomb.png"), "bomb.png")
    root = write_folder(tmp_path / "imgs", per_class=8)
    bomb_png(root / "cat" / "zz_bomb.png")
    args = ["compare", "--model", "timm:resnet18", "--model", "timm:mobilenetv3_small_050", "--no-pretrained",
            "--data", f"imagefolder:{root}", "--val-fraction", "0.25", "--data-config", SMALL_JSON,
            "--solver", "lstsq", "--n-boot", "20", "--no-similarity", "--quiet"]  # fmt: skip
    failed = runner.invoke(app, [*args, "--out", str(tmp_path / "fail")])
    assert failed.exit_code == 2 and "Traceback" not in failed.output
    assert "error: Cannot read image 'cat/zz_bomb.png'" in failed.output and "safe decoding" in failed.output
    skipped = runner.invoke(app, [*args, "--on-bad-image", "skip", "--out", str(tmp_path / "skip")])
    assert skipped.exit_code == 0, skipped.output
    assert "cat/zz_bomb.png" in (tmp_path / "skip" / "report.md").read_text()


def test_a_split_of_unreadable_images_is_one_clear_error(tmp_path: Path, runner: CliRunner) -> None:
    for name in ("cat", "dog"):
        (tmp_path / "bad" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "bad" / name / f"{i}.jpg").write_bytes(b"not a jpeg")
    data = ["--data", f"imagefolder:{tmp_path / 'bad'}", "--val-fraction", "0.5", "--data-config", SMALL_JSON]
    result = runner.invoke(app, ["extract", "--model", "timm:resnet18", "--no-pretrained", *data,
                                 "--on-bad-image", "skip", "--store", str(tmp_path / "s.zarr")])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "No image of collection 'train' (4 images) could be read" in result.output


def test_hidden_files_are_not_images(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", per_class=4)
    (root / "cat" / "._000.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (root / "dog" / ".thumbnails").mkdir()
    Image.new("RGB", (8, 8)).save(root / "dog" / ".thumbnails" / "000.png")
    (collection,) = open_spec(f"imagefolder:{root}").parts.values()
    assert len(collection) == 12 and not any("/." in i for i in collection.ids)


def test_palette_images_with_transparency_convert_without_warnings(recwarn: pytest.WarningsRecorder) -> None:
    image = Image.new("P", (8, 8))
    image.info["transparency"] = b"\x00" * 256
    assert to_mode(image, "RGB").mode == "RGB"
    assert not [w for w in recwarn if "Palette" in str(w.message)]
