"""What keeping freed memory (`featswap.heap`) changes: `featswap extract` with glibc's malloc defaults against
featswap's setting, side by side in one run, for networks of two sizes on this CPU.

    python benchmarks/heap.py [--images 192] [--batch-size 32] [--repeats 2] [--models timm:resnet50 ...]

Writes real JPEG files (256 x 256) into an image folder, then runs the command line `featswap extract` on them
in fresh processes, in turn: once with `FEATSWAP_KEEP_FREED_MEMORY=0` (glibc's defaults: freed activations go back
to the system and every batch faults its pages in anew), once without (featswap's setting), `--repeats` times
each. For each model it prints the median wall time, the user and system CPU seconds, the page faults and the
peak resident memory of each, and the ratio `kept/default` of wall times; and it checks that both stores hold
the same features bit for bit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from extraction_peer import write_images
from featswap.store import FeatureStore
from recording import Recording, add_json_option

MODELS = ("timm:resnet50", "timm:mobilenetv2_100")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=192, help="JPEG files written and extracted")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, in turn")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model SPECs (random weights)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("heap", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Both settings for each model, in turn, printed and recorded."""
    print(f"{args.images} JPEG images 256 x 256, batch {args.batch_size}, {os.cpu_count()} CPUs, "
          f"{args.repeats} run(s) of each setting in turn, random weights")  # fmt: skip
    print(f"{'model':24} {'setting':8} {'wall s':>7} {'user s':>7} {'sys s':>7} {'faults':>10} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root, args.images)
        for model in args.models:
            runs: dict[str, list[dict[str, float]]] = {"default": [], "kept": []}
            for k in range(args.repeats):
                for setting in runs:
                    store = Path(tmp) / f"{setting}{k}.zarr"
                    runs[setting].append(extract(model, root, store, args.batch_size, setting == "default"))
            medians = {setting: {key: statistics.median(m[key] for m in measured) for key in measured[0]}
                       for setting, measured in runs.items()}  # fmt: skip
            for setting, median in medians.items():
                print(f"{model:24} {setting:8} {median['wall']:7.1f} {median['user']:7.1f} {median['sys']:7.1f} "
                      f"{median['faults']:10,.0f} {median['peak'] / 1024:8,.0f}")  # fmt: skip
            same = features(Path(tmp) / "default0.zarr") == features(Path(tmp) / "kept0.zarr")
            wall = medians["kept"]["wall"] / medians["default"]["wall"]
            print(f"{model}: kept/default wall time {wall:.2f}; features identical: {same}")
            record.figure(f"{model}: kept/default wall time", wall, unit="x")
            faults = medians["kept"]["faults"] / medians["default"]["faults"]
            record.figure(f"{model}: kept/default page faults", faults, unit="x")
            record.figure(f"{model}: features identical", float(same), unit="bool")
            for k in range(args.repeats):
                for setting in runs:
                    shutil.rmtree(Path(tmp) / f"{setting}{k}.zarr")


def extract(model: str, root: Path, store: Path, batch_size: int, default: bool) -> dict[str, float]:
    """Run `featswap extract` in a fresh process; its wall time, CPU seconds, page faults and peak memory (KB)."""
    env = {**os.environ, "FEATSWAP_KEEP_FREED_MEMORY": "0" if default else "1"}
    command = [str(Path(sys.executable).with_name("featswap")), "extract", "--model", model, "--no-pretrained",
               "--data", f"imagefolder:{root}", "--val-fraction", "0.5", "--batch-size", str(batch_size),
               "--store", str(store)]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time, faults and peak memory
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"featswap extract failed: {process.stderr.read().decode() if process.stderr else status}")
    return {
        "wall": wall,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "faults": usage.ru_minflt,
        "peak": usage.ru_maxrss,
    }


def features(path: Path) -> list[bytes]:
    """Every stored feature array of the store, as bytes, in a fixed order."""
    with FeatureStore.open(path) as store:
        return [
            np.ascontiguousarray(store.features(c, m)).tobytes() for c in store.collections() for m in store.models()
        ]


if __name__ == "__main__":
    main()
