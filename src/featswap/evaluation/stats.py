"""Statistics on paired per-image outcomes: exact McNemar test and paired bootstrap intervals."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from featswap import validate
from featswap.config import MAX_BOOT, MIN_BOOT
from featswap.errors import DataError


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts `fixed` and `broken`.

    Under the null hypothesis (native and mapped classifiers equally accurate) each discordant image is
    equally likely to be fixed or broken, so `fixed ~ Binomial(fixed + broken, 1/2)`. No discordant pair
    gives p = 1.
    """
    n = fixed + broken
    if n == 0:
        return 1.0
    return float(binomtest(fixed, n, 0.5, alternative="two-sided").pvalue)


def bootstrap_ci(
    native_ok: np.ndarray, mapped_ok: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Paired bootstrap percentile intervals for native accuracy, mapped accuracy and their difference.

    `native_ok`, `mapped_ok`: boolean `(N,)`, per image. Images are resampled with replacement (the same
    resample for both classifiers, hence paired), `n_boot` times from `seed`. Returns intervals for
    `native_accuracy`, `mapped_accuracy` and `loss` (native - mapped).

    A resample's accuracies depend only on how many of its images fall in each of the four outcome categories
    (both right, only native right, only mapped right, both wrong), and resampling N images with replacement
    draws those counts from one multinomial over the four categories with the observed shares: the same
    distribution as drawing per image, at O(n_boot) cost and memory whatever N. (Intervals differ from those of
    earlier versions, which drew per image, only by Monte Carlo noise: see CHANGELOG.md.)
    """
    validate.integer("n_boot", n_boot, MIN_BOOT, MAX_BOOT)
    validate.real("level", level, 0, 1, low_open=True, high_open=True)
    native = np.asarray(native_ok, dtype=bool)
    mapped = np.asarray(mapped_ok, dtype=bool)
    if native.ndim != 1 or native.shape != mapped.shape:
        raise DataError(
            f"The bootstrap resamples images, so it needs one outcome per image from each classifier, for the same "
            f"images: got shapes {native.shape} and {mapped.shape}."
        )
    n = len(native)
    if n == 0:
        raise DataError("No images to resample: the bootstrap needs at least one evaluated image.")
    both, native_only = int(np.sum(native & mapped)), int(np.sum(native & ~mapped))
    mapped_only = int(np.sum(~native & mapped))
    shares = np.asarray([both, native_only, mapped_only, n - both - native_only - mapped_only], dtype=np.float64) / n
    counts = np.random.default_rng(seed).multinomial(n, shares, size=n_boot)  # (n_boot, 4) integer counts
    stats = np.empty((n_boot, 2))
    # Integer counts over n: each accuracy is an exact fraction (never 1 + 1e-16).
    stats[:, 0] = (counts[:, 0] + counts[:, 1]) / n
    stats[:, 1] = (counts[:, 0] + counts[:, 2]) / n
    tail = (1.0 - level) / 2 * 100

    def interval(values: np.ndarray) -> tuple[float, float]:
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)

    return {
        "native_accuracy": interval(stats[:, 0]),
        "mapped_accuracy": interval(stats[:, 1]),
        "loss": interval(stats[:, 0] - stats[:, 1]),
    }
