"""Peak memory of the N x N similarity measures (and of cknna, which holds none), each in a fresh process, and the
largest N each handles in a memory budget.

    python benchmarks/nxn_memory.py [--rows 8000] [--dx 512] [--dy 768] [--budget-gib 24]

Each measure runs once on `--rows` x (`--dx` + `--dy`) float32 features in its own process; the peak resident
memory beyond the process's memory before the call (imports and the features) is divided by N^2 to give bytes
per pair of images, and the largest N whose N x N part fits in `--budget-gib` (less 1 GiB for the features and
imports) follows. Each process keeps freed memory as every featswap command does (`featswap.heap`), so the peaks
are those of a command. The last line reads `largest N in <budget> GiB: <measure> <N>, ...`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from recording import Recording, add_json_option

CHILD = """
import json, resource, sys, time
import numpy as np
from featswap import similarity as sim
from featswap.heap import keep_freed_memory
keep_freed_memory()  # as every featswap command runs: freed memory kept for the next allocation
rows, dx, dy, measure = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
z = rng.standard_normal((rows, 64), dtype=np.float32)
x = z @ rng.standard_normal((64, dx), dtype=np.float32) + rng.standard_normal((rows, dx), dtype=np.float32)
y = z @ rng.standard_normal((64, dy), dtype=np.float32) + rng.standard_normal((rows, dy), dtype=np.float32)
calls = {
    "rbf_cka": lambda: sim.rbf_cka(x, y),
    "debiased_rbf_cka": lambda: sim.debiased_rbf_cka(x, y),
    "rsa, spearman": lambda: sim.rsa(x, y),
    "rsa, pearson": lambda: sim.rsa(x, y, comparison="pearson"),
    "rsa, kendall": lambda: sim.rsa(x, y, comparison="kendall"),
    "cknna": lambda: sim.cknna(x, y),
}
sim.linear_cka(x[:10], y[:10])  # imports done before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
value = calls[measure]()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"value": value, "seconds": seconds, "before": before, "peak": peak}))
"""

MEASURES = ("rbf_cka", "debiased_rbf_cka", "rsa, spearman", "rsa, pearson", "rsa, kendall", "cknna")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--dx", type=int, default=512)
    parser.add_argument("--dy", type=int, default=768)
    parser.add_argument("--budget-gib", type=float, default=24.0)
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("nxn_memory", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Every N x N measure in a fresh process, printed and recorded."""
    n = args.rows
    print(f"{n:,} x ({args.dx} + {args.dy}) float32 features; each measure in a fresh process")
    print(
        f"{'measure':18s} {'seconds':>8s} {'peak beyond before (GiB)':>25s} {'bytes per pair':>15s} {'largest N':>10s}"
    )
    largest = []
    budget = (args.budget_gib - 1.0) * 2**30
    for measure in MEASURES:
        command = [sys.executable, "-c", CHILD, str(n), str(args.dx), str(args.dy), measure]
        found = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        extra = found["peak"] - found["before"]
        per_pair = extra / n**2
        fits = int((budget / per_pair) ** 0.5) if measure != "cknna" else None
        shown = f"{fits:,}" if fits else "no N^2 term"
        print(f"{measure:18s} {found['seconds']:8.2f} {extra / 2**30:25.3f} {per_pair:15.1f} {shown:>10s}")
        if fits:
            largest.append(f"{measure} {fits:,}")
            record.figure(f"{measure}: largest N in {args.budget_gib:g} GiB", fits)
    print(f"largest N in {args.budget_gib:g} GiB: {', '.join(largest)}")


if __name__ == "__main__":
    main()
