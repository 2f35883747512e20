"""How far least squares from float32 products lands from float64, on real networks' features in a store.

    python benchmarks/lstsq_precision.py STORE [STORE ...] [--fit COLLECTION] [--eval COLLECTION]

For every ordered pair of models in each featswap store, the script fits `y = W x + b` on the fitting collection
three ways, from the same centred moments (`featswap.mapping.moments.Moments`, blocks added up in float64):

- `float64`: every product in float64 (what featswap's `lstsq` does), the reference;
- `float32`: `XᵀX` and `XᵀY` multiplied in float32 (what scikit-learn's float32 `Ridge` and other float32 peers
  do), then solved in float64;
- `float32 XᵀY`: `XᵀX` in float64, only the cross products in float32 (the cheapest mixed choice).

Each is solved with no ridge and with a ridge of 1e-3 and 1e-1 times the mean eigenvalue of `XᵀX` (no ridge is
left out where `XᵀX` is singular: fewer images than features). For each store it prints the range, over every
ordered pair of its models, of the condition number of `XᵀX` and of each choice's relative difference from float64
in the weights, `max |W - W64| / max |W64|`, and in the predictions on the evaluation collection. The last line
reads `smallest float32 weight difference: X`: below 1e-6, float32 products would keep featswap's precision
promise on these features.

    python benchmarks/lstsq_precision.py runs/demo/features.zarr      # after `make demo`
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from featswap.mapping.moments import Moments
from featswap.store import FeatureStore
from recording import Recording, add_json_option

RIDGES = (0.0, 1e-3, 1e-1)


def relative(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(a - reference).max() / np.abs(reference).max())


def pair_rows(
    x: np.ndarray, y: np.ndarray, unseen: np.ndarray
) -> tuple[float, list[tuple[float, float, float, float, float]]]:
    """The condition number of the centred `XᵀX`, and `(ridge, float32 weight diff, float32 prediction diff,
    float32-cross weight diff, its prediction diff)` per ridge, for source `x (n, Dx)`, target `y (n, Dy)` and
    unseen source rows `unseen (m, Dx)`."""
    exact = Moments.of(x, y, precision="float64")
    single = Moments.of(x, y, precision="float32")
    mx, _, cxx, cxy = exact.centred()
    cxx32, cxy32 = single.centred()[2:]
    eigenvalues = np.linalg.eigvalsh(cxx)
    rows = []
    for ridge in RIDGES:
        if ridge == 0 and eigenvalues[0] <= eigenvalues[-1] * 1e-12:
            continue
        shift = ridge * eigenvalues.mean() * np.eye(len(cxx))
        w64 = np.linalg.solve(cxx + shift, cxy)
        w32 = np.linalg.solve(cxx32 + shift, cxy32)
        mixed = np.linalg.solve(cxx + shift, cxy32)
        centred = unseen - mx
        p64 = centred @ w64
        rows.append((ridge, relative(w32, w64), relative(centred @ w32, p64), relative(mixed, w64),
                     relative(centred @ mixed, p64)))  # fmt: skip
    condition = float(eigenvalues[-1] / eigenvalues[0]) if eigenvalues[0] > 0 else float("inf")
    return condition, rows


def span(values: list[float]) -> str:
    return f"{min(values):.1e} to {max(values):.1e}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--fit", help="fitting collection (default: the store's first one for fitting)")
    parser.add_argument("--eval", help="evaluation collection (default: the store's last one for evaluation)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("lstsq_precision", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Every store's pairs, printed and recorded."""
    print("difference from float64, relative: weights / predictions on the evaluation images; the range over every")
    print("ordered pair of the store's models (ridge: times the mean eigenvalue of the centred XᵀX)")
    smallest = np.inf
    for path in args.stores:
        store = FeatureStore.open(path)
        fit = args.fit or (store.collections(role="fit") or store.collections())[0]
        held = args.eval or (store.collections(role="eval") or store.collections())[-1]
        rows: dict[float, list[tuple[float, ...]]] = {}
        conditions, shapes = [], set()
        for source, target in itertools.permutations(store.models(), 2):
            x, y = store.features(fit, source), store.features(fit, target)
            shapes.add(f"{x.shape[1]} -> {y.shape[1]}")
            condition, found = pair_rows(x, y, store.features(held, source).astype(np.float64))
            conditions.append(condition)
            for row in found:
                rows.setdefault(row[0], []).append(row[1:])
        pairs = len(conditions)
        print(f"\n{path}: {pairs} pairs, fitted on {fit!r} ({len(x)} images; features {', '.join(sorted(shapes))}),"
              f" predictions on {held!r}; condition number of XᵀX {span(conditions)}")  # fmt: skip
        print(f"{'ridge':>6}  {'float32 weights':>20}  {'float32 predictions':>20}  {'float32 XᵀY weights':>20}")
        for ridge, found in rows.items():
            w32, p32, wmix, _ = zip(*found, strict=True)
            smallest = min(smallest, *w32)
            note = "" if len(found) == pairs else f"  ({len(found)} pairs: the others' XᵀX is singular)"
            print(f"{ridge:>6g}  {span(list(w32)):>20}  {span(list(p32)):>20}  {span(list(wmix)):>20}{note}")
    print(f"smallest float32 weight difference: {smallest:.1e}")
    record.figure("smallest float32 lstsq weight difference from float64", smallest)


if __name__ == "__main__":
    main()
