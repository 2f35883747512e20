"""metrics.json: the contract every run writes and every report and check reads (see DESIGN.md).

`contract_violations` checks the layout and types (every key the report reads, every number finite and in
its range); `invariant_violations` checks the arithmetic between the numbers. `read_metrics` refuses a file
that breaks either, so a report never renders a number the contract does not promise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featswap.errors import FeatswapError
from featswap.outputs.paths import write_json

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


class MetricsError(FeatswapError):
    """A metrics.json that is missing, unreadable or breaks the contract."""


def write_metrics(metrics: dict[str, Any], out: Path) -> Path:
    """Write `out/metrics.json` (strict JSON: undefined values are null, never NaN)."""
    return write_json(Path(out) / "metrics.json", metrics)


def read_metrics(out: Path) -> dict[str, Any]:
    """`out/metrics.json`, checked against the contract and its arithmetic."""
    path = Path(out) / "metrics.json"
    if not path.is_file():
        raise MetricsError(f"No metrics.json in {out}; run `featswap compare`, `evaluate` or `demo` first.")
    try:
        metrics = json.loads(path.read_text(), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MetricsError(f"{path} is not valid JSON: {err}") from None
    problems = contract_violations(metrics)
    problems = problems or invariant_violations(metrics)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise MetricsError(
            f"{path} does not follow featswap's metrics.json contract: {shown}. Re-run the experiment that wrote it."
        )
    result: dict[str, Any] = metrics
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- the contract, as checks ------------------------------------------------------------------------------
Check = Callable[[Any, str, list[str]], None]


def _type(kind: type | tuple[type, ...], label: str) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, kind):
            problems.append(f"{where} should be {label}, not {json.dumps(value)[:40]}")

    return check


def _number(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{where} should be a finite number, not {json.dumps(value)[:40]}")
        elif not low <= value <= high:
            problems.append(f"{where} = {value} is outside {low:g}..{high:g}")

    return check


def _count(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where} should be a count (an integer >= 0), not {json.dumps(value)[:40]}")


def _nullable(inner: Check) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if value is not None:
            inner(value, where, problems)

    return check


def _record(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, dict):
            problems.append(f"{where} should be an object")
            return
        for key, inner in required.items():
            if key not in value:
                problems.append(f"{where}.{key} is missing")
            else:
                inner(value[key], f"{where}.{key}", problems)
        for key, inner in (optional or {}).items():
            if key in value:
                inner(value[key], f"{where}.{key}", problems)

    return check


def _mapping(inner: Check) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, dict):
            problems.append(f"{where} should be an object")
            return
        for key, item in value.items():
            inner(item, f"{where}.{key}", problems)

    return check


def _items(inner: Check, length: int | None = None) -> Check:
    def check(value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            problems.append(f"{where} should be a list" + (f" of {length}" if length else ""))
            return
        for i, item in enumerate(value):
            inner(item, f"{where}[{i}]", problems)

    return check


_text = _type(str, "text")


def _flag(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, bool):
        problems.append(f"{where} should be true or false, not {json.dumps(value)[:40]}")


_fraction = _number(0.0, 1.0)
_signed_fraction = _number(-1.0, 1.0)
_class_change = _record(
    {"class": _text, "images": _count, "native_accuracy": _fraction, "mapped_accuracy": _fraction,
     "loss": _signed_fraction}
)  # fmt: skip

DATASET = _record(
    {"name": _text, "train_size": _count, "val_size": _count, "num_classes": _count},
    {
        "skipped": _mapping(_items(_text)),
        "spec": _text,
        "fit_collection": _text,
        "fit_overlap": _count,
        "scored_classes": _count,
    },
)


def _head_kind(value: Any, where: str, problems: list[str]) -> None:
    from featswap.heads.kinds import KINDS

    if value not in KINDS:
        problems.append(f"{where} should be one of {', '.join(KINDS)}, not {json.dumps(value)[:40]}")


#: `models.NAME.head`: which kind of head (featswap.heads.kinds), a zero-shot head's names and templates, a probe's
#: held-out accuracy and regularisation.
HEAD = _record(
    {"kind": _head_kind},
    {"names": _items(_text), "templates": _items(_text), "text_sha256": _text, "fit_images": _count,
     "heldout_accuracy": _fraction, "cv_folds": _count, "cv_images": _count, "l2": _number(0.0),
     "cv_accuracy": _mapping(_fraction), "iterations": _count, "fit_collection": _text},
)  # fmt: skip
MODEL = _record(
    {"spec": _text, "feature_dim": _count, "val_correct": _count, "val_total": _count, "val_accuracy": _fraction},
    {
        "val_top5_accuracy": _fraction,
        "head_outputs": _count,
        "head_offset": _count,
        "precision": _text,
        "head": HEAD,
        "features": _text,
    },
)
# fmt: off
#: The fields of a pair that follow from per-image outcomes (every kind of run).
OUTCOME = {
    "source": _text, "target": _text, "solver": _text,
    "mapped_correct": _count, "total": _count, "mapped_accuracy": _fraction,
    "native_correct": _count, "native_accuracy": _fraction,
    "loss": _signed_fraction, "loss_ci95": _items(_signed_fraction, 2),
    "fixed": _count, "broken": _count, "mcnemar_p": _fraction,
    "venn": _record(dict.fromkeys(VENN_KEYS, _count)),
}
OUTCOME_OPTIONAL = {
    "native_accuracy_ci95": _items(_fraction, 2), "mapped_accuracy_ci95": _items(_fraction, 2),
    "native_top5_accuracy": _fraction, "mapped_top5_accuracy": _fraction, "agreement": _fraction,
    "disagreement": _fraction, "jsd": _fraction,
    "per_class": _record({"largest_losses": _items(_class_change), "largest_gains": _items(_class_change)}),
}
PAIR = _record(
    {
        **OUTCOME,
        "fit": _record({"seconds": _number(0.0), "iterations": _count, "train_loss": _number(0.0),
                        "val_loss": _number(0.0)},
                       {"fit_size": _count, "source_dim": _count, "alpha": _number(0.0), "alpha_chosen": _flag,
                        "underdetermined": _flag, "interpolates": _flag, "rank": _count, "converged": _flag}),
    },
    OUTCOME_OPTIONAL,
)
#: A map at a layer pair (`featswap stitch`): a pair's outcome fields, its layers, and its fit from moments.
STITCH_PAIR = _record(
    {
        **OUTCOME,
        "source_layer": _text, "target_layer": _text,
        "fit": _record({"seconds": _number(0.0), "iterations": _count, "val_loss": _number(0.0)},
                       {"fit_size": _count, "rows": _count, "source_dim": _count, "alpha": _number(0.0),
                        "alpha_chosen": _flag,
                        "scale": _number(0.0), "rank": _count, "underdetermined": _flag,
                        "train_r2": _nullable(_number(high=1.0))}),
    },
    {**OUTCOME_OPTIONAL, "resampled": _nullable(_text)},
)
LAYER = _record({"shape": _items(_count), "depth": _fraction, "stage": _flag})
# fmt: on
SET_KEYS = {"dataset": DATASET, "models": _mapping(MODEL), "pairs": _items(PAIR)}
SET_OPTIONAL = {
    "loss_matrix": _mapping(_mapping(_mapping(_signed_fraction))),
    "similarity": _mapping(_mapping(_mapping(_nullable(_number())))),
    "similarity_undefined": _items(_record({"measure": _text, "source": _text, "target": _text, "reason": _text})),
    "similarity_subsample": _record({"rows": _count, "of": _count, "seed": _count, "measures": _items(_text)}),
}
#: One evaluation set: the layout of metrics.json itself when a run has one set.
METRICS = _record({"featswap_version": _text, **SET_KEYS}, SET_OPTIONAL)
#: Several evaluation sets: one entry of the single-set layout (without the version) per set.
SEVERAL = _record({"featswap_version": _text, "evaluations": _items(_record(SET_KEYS, SET_OPTIONAL))})
#: A stitching run's set: its pairs are maps at layer pairs, and `layers` records each layer used.
STITCH_SET_KEYS = {**SET_KEYS, "pairs": _items(STITCH_PAIR), "layers": _mapping(_mapping(LAYER))}
STITCH = _record({"featswap_version": _text, "kind": _text, **STITCH_SET_KEYS})
STITCH_SEVERAL = _record({"featswap_version": _text, "kind": _text, "evaluations": _items(_record(STITCH_SET_KEYS))})


def is_stitch(metrics: dict[str, Any]) -> bool:
    """Whether `metrics` is a stitching run's (`"kind": "stitch"`)."""
    return isinstance(metrics, dict) and metrics.get("kind") == "stitch"


