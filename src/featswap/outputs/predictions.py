"""predictions.parquet (or .csv): one row per evaluated image with every classifier's top-1 prediction.

Columns: `id`, `label`, `native:<model>` for each model's own classifier, and
`mapped:<source>-><target>:<solver>` for the target's classifier on mapped source features. A user can list
the images a map fixes or breaks, e.g. rows where `native:B != label` and `mapped:A->B:refine == label`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from featswap.outputs.paths import atomic_write


def native_column(model: str) -> str:
    return f"native:{model}"


def mapped_column(source: str, target: str, solver: str) -> str:
    return f"mapped:{source}->{target}:{solver}"


def write_predictions(
    out: Path, ids: np.ndarray, labels: np.ndarray, columns: dict[str, np.ndarray], name: str = "predictions"
) -> Path:
    """Write the table as `out/NAME.parquet` when pyarrow is installed, else `out/NAME.csv`."""
    table = {"id": np.asarray(ids, dtype=str), "label": np.asarray(labels, dtype=np.int64)}
    table.update({k: np.asarray(v, dtype=np.int64) for k, v in columns.items()})
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pq = None

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(table)
            writer.writerows(zip(*(v.tolist() for v in table.values()), strict=True))

    def write_parquet(tmp: Path) -> None:
        pq.write_table(pa.table({k: pa.array(v.tolist()) for k, v in table.items()}), tmp)

    formats = [(f"{name}.parquet", write_parquet), (f"{name}.csv", write_csv)]
    (name, write), (stale, _) = formats if pq is not None else formats[::-1]
    path = atomic_write(out / name, write)
    (out / stale).unlink(missing_ok=True)  # an earlier run's table, in the other format, in this featswap run dir
    return path


def read_predictions(out: Path, name: str = "predictions") -> dict[str, np.ndarray]:
    """The table written by `write_predictions`, as columns (ids as str, the rest as int64)."""
    parquet, text = out / f"{name}.parquet", out / f"{name}.csv"
    if parquet.is_file():
        import pyarrow.parquet as pq

        data = pq.read_table(parquet).to_pydict()
        columns = {k: np.asarray(v) for k, v in data.items()}
    elif text.is_file():
        with open(text, newline="") as f:
            rows = list(csv.reader(f))
        columns = {name: np.asarray([r[i] for r in rows[1:]]) for i, name in enumerate(rows[0])}
    else:
        return {}
    return {k: v.astype(str) if k == "id" else v.astype(np.int64) for k, v in columns.items()}
