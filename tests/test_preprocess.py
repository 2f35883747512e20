"""A model's own preprocessing from timm-style data configs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featswap.backbones.preprocessing import DataConfig
from featswap.errors import ModelError


def test_transform_shape_and_normalisation() -> None:
    config = DataConfig.from_mapping({"input_size": (1, 16, 16), "mean": (0.5,), "std": (0.25,)})
    image = Image.fromarray(np.full((8, 8), 255, dtype=np.uint8), mode="L")
    out = config.transform()(image)
    assert out.shape == (1, 16, 16)
    assert np.allclose(out.numpy(), (1.0 - 0.5) / 0.25)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_any_image_mode_becomes_the_model_channels(mode: str) -> None:
    config = DataConfig.from_mapping(
        {"input_size": (3, 12, 12), "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "crop_pct": 0.875}
    )
    image = Image.new(mode, (20, 30))
    assert config.transform()(image).shape == (3, 12, 12)


def test_missing_key_is_named() -> None:
    with pytest.raises(ModelError, match="lacks 'std'"):
        DataConfig.from_mapping({"input_size": (3, 8, 8), "mean": (0, 0, 0)})


def test_inconsistent_channels() -> None:
    with pytest.raises(ModelError, match="Inconsistent data config"):
        DataConfig.from_mapping({"input_size": (3, 8, 8), "mean": (0,), "std": (1,)})


def test_unknown_interpolation() -> None:
    with pytest.raises(ModelError, match="Unknown interpolation"):
        DataConfig.from_mapping({"input_size": (1, 8, 8), "mean": (0,), "std": (1,), "interpolation": "lanczos9"})
