"""The one writer of a run directory. Every kind of run (`compare`, `evaluate`, `similarity`, `stitch`) computes
its results first and hands them here as `RunOutputs`; `write_run` then writes them in one place and one order:
per-image prediction tables, metrics.json, the other JSON files, config.toml, and the report with its figures
(rendered from metrics.json as written, so the report can only show what the file says).

The run directory's lifecycle (`featswap.outputs.lifecycle`) is kept here too: the outputs an earlier run left are
cleared when this run begins writing, not before (a run refused or failing before it has results leaves them
whole), and the marker records what this run wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featswap.outputs.lifecycle import RunLifecycle


@dataclass(frozen=True)
class PredictionTable:
    """One evaluation set's per-image predictions: ids `(N,)`, labels `(N,)` and one `(N,)` column per classifier
    (`featswap.outputs.predictions`), written as `NAME.parquet` (or `.csv`)."""

    name: str
    ids: np.ndarray
    labels: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass(frozen=True)
class RunOutputs:
    """What a run computed, ready to write. `metrics` is metrics.json's content (None for a run without one, such
    as `similarity`); a report is rendered from it. `json_files` are further JSON files by name
    (`fit_curves.json`, `similarity.json`); `config_toml` is the config that reproduces the run."""

    config_toml: str
    metrics: dict[str, Any] | None = None
    json_files: dict[str, Any] = field(default_factory=dict)
    predictions: list[PredictionTable] = field(default_factory=list)


def envelope(entries: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
    """metrics.json's layout: `head` and the single set's entry for one evaluation set, `head` and
    `{"evaluations": [one entry per set]}` for several."""
    if len(entries) == 1:
        return {**head, **entries[0]}
    return {**head, "evaluations": entries}


def write_run(out: Path, outputs: RunOutputs, lifecycle: RunLifecycle) -> dict[str, Any] | None:
    """Write `outputs` into the run directory `out` (claimed by `lifecycle`); returns metrics.json's content as
    it reads back (JSON types), or None when the run has no metrics.json."""
    from featswap.outputs.metrics_json import write_metrics
    from featswap.outputs.paths import write_json, write_text
    from featswap.outputs.predictions import write_predictions
    from featswap.outputs.report import render_report

    lifecycle.begin(out)
    for table in outputs.predictions:
        write_predictions(out, table.ids, table.labels, table.columns, table.name)
    if outputs.metrics is not None:
        write_metrics(outputs.metrics, out)
    for name, content in outputs.json_files.items():
        write_json(out / name, content)
    write_text(out / "config.toml", outputs.config_toml)
    if outputs.metrics is not None:
        render_report(out)
    lifecycle.finish(out)
    if outputs.metrics is None:
        return None
    written: dict[str, Any] = json.loads(json.dumps(outputs.metrics))
    return written
