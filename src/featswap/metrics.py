"""metrics.json: the contract every run writes and every report and check reads (see DESIGN.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from featswap.errors import FeatswapError

VENN_KEYS = (
    "source_only",
    "target_only",
    "mapped_only",
    "source_target",
    "source_mapped",
    "target_mapped",
    "all",
    "none",
)


def write_metrics(metrics: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path


def read_metrics(out: Path) -> dict[str, Any]:
    path = Path(out) / "metrics.json"
    if not path.is_file():
        raise FeatswapError(f"No metrics.json in {out}; run `featswap compare`, `evaluate` or `demo` first.")
    try:
        metrics: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FeatswapError(f"{path} is not valid JSON: {err}") from err
    return metrics


def invariant_violations(metrics: dict[str, Any]) -> list[str]:
    """What in `metrics` breaks the contract's arithmetic (empty when all holds).

    For every pair: the eight Venn counts sum to `total`; `loss == native_accuracy - mapped_accuracy`;
    accuracies equal counts over totals; `native_correct` equals the target model's `val_correct`;
    `fixed` and `broken` agree with the Venn counts.
    """
    problems = []
    models = metrics.get("models", {})
    for p in metrics.get("pairs", []):
        where = f"{p['source']}->{p['target']} ({p['solver']})"
        venn = p["venn"]
        if set(venn) != set(VENN_KEYS):
            problems.append(f"{where}: venn keys {sorted(venn)}")
        if sum(venn.values()) != p["total"]:
            problems.append(f"{where}: venn counts sum to {sum(venn.values())}, not total {p['total']}")
        if not math.isclose(p["loss"], p["native_accuracy"] - p["mapped_accuracy"], abs_tol=1e-12):
            problems.append(f"{where}: loss != native_accuracy - mapped_accuracy")
        if not math.isclose(p["mapped_accuracy"], p["mapped_correct"] / p["total"], abs_tol=1e-12):
            problems.append(f"{where}: mapped_accuracy != mapped_correct / total")
        if not math.isclose(p["native_accuracy"], p["native_correct"] / p["total"], abs_tol=1e-12):
            problems.append(f"{where}: native_accuracy != native_correct / total")
        target = models.get(p["target"], {})
        if target.get("val_correct") != p["native_correct"]:
            problems.append(
                f"{where}: native_correct {p['native_correct']} != target val_correct {target.get('val_correct')}"
            )
        fixed = venn["mapped_only"] + venn["source_mapped"]
        broken = venn["target_only"] + venn["source_target"]
        if (p["fixed"], p["broken"]) != (fixed, broken):
            problems.append(f"{where}: fixed/broken {p['fixed']}/{p['broken']} disagree with venn {fixed}/{broken}")
        if p["mapped_correct"] - p["native_correct"] != fixed - broken:
            problems.append(f"{where}: mapped - native correct != fixed - broken")
        matrix = metrics.get("loss_matrix")
        if matrix is not None and matrix.get(p["solver"], {}).get(p["source"], {}).get(p["target"]) != p["loss"]:
            problems.append(f"{where}: loss_matrix disagrees with the pair's loss")
    for solver, rows in metrics.get("loss_matrix", {}).items():
        for source, row in rows.items():
            if source in row:
                problems.append(f"loss_matrix[{solver}] claims a self pair for {source}")
    return problems
