"""The paper's Venn analysis (Fig. 5): images grouped by which of three classifiers label them correctly."""

from __future__ import annotations

import numpy as np

#: Region names, in the order matplotlib-venn's `venn3(subsets=...)` expects them for the sets
#: (source, target, mapped): Abc, aBc, ABc, abC, AbC, aBC, ABC.
REGIONS = (
    "source_only",
    "target_only",
    "source_target",
    "mapped_only",
    "source_mapped",
    "target_mapped",
    "all",
)


def venn_counts(source_ok: np.ndarray, target_ok: np.ndarray, mapped_ok: np.ndarray) -> dict[str, int]:
    """Counts of the eight regions for boolean `(N,)` arrays: which images the source network, the target
    network and the target head on mapped source features label correctly. The counts sum to N."""
    s, t, m = (np.asarray(a, dtype=bool) for a in (source_ok, target_ok, mapped_ok))
    if not (s.shape == t.shape == m.shape and s.ndim == 1):
        raise ValueError(f"Venn inputs must be equal-length 1-D arrays; got {s.shape}, {t.shape}, {m.shape}.")
    return {
        "source_only": int((s & ~t & ~m).sum()),
        "target_only": int((~s & t & ~m).sum()),
        "mapped_only": int((~s & ~t & m).sum()),
        "source_target": int((s & t & ~m).sum()),
        "source_mapped": int((s & ~t & m).sum()),
        "target_mapped": int((~s & t & m).sum()),
        "all": int((s & t & m).sum()),
        "none": int((~s & ~t & ~m).sum()),
    }


def fixed_broken(venn: dict[str, int]) -> tuple[int, int]:
    """`(fixed, broken)` from Venn counts: target wrong & mapped right, and target right & mapped wrong."""
    fixed = venn["mapped_only"] + venn["source_mapped"]
    broken = venn["target_only"] + venn["source_target"]
    return fixed, broken
