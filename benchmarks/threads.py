"""The `paper` solver's steps beside a CPU-bound competitor process: torch's default threads against featswap's
choice (one thread for small products, `featswap.threads`), interleaved in one run.

    python benchmarks/threads.py [--iterations 300] [--repeats 3]

The map is the demo's size (2,048-row batches, 96 -> 128 features). A second process spins on one core all along,
as another job on a shared machine would. The last line reads `default/chosen: X` (the median ratio of times).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import numpy as np
import torch

from featswap import threads
from featswap.mapping.affine_map import AffineMap
from recording import Recording, add_json_option


def spin(stop: float) -> None:
    while time.time() < stop:
        pass


def fit_seconds(x: np.ndarray, y: np.ndarray, iterations: int, threshold: int) -> float:
    threads.SMALL_WORK = threshold  # 0: every step keeps torch's default threads
    start = time.perf_counter()
    AffineMap("paper", iterations=iterations).fit(x, y)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("threads", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Both thread settings, in turn, printed and recorded."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1257, 96)).astype(np.float32)
    y = (x @ rng.normal(size=(96, 128)) + rng.normal(size=(1257, 128))).astype(np.float32)
    chosen_threshold = threads.SMALL_WORK
    competitor = multiprocessing.Process(target=spin, args=(time.time() + 3600,), daemon=True)
    competitor.start()
    ratios = []
    try:
        print(f"paper solver, {args.iterations} iterations, 96 -> 128, {torch.get_num_threads()} default threads, "
              "one competing CPU-bound process")  # fmt: skip
        for repeat in range(args.repeats):
            default = fit_seconds(x, y, args.iterations, 0)
            chosen = fit_seconds(x, y, args.iterations, chosen_threshold)
            ratios.append(default / chosen)
            print(f"repeat {repeat + 1}: default threads {default:.1f} s, chosen (1 thread) {chosen:.1f} s")
    finally:
        competitor.terminate()
    print(f"default/chosen: {statistics.median(ratios):.1f}")
    median = statistics.median(ratios)
    record.figure("paper solver beside a competitor: default/chosen threads time", median, unit="x")


if __name__ == "__main__":
    main()
