"""Measures of two classifiers' outputs on the same images (ReSi's output measures, Klabunde et al. 2024):
`disagreement`, the share of images whose top-1 class differs, and `jsd`, the Jensen-Shannon divergence of the
two softmaxes in bits (0..1), averaged over images.

featswap applies them twice: to the two networks' own logits (each network's untouched head on its own stored
features, `logits_of`), and, for each map, to the target network's head on its own features against the same
head on the mapped source features (native against swapped outputs). Logits are formed in blocks of rows, in
float64, so memory stays O(block x classes).
"""

from __future__ import annotations

import numpy as np

from featswap.errors import DataError

BLOCK = 4096


def logits_of(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Logits `(N, C)` float64 of a linear head `W (C, D)`, `b (C,)` on features `(N, D)`."""
    return features.astype(np.float64) @ weight.astype(np.float64).T + bias.astype(np.float64)


def _check(a: np.ndarray, b: np.ndarray, measure: str) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise DataError(
            f"{measure} compares two classifiers' logits over the same classes; got shapes {a.shape} and {b.shape} "
            "(heads that predict different sets of classes cannot be compared output by output)."
        )
    if len(a) == 0:
        raise DataError("No samples to compare.")
    if a.shape[1] < 2:
        raise DataError(f"{measure} needs at least 2 classes; got {a.shape[1]}.")
    for side in (a, b):
        if not np.isfinite(side).all():
            raise DataError(f"{measure}: the logits hold NaN or inf.")


def disagreement(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Share of rows of `(N, C)` logits whose top-1 class differs (0..1, lower = more similar; ties go to the
    lowest class index, as `argmax`)."""
    _check(logits_a, logits_b, "disagreement")
    return float((logits_a.argmax(1) != logits_b.argmax(1)).mean())


def _softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and log-probabilities `(N, C)` float64 of logits `(N, C)`, stable for any scale."""
    shifted = logits.astype(np.float64) - logits.max(1, keepdims=True)
    p = np.exp(shifted)
    total = p.sum(1, keepdims=True)
    p /= total
    shifted -= np.log(total)
    return p, shifted


def jsd_rows(logits_a: np.ndarray, logits_b: np.ndarray) -> np.ndarray:
    """`(N,)` Jensen-Shannon divergence in bits between the softmaxes of each row of two `(N, C)` logit arrays:
    `(KL(p || m) + KL(q || m)) / 2` with `m = (p + q) / 2`; log-probabilities from the logits, so that a
    probability that underflows to 0 contributes 0, as `0 log 0` does."""
    p, lp = _softmax(logits_a)
    q, lq = _softmax(logits_b)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore"):
        lm = np.log(m)
    lm[m == 0] = 0.0  # only where p and q are both 0: their terms vanish
    nats = 0.5 * ((p * (lp - lm)).sum(1) + (q * (lq - lm)).sum(1))
    return np.clip(nats / np.log(2.0), 0.0, 1.0)


def jsd(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Mean over rows of the Jensen-Shannon divergence (bits, 0..1, lower = more similar) of two `(N, C)` logit
    arrays' softmaxes, in blocks of rows."""
    _check(logits_a, logits_b, "jsd")
    total = 0.0
    for start in range(0, len(logits_a), BLOCK):
        rows = slice(start, start + BLOCK)
        total += float(jsd_rows(logits_a[rows], logits_b[rows]).sum())
    return total / len(logits_a)


def head_outputs(
    features_a: np.ndarray,
    head_a: tuple[np.ndarray, np.ndarray],
    features_b: np.ndarray,
    head_b: tuple[np.ndarray, np.ndarray],
    scored: np.ndarray | None = None,
) -> tuple[float, float]:
    """`(disagreement, jsd)` of two heads `(W (C, D), b (C,))` each on its own features `(N, D)`, in blocks of
    rows; with `scored` (sorted class indices), over those classes only, as the swap test scores them."""
    (wa, ba), (wb, bb) = head_a, head_b
    if len(wa) != len(wb):
        raise DataError(
            f"disagreement and jsd compare outputs class by class, but one head predicts {len(wa)} classes and the "
            f"other {len(wb)}."
        )
    if scored is not None:
        wa, ba, wb, bb = wa[scored], ba[scored], wb[scored], bb[scored]
    if len(features_a) == 0:
        raise DataError("No samples to compare.")
    differ, divergence = 0, 0.0
    for start in range(0, len(features_a), BLOCK):
        rows = slice(start, start + BLOCK)
        la, lb = logits_of(features_a[rows], wa, ba), logits_of(features_b[rows], wb, bb)
        _check(la, lb, "disagreement")
        differ += int((la.argmax(1) != lb.argmax(1)).sum())
        divergence += float(jsd_rows(la, lb).sum())
    return differ / len(features_a), divergence / len(features_a)