def evaluation_sets(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics of each evaluation set: `[metrics]` for the single-set layout, else its `evaluations`."""
    sets: list[dict[str, Any]] = metrics.get("evaluations", [metrics])
    return sets


def contract_violations(metrics: Any) -> list[str]:
    """Where `metrics` departs from the contract's layout and types (empty when it follows it)."""
    problems: list[str] = []
    several = isinstance(metrics, dict) and "evaluations" in metrics
    if is_stitch(metrics):
        (STITCH_SEVERAL if several else STITCH)(metrics, "metrics", problems)
    else:
        (SEVERAL if several else METRICS)(metrics, "metrics", problems)
    if problems:
        return problems
    for entry in evaluation_sets(metrics):
        for p in entry["pairs"]:
            for name in (p["source"], p["target"]):
                if name not in entry["models"]:
                    problems.append(f"pair {p['source']}->{p['target']} names model {name!r}, absent from models")
            if "source_layer" in p:
                for name, layer in ((p["source"], p["source_layer"]), (p["target"], p["target_layer"])):
                    if layer not in entry.get("layers", {}).get(name, {}):
                        problems.append(f"pair {p['source']}->{p['target']} names layer {layer!r} of {name}, absent "
                                        "from layers")  # fmt: skip
    return problems


def invariant_violations(metrics: dict[str, Any]) -> list[str]:
    """What in `metrics` breaks the contract's arithmetic (empty when all holds).

    For every pair: the eight Venn counts sum to `total`; `loss == native_accuracy - mapped_accuracy`;
    accuracies equal counts over totals; `native_correct` equals the target model's `val_correct`;
    `fixed` and `broken` agree with the Venn counts.
    """
    if "evaluations" in metrics:
        return [problem for entry in metrics["evaluations"] for problem in invariant_violations(entry)]
    problems = []
    models = metrics.get("models", {})
    for p in metrics.get("pairs", []):
        layers = f" at {p['source_layer']}->{p['target_layer']}" if "source_layer" in p else ""
        where = f"{p['source']}->{p['target']}{layers} ({p['solver']})"
        venn = p["venn"]
        if set(venn) != set(VENN_KEYS):
            problems.append(f"{where}: venn keys {sorted(venn)}")
        if sum(venn.values()) != p["total"]:
            problems.append(f"{where}: venn counts sum to {sum(venn.values())}, not total {p['total']}")
        if not math.isclose(p["loss"], p["native_accuracy"] - p["mapped_accuracy"], abs_tol=1e-12):
            problems.append(f"{where}: loss != native_accuracy - mapped_accuracy")
        if p["total"] == 0 or not math.isclose(p["mapped_accuracy"], p["mapped_correct"] / p["total"], abs_tol=1e-12):
            problems.append(f"{where}: mapped_accuracy != mapped_correct / total")
        if p["total"] == 0 or not math.isclose(p["native_accuracy"], p["native_correct"] / p["total"], abs_tol=1e-12):
            problems.append(f"{where}: native_accuracy != native_correct / total")
        target = models.get(p["target"], {})
        if target.get("val_correct") != p["native_correct"]:
            problems.append(
                f"{where}: native_correct {p['native_correct']} != target val_correct {target.get('val_correct')}"
            )
        fixed = venn.get("mapped_only", 0) + venn.get("source_mapped", 0)
        broken = venn.get("target_only", 0) + venn.get("source_target", 0)
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
