"""Peak memory of linear and debiased CKA streamed over N x (1536, 2048) features from a feature store.

    python benchmarks/similarity_memory.py [--rows 1000000] [--store DIR] [--keep]

Uses (or writes) the same planted store as `fit_memory.py`, then computes both CKA forms from streamed
feature-space sums in a fresh process and reports its peak resident memory. The last line reads
`cka peak memory: <GiB> GiB`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fit_memory import write_store
from planted import Planted

CHILD = """
import sys, time
from featswap.similarity import GramStats
from featswap.store import FeatureStore

def high_water_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

baseline = high_water_kib()
store = FeatureStore.open(sys.argv[1])
started = time.perf_counter()
stats = GramStats.accumulate(store.pairs("train", "source", "target").chunks())
print(baseline, high_water_kib(), time.perf_counter() - started, stats.linear_cka(), stats.debiased_cka())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    data = Planted()
    root = args.store or Path(tempfile.mkdtemp(prefix="featswap-cka-")) / "planted.zarr"
    if args.store is not None and (root / "zarr.json").is_file():
        print(f"reusing the store at {root}")
    else:
        started = time.perf_counter()
        write_store(root, args.rows, data)
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - started:.0f} s")
    child = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True)
    baseline_kib, peak_kib, seconds, cka, debiased = child.stdout.split()
    features = args.rows * (data.dx + data.dy) * 4
    peak = int(peak_kib) * 1024
    print(f"linear CKA {float(cka):.4f}, debiased CKA {float(debiased):.4f} in {float(seconds):.0f} s "
          f"over {features / 2**30:.1f} GiB of float32 features")  # fmt: skip
    print(f"memory after imports: {int(baseline_kib) / 2**20:.2f} GiB; peak: {peak / 2**30:.2f} GiB "
          f"({peak / features:.3f} of the features' size)")  # fmt: skip
    if not args.keep:
        shutil.rmtree(root.parent if args.store is None else root, ignore_errors=True)
    print(f"cka peak memory: {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
