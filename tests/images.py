"""Real image files written for tests: every colour mode, JPEG and PNG, one truncated file on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_folder(
    root: Path, per_class: int = 12, truncated: bool = False, classes: tuple[str, ...] = ("cat", "dog", "fox")
) -> Path:
    """Three classes (folders named `classes`) of real images of every colour mode, as JPEG and PNG."""
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "CMYK", "RGBA", "P"]
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            base = (rng.random((20, 24, 3)) * 80 + 60 * c).astype(np.uint8)
            image = Image.fromarray(base).convert(modes[i % len(modes)])
            suffix = ".png" if image.mode in ("RGBA", "P") or (i % 2 and image.mode != "CMYK") else ".jpg"
            image.save(folder / f"{i:03d}{suffix}")
    if truncated:
        good = (root / classes[1] / "000.jpg").read_bytes()
        (root / classes[1] / "zz_truncated.jpg").write_bytes(good[: len(good) // 2])
    return root
