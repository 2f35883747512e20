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
    `native_accuracy`, `mapped_accuracy` and `loss` (native - mapped). Memory is O(N) per block.
    """
    validate.integer("n_boot", n_boot, MIN_BOOT, MAX_BOOT)
    validate.real("level", level, 0, 1, low_open=True, high_open=True)
    native = np.asarray(native_ok, dtype=np.int64)
    mapped = np.asarray(mapped_ok, dtype=np.int64)
    if native.ndim != 1 or native.shape != mapped.shape:
        raise DataError(
            f"The bootstrap resamples images, so it needs one outcome per image from each classifier, for the same "
            f"images: got shapes {native.shape} and {mapped.shape}."
        )
    n = len(native)
    if n == 0:
        raise DataError("No images to resample: the bootstrap needs at least one evaluated image.")
    rng = np.random.default_rng(seed)
    stats = np.empty((n_boot, 2))
    block = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        # Multinomial counts equal resampling with replacement and cost O(N) memory per resample; correct
        # counts are integers, so each accuracy is an exact fraction (never 1 + 1e-16).
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=stop - start)
        stats[start:stop, 0] = (counts @ native) / n
        stats[start:stop, 1] = (counts @ mapped) / n
    tail = (1.0 - level) / 2 * 100

    def interval(values: np.ndarray) -> tuple[float, float]:
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)

    return {
        "native_accuracy": interval(stats[:, 0]),
        "mapped_accuracy": interval(stats[:, 1]),
        "loss": interval(stats[:, 0] - stats[:, 1]),
    }
