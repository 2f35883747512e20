"""Peak memory of linear and debiased CKA streamed over N x (1536, 2048) features from a feature store.

    python benchmarks/similarity_memory.py [--rows 1000000] [--store DIR] [--keep]

Uses (or writes) the same planted store as `fit_memory.py`, then computes both CKA forms from streamed
feature-space sums in a fresh process and reports its peak resident memory. The last line reads
`cka peak memory: <GiB> GiB`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from memory_probe import arguments, features_bytes, measure
from recording import Recording

CKA = """
stats = GramStats.accumulate(store.pairs("train", "source", "target").chunks())
"""


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv)
    with Recording("similarity_memory", args.json, argv) as record:
        measure_cka(args, record)


def measure_cka(args: argparse.Namespace, record: Recording) -> None:
    """Both CKA forms streamed in a fresh process, printed and recorded."""
    baseline, peak, seconds, (cka, debiased) = measure(args, CKA, "stats.linear_cka(), stats.debiased_cka()")
    features = features_bytes(args)
    print(f"linear CKA {float(cka):.4f}, debiased CKA {float(debiased):.4f} in {seconds:.0f} s "
          f"over {features / 2**30:.1f} GiB of float32 features")  # fmt: skip
    print(f"memory after imports: {baseline / 2**30:.2f} GiB; peak: {peak / 2**30:.2f} GiB "
          f"({peak / features:.3f} of the features' size)")  # fmt: skip
    print(f"cka peak memory: {peak / 2**30:.2f} GiB")
    record.figure(f"linear + debiased CKA peak memory, {args.rows:,} x (1536 + 2048) streamed", peak / 2**30,
                  unit="GiB")  # fmt: skip


if __name__ == "__main__":
    main()
