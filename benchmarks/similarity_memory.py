"""Peak memory of linear and debiased CKA streamed over N x (1536, 2048) features from a feature store.

    python benchmarks/similarity_memory.py [--rows 1000000] [--store DIR] [--keep]

Uses (or writes) the same planted store as `fit_memory.py`, then computes both CKA forms from streamed
feature-space sums in a fresh process and reports its peak resident memory. The last line reads
`cka peak memory: <GiB> GiB`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from memory_probe import arguments, features_bytes, measure

CKA = """
stats = GramStats.accumulate(store.pairs("train", "source", "target").chunks())
"""


def main() -> None:
    args = arguments(__doc__)
    baseline, peak, seconds, (cka, debiased) = measure(args, CKA, "stats.linear_cka(), stats.debiased_cka()")
    features = features_bytes(args)
    print(f"linear CKA {float(cka):.4f}, debiased CKA {float(debiased):.4f} in {seconds:.0f} s "
          f"over {features / 2**30:.1f} GiB of float32 features")  # fmt: skip
    print(f"memory after imports: {baseline / 2**30:.2f} GiB; peak: {peak / 2**30:.2f} GiB "
          f"({peak / features:.3f} of the features' size)")  # fmt: skip
    print(f"cka peak memory: {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
