"""The paper's figures beside featswap's, row by row: OUT/paper.json and OUT/paper.md.

Each row compares fractions of the images evaluated (the paper's counts are of 50,000; a smaller run's of fewer),
with the difference featswap - paper in percentage points and its 95% interval: featswap's paired bootstrap interval
over the evaluated images (the run's `n_boot` and `seed`) less the paper's figure, which is a fixed number.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from featswap.paper.figures import FIGURES, PAPER_ITERATIONS, PAPER_TOTAL, TABLE_1, Figure

#: ILSVRC2012's training images, all of which the paper fitted on.
PAPER_TRAIN = 1_281_167


def _pair(metrics: Mapping[str, Any], source: str, target: str, solver: str) -> dict[str, Any]:
    for pair in metrics["pairs"]:
        if (pair["source"], pair["target"], pair["solver"]) == (source, target, solver):
            return dict(pair)
    raise KeyError(f"no {source} -> {target} map of solver {solver} in metrics.json")


def proportion_interval(count: int, total: int, n_boot: int, seed: int) -> tuple[float, float]:
    """95% bootstrap interval of the fraction `count / total` of per-image 0/1 outcomes. Resampling the images
    with replacement draws Binomial(total, count / total) ones, so the interval needs the counts only."""
    rng = np.random.default_rng(seed)
    draws = rng.binomial(total, count / total, size=n_boot) / total
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def featswap_values(
    metrics: Mapping[str, Any], inception: str, resnet: str, solver: str = "paper", n_boot: int = 1000, seed: int = 0
) -> dict[str, tuple[int | None, int, float, tuple[float, float]]]:
    """featswap's value of each figure's key: `(count or None, total, fraction, 95% interval of the fraction)`; the
    two loss rows (`*_loss`) are signed fractions (native - mapped accuracy of the target) with no count."""
    i2r, r2i = _pair(metrics, inception, resnet, solver), _pair(metrics, resnet, inception, solver)
    total = int(i2r["total"])
    values: dict[str, tuple[int | None, int, float, tuple[float, float]]] = {}

    def ci(pair: Mapping[str, Any], key: str) -> tuple[float, float]:
        low, high = pair.get(f"{key}_ci95") or (pair[key], pair[key])
        return float(low), float(high)

    values["inception_native"] = (r2i["native_correct"], total, r2i["native_accuracy"], ci(r2i, "native_accuracy"))
    values["resnet_native"] = (i2r["native_correct"], total, i2r["native_accuracy"], ci(i2r, "native_accuracy"))
    values["inception_to_resnet"] = (i2r["mapped_correct"], total, i2r["mapped_accuracy"], ci(i2r, "mapped_accuracy"))
    values["resnet_to_inception"] = (r2i["mapped_correct"], total, r2i["mapped_accuracy"], ci(r2i, "mapped_accuracy"))
    values["inception_to_resnet_loss"] = (None, total, i2r["loss"], ci(i2r, "loss"))
    values["resnet_to_inception_loss"] = (None, total, r2i["loss"], ci(r2i, "loss"))
    misses = total - int(i2r["native_correct"])
    low, high = ci(i2r, "native_accuracy")
    values["resnet_misses"] = (misses, total, misses / total, (1 - high, 1 - low))
    fixed = int(i2r["fixed"])
    values["fixed_by_inception_features"] = (
        fixed,
        total,
        fixed / total,
        proportion_interval(fixed, total, n_boot, seed),
    )
    return values


def _loss_figures() -> list[tuple[str, str, float, float | None]]:
    """The two loss rows: key, label, the loss the paper's counts give (a fraction), the loss it states (points)."""
    native = {f.key: f for f in TABLE_1}
    i2r = native["resnet_native"].fraction - native["inception_to_resnet"].fraction
    r2i = native["inception_native"].fraction - native["resnet_to_inception"].fraction
    return [
        ("inception_to_resnet_loss", "loss I -> R (negative: a gain)", i2r, native["inception_to_resnet"].stated_loss),
        ("resnet_to_inception_loss", "loss R -> I", r2i, native["resnet_to_inception"].stated_loss),
    ]


