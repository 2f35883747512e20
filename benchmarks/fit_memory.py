"""Peak memory of `lstsq` streaming N x (1536 + 2048) float32 features from a feature store.

    python benchmarks/fit_memory.py [--rows 1000000] [--store DIR] [--keep]

Writes a real zarr feature store holding planted features of two "models" (`benchmarks/planted.py`), then
fits `lstsq` from it in a fresh process and reports that process's peak resident memory beside the size of
the features it read and the memory of the same process after its imports alone. The last line reads
`lstsq peak memory: <GiB> GiB`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from featswap.store import FeatureStore
from planted import Planted

BLOCK = 16384
# The fit runs in a fresh process that reports its own high-water mark of resident memory (VmHWM, which
# starts anew at exec; getrusage's ru_maxrss would include the parent's peak from writing the store).
CHILD = """
import sys, time
from featswap.affine_map import AffineMap
from featswap.store import FeatureStore

def high_water_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

baseline = high_water_kib()
store = FeatureStore.open(sys.argv[1])
started = time.perf_counter()
amap = AffineMap("lstsq").fit_pairs(store.pairs("train", "source", "target"))
print(baseline, high_water_kib(), time.perf_counter() - started, amap.weight_.shape)
"""


def write_store(path: Path, rows: int, data: Planted) -> None:
    with FeatureStore.create(path, "planted", tuple(str(c) for c in range(data.classes))) as store:
        store.write_split("train", [f"planted/{i:07d}" for i in range(rows)], np.zeros(rows, dtype=np.int64))
        arrays = {}
        for name, dim in (("source", data.dx), ("target", data.dy)):
            store.write_model(name, {"spec": name, "feature_dim": dim, "weights_sha256": None},
                              np.zeros((data.classes, dim)), np.zeros(data.classes))  # fmt: skip
            arrays[name] = store.feature_array("train", name, dim)
        for start in range(0, rows, BLOCK):
            x, y, _ = data.block(start, min(BLOCK, rows - start))
            arrays["source"][start : start + len(x)] = x
            arrays["target"][start : start + len(y)] = y
        for name in arrays:
            for chunk in range(len(store.done_chunks("train", name))):
                store.mark_done("train", name, chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, default=None, help="where to write the store (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = parser.parse_args()
    data = Planted()
    root = args.store or Path(tempfile.mkdtemp(prefix="featswap-mem-")) / "planted.zarr"
    started = time.perf_counter()
    if args.store is not None and (root / "zarr.json").is_file():
        print(f"reusing the store at {root}")
    else:
        write_store(root, args.rows, data)
    disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    features = args.rows * (data.dx + data.dy) * 4
    print(f"wrote {args.rows:,} x ({data.dx} + {data.dy}) features ({features / 2**30:.1f} GiB as float32, "
          f"{disk / 2**30:.1f} GiB on disk) in {time.perf_counter() - started:.0f} s")  # fmt: skip
    child = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True)
    baseline_kib, peak_kib, seconds, shape = child.stdout.split(maxsplit=3)
    peak = int(peak_kib) * 1024
    print(f"lstsq fit: {float(seconds):.0f} s, map {shape.strip()}")
    print(f"memory after imports: {int(baseline_kib) / 2**20:.2f} GiB; peak during the fit: {peak / 2**30:.2f} GiB")
    print(f"peak / size of the features read: {peak / features:.3f}")
    if not args.keep:
        shutil.rmtree(root.parent if args.store is None else root, ignore_errors=True)
    print(f"lstsq peak memory: {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
