"""Peak memory of `lstsq` streaming N x (1536 + 2048) float32 features from a feature store.

    python benchmarks/fit_memory.py [--rows 1000000] [--store DIR] [--keep]

Writes a real zarr feature store holding planted features of two "models" (`benchmarks/planted.py`), then
fits `lstsq` from it in a fresh process and reports that process's peak resident memory beside the size of
the features it read and the memory of the same process after its imports alone. The last line reads
`lstsq peak memory: <GiB> GiB`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from memory_probe import arguments, features_bytes, measure
from recording import Recording

FIT = """
amap = AffineMap("lstsq").fit_pairs(store.pairs("train", "source", "target"))
"""


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__, argv)
    with Recording("fit_memory", args.json, argv) as record:
        measure_fit(args, record)


def measure_fit(args: argparse.Namespace, record: Recording) -> None:
    """One streamed fit in a fresh process, printed and recorded."""
    baseline, peak, seconds, shape = measure(args, FIT, "*amap.weight_.shape")
    print(f"lstsq fit: {seconds:.0f} s, map ({', '.join(shape)})")
    print(f"memory after imports: {baseline / 2**30:.2f} GiB; peak during the fit: {peak / 2**30:.2f} GiB")
    print(f"peak / size of the features read: {peak / features_bytes(args):.3f}")
    print(f"lstsq peak memory: {peak / 2**30:.2f} GiB")
    record.figure(f"lstsq peak memory, {args.rows:,} x (1536 + 2048) streamed", peak / 2**30, unit="GiB")
    record.figure("peak / size of the features read", peak / features_bytes(args), unit="x")


if __name__ == "__main__":
    main()
