"""What the memory benchmarks share: a planted feature store on disk, and a fresh process that runs a
piece of code on it and reports its own peak resident memory.

The probe reads VmHWM from /proc, which starts anew at exec; getrusage's ru_maxrss would include the
parent's peak from writing the store. The probe keeps freed memory as every featswap command does
(`featswap.heap`), so its peak is a command's.
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

from featswap.store import DEFAULT_CHUNK_ROWS, FeatureStore
from planted import Planted
from recording import add_json_option

BLOCK = DEFAULT_CHUNK_ROWS  # planted rows generated and written per stored chunk
PROBE = """
import sys, time
from featswap.heap import keep_freed_memory
from featswap.mapping.affine_map import AffineMap
from featswap.similarity import GramStats
from featswap.store import DEFAULT_CHUNK_ROWS, FeatureStore

def high_water_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

keep_freed_memory()  # as every featswap command runs
baseline = high_water_kib()  # after the imports
store = FeatureStore.open(sys.argv[1])
started = time.perf_counter()
{body}
print(baseline, high_water_kib(), time.perf_counter() - started, {result})
"""


def write_store(path: Path, rows: int, data: Planted) -> None:
    """A feature store with planted features of two models, "source" and "target", in a train split."""
    classes = tuple(str(c) for c in range(data.classes))
    with FeatureStore.create(path) as store:
        store.write_collection("train", [f"planted/{i:07d}" for i in range(rows)], np.zeros(rows, dtype=np.int64),
                               classes, spec="", role="fit")  # fmt: skip
        for name, dim in (("source", data.dx), ("target", data.dy)):
            attrs = {"spec": name, "feature_dim": dim, "num_classes": data.classes, "weights_sha256": None}
            store.write_model(name, attrs, np.zeros((data.classes, dim)), np.zeros(data.classes))
            store.feature_array("train", name, dim, chunk_rows=BLOCK)
        for chunk, start in enumerate(range(0, rows, BLOCK)):
            x, y, _ = data.block(start, min(BLOCK, rows - start))
            store.write_chunk("train", "source", chunk, x)
            store.write_chunk("train", "target", chunk, y)


def arguments(doc: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The options both memory benchmarks take (`--json PATH` among them)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, default=None, help="where to write (or reuse) the store")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    add_json_option(parser)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, body: str, result: str) -> tuple[float, float, float, list[str]]:
    """Run `body` (with `store` open) in a fresh process on the planted store of `args`; returns the
    process's memory after imports and its peak (bytes), the seconds `body` took, and `result`'s words."""
    data = Planted()
    root = args.store or Path(tempfile.mkdtemp(prefix="featswap-mem-")) / "planted.zarr"
    if args.store is not None and (root / "zarr.json").is_file():
        print(f"reusing the store at {root}")
    else:
        started = time.perf_counter()
        write_store(root, args.rows, data)
        disk = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(f"wrote {args.rows:,} x ({data.dx} + {data.dy}) features ({features_bytes(args) / 2**30:.1f} GiB as "
              f"float32, {disk / 2**30:.1f} GiB on disk) in {time.perf_counter() - started:.0f} s")  # fmt: skip
    code = PROBE.format(body=body, result=result)
    child = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    baseline_kib, peak_kib, seconds, *words = child.stdout.split()
    if not args.keep:
        shutil.rmtree(root.parent if args.store is None else root, ignore_errors=True)
    return int(baseline_kib) * 1024, int(peak_kib) * 1024, float(seconds), words


def features_bytes(args: argparse.Namespace) -> int:
    data = Planted()
    return int(args.rows * (data.dx + data.dy) * 4)