def comparison(
    metrics: Mapping[str, Any], inception: str, resnet: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """paper.json's content: for the `paper` solver's maps, each figure's row; the other solvers' mapped rows;
    and the run's size against the paper's."""
    solvers = list(dict.fromkeys(p["solver"] for p in metrics["pairs"]))
    rows = []
    ours = featswap_values(metrics, inception, resnet, "paper", n_boot, seed)

    def row(key: str, label: str, paper_count: int | None, paper_fraction: float, stated: float | None) -> None:
        count, total, fraction, (low, high) = ours[key]
        rows.append(
            {
                "key": key,
                "label": label,
                "paper_count": paper_count,
                "paper_total": PAPER_TOTAL,
                "paper_fraction": paper_fraction,
                "paper_stated_percent": stated,
                "featswap_count": count,
                "featswap_total": total,
                "featswap_fraction": fraction,
                "featswap_ci95": [low, high],
                "difference": fraction - paper_fraction,
                "difference_ci95": [low - paper_fraction, high - paper_fraction],
            }
        )

    figures: list[Figure] = list(FIGURES)
    for f in figures[:4]:
        row(f.key, f.label, f.count, f.fraction, f.stated_percent)
    for key, label, fraction, stated in _loss_figures():
        row(key, label, None, fraction, stated)
    for f in figures[4:]:
        row(f.key, f.label, f.count, f.fraction, None)
    others = []
    for solver in solvers:
        if solver == "paper":
            continue
        theirs = featswap_values(metrics, inception, resnet, solver, n_boot, seed)
        for key in (
            "inception_to_resnet",
            "resnet_to_inception",
            "inception_to_resnet_loss",
            "resnet_to_inception_loss",
        ):
            count, total, fraction, interval = theirs[key]
            others.append({"solver": solver, "key": key, "count": count, "total": total, "fraction": fraction,
                           "ci95": list(interval)})  # fmt: skip
    i2r = _pair(metrics, inception, resnet, "paper")
    return {
        "models": {"inception": inception, "resnet": resnet},
        "precision": {name: metrics["models"][name].get("precision", "fp32") for name in (inception, resnet)},
        "train_size": int(metrics["dataset"]["train_size"]),
        "val_size": int(metrics["dataset"]["val_size"]),
        "paper_train_size": PAPER_TRAIN,
        "paper_val_size": PAPER_TOTAL,
        "iterations": int(i2r["fit"]["iterations"]),
        "paper_iterations": PAPER_ITERATIONS,
        "rows": rows,
        "other_solvers": others,
    }


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def _count_text(count: int | None, total: int, fraction: float, loss: bool) -> str:
    if loss:
        return f"{100 * fraction:+.2f} points"
    return f"{count:,} of {total:,} ({100 * fraction:.2f}%)"


def render(paper: Mapping[str, Any]) -> str:
    """paper.md: the comparison as Markdown."""
    inception, resnet = paper["models"]["inception"], paper["models"]["resnet"]
    smaller = paper["train_size"] < paper["paper_train_size"] or paper["iterations"] < paper["paper_iterations"]
    lines = [
        "# The paper's figures beside featswap's",
        "",
        f"Inception side: `{inception}`; ResNet side: `{resnet}` (precision "
        f"{', '.join(sorted(set(paper['precision'].values())))}). Maps fitted on {paper['train_size']:,} images "
        f"(the paper: {paper['paper_train_size']:,}, all of ILSVRC2012 train), the paper's recipe run for "
        f"{paper['iterations']:,} iterations (the paper: {paper['paper_iterations']:,}); evaluated on "
        f"{paper['val_size']:,} images (the paper: {paper['paper_val_size']:,}, ILSVRC2012 val).",
        "",
    ]
    if smaller:
        lines += [
            "A smaller run than the paper's: its figures need not agree with the paper's.",
            "",
        ]
    lines += [
        "| figure | paper | featswap (paper solver) | difference, points | 95% interval |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in paper["rows"]:
        loss = r["paper_count"] is None
        stated = r["paper_stated_percent"]
        paper_text = _count_text(r["paper_count"], r["paper_total"], r["paper_fraction"], loss)
        if stated is not None:
            paper_text += f"; stated {stated:g}"
        ours = _count_text(r["featswap_count"], r["featswap_total"], r["featswap_fraction"], loss)
        low, high = r["difference_ci95"]
        lines.append(
            f"| {r['label']} | {paper_text} | {ours} | {_points(r['difference'])} | [{_points(low)}, {_points(high)}] |"
        )
    lines += [
        "",
        "Difference: featswap's fraction of its images less the paper's of 50,000, in percentage points; the interval "
        "is featswap's paired bootstrap interval less the paper's figure. The paper's stated percentages round its "
        "counts, except Inception-v4's 80.2 (the published figure; 40,037 of 50,000 is 80.07%), and its losses are "
        "differences of the rounded percentages (4.5 = 80.2 - 75.7; the counts give 4.34).",
    ]
    if paper["other_solvers"]:
        lines += [
            "",
            "featswap's other solvers:",
            "",
            "| solver | row | featswap | 95% interval |",
            "|---|---|---:|---:|",
        ]
        labels = {f.key: f.label for f in FIGURES} | {k: label for k, label, _, _ in _loss_figures()}
        for o in paper["other_solvers"]:
            loss = o["count"] is None
            low, high = o["ci95"]
            scale = "points" if loss else "%"
            lines.append(
                f"| {o['solver']} | {labels[o['key']]} | {_count_text(o['count'], o['total'], o['fraction'], loss)} | "
                f"[{100 * low:.2f}, {100 * high:.2f}] {scale} |"
            )
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, paper: Mapping[str, Any]) -> tuple[Path, Path]:
    """OUT/paper.json and OUT/paper.md."""
    from featswap.outputs.paths import write_json, write_text

    return write_json(out / "paper.json", dict(paper)), write_text(out / "paper.md", render(paper))
