"""The report of a stitching run (`featswap stitch`): per evaluation set and solver, a table of every layer pair in
each direction, a layer x layer heatmap of the loss per direction, and the loss against relative depth for the
matched pairs (each source layer with the target layer nearest to it in relative depth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featswap.outputs.paths import writing_to

INTRODUCTION = [
    "Each network is cut at a layer: an affine map of channels, applied at every position (a 1x1 convolution), takes "
    "the source network's activation at its layer to the target network's at its layer; it is fitted on the fitting "
    "images without labels. The target network's own, untouched later layers and classifier then label the held-out "
    "images from the mapped activation. **Loss** = the target network's accuracy minus its accuracy when stitched, in "
    "percentage points (negative: a gain). At `@pooled` (the pooled features that feed the classifier) stitching is "
    "`featswap compare`. A source feature map on another grid than the target's is resampled to it first (bilinear, "
    "antialiased when shrinking).",
    "",
    "*Loss 95% CI*: paired bootstrap over the held-out images; *McNemar p*: exact test of fixed against broken "
    "images; *fit R²*: the share of the target activation's variance the map reproduces on the fitting images, "
    "every position a sample. *Depth* is the share of a network's layers computed before the layer's output.",
    "",
]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-300 else "<1e-300"


def _r2(facts: dict[str, Any]) -> str:
    value = facts.get("train_r2")
    return "—" if value is None else f"{value:.3f}"


def direction_table(pairs: list[dict[str, Any]]) -> str:
    """Markdown rows of one direction's layer pairs, in the run's order."""
    rows = [
        "| source layer | target layer | correct | % | loss | 95% CI | McNemar p | fit R² |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for p in pairs:
        low, high = p["loss_ci95"]
        resampled = " (resampled)" if p.get("resampled") else ""
        rows.append(
            f"| `{p['source_layer']}`{resampled} | `{p['target_layer']}` | {p['mapped_correct']:,} / {p['total']:,} | "
            f"{_pct(p['mapped_accuracy'])} | {_signed(p['loss'])} | [{_signed(low)}, {_signed(high)}] | "
            f"{_p(p['mcnemar_p'])} | {_r2(p['fit'])} |"
        )
    return "\n".join(rows)


def by_depth(pairs: list[dict[str, Any]], layers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One direction's pairs ordered by the source layer's depth, then the target layer's; each a copy that also
    holds its target layer's depth (`_target_depth`) for the heatmap's columns."""
    rows = [{**p, "_target_depth": layers[p["target"]][p["target_layer"]]["depth"]} for p in pairs]
    return sorted(rows, key=lambda p: (layers[p["source"]][p["source_layer"]]["depth"], p["_target_depth"]))


def matched(pairs: list[dict[str, Any]], layers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Of one direction's pairs, for each source layer the pair whose target layer is nearest to it in relative
    depth (the first such pair on a tie), ordered by the source layer's depth."""
    source, target = pairs[0]["source"], pairs[0]["target"]
    best: dict[str, dict[str, Any]] = {}
    for p in pairs:
        gap = abs(layers[source][p["source_layer"]]["depth"] - layers[target][p["target_layer"]]["depth"])
        kept = best.get(p["source_layer"])
        if kept is None or gap < abs(layers[source][kept["source_layer"]]["depth"]
                                     - layers[target][kept["target_layer"]]["depth"]):  # fmt: skip
            best[p["source_layer"]] = p
    return sorted(best.values(), key=lambda p: layers[source][p["source_layer"]]["depth"])


def plot_layer_heatmap(pairs: list[dict[str, Any]], path: Path, title: str) -> None:
    """Loss in points for every (source layer, target layer) of one direction: rows source, columns target, each
    in the order the pairs (sorted by depth) first name them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = list(dict.fromkeys(p["source_layer"] for p in pairs))
    cols = list(dict.fromkeys(p["target_layer"] for p in sorted(pairs, key=lambda p: p["_target_depth"])))
    values = np.full((len(rows), len(cols)), np.nan)
    for p in pairs:
        values[rows.index(p["source_layer"]), cols.index(p["target_layer"])] = 100 * p["loss"]
    finite = values[np.isfinite(values)]
    limit = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 3.0, 0.6 * len(rows) + 2.2), dpi=120)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            text = "—" if np.isnan(values[i, j]) else f"{values[i, j]:+.1f}"
            dark = bool(np.isfinite(values[i, j]) and abs(values[i, j]) > 0.6 * limit)
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(f"{pairs[0]['target']} layer (stitched into)")
    ax.set_ylabel(f"{pairs[0]['source']} layer (mapped from)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="loss: own − stitched accuracy (points); < 0 = gain")
    fig.tight_layout()
    with writing_to(path):
        fig.savefig(path)
    plt.close(fig)


def plot_depth(lines: dict[str, list[tuple[float, float, str]]], path: Path, title: str) -> None:
    """Loss in points against the source layer's relative depth, one line per direction, points named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for label, points in lines.items():
        xs, ys = [x for x, _, _ in points], [100 * y for _, y, _ in points]
        ax.plot(xs, ys, marker="o", label=label)
        for x, y, name in points:
            ax.annotate(name, (x, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("relative depth of the source layer (0 = input, 1 = pooled features)")
    ax.set_ylabel("loss (points)")
    ax.set_xlim(-0.02, 1.1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with writing_to(path):
        fig.savefig(path)
    plt.close(fig)


def small_fit_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """What the report says of one direction's maps fitted on fewer rows (images x positions) than their source's
    channels + 1, and of `procrustes` maps whose rows determine only some of their directions."""

    def route(p: dict[str, Any]) -> str:
        return f"`{p['source_layer']}` → `{p['target_layer']}`"

    lines = []
    few = [p for p in pairs if p["fit"].get("underdetermined")]
    if few:
        lines += [
            f"**Few fitting rows:** {', '.join(route(p) for p in few)} "
            f"{'was' if len(few) == 1 else 'were'} fitted on fewer rows (images x positions) than the source layer's "
            "channels + 1: part or all of the loss may be the small fitting set rather than information missing "
            "from the source layer. Fit on more images to tell.",
            "",
        ]
    ranked = [p for p in pairs if "rank" in p["fit"]]
    if ranked:
        said = ", ".join(f"{route(p)} ({p['fit']['rank']:,})" for p in ranked)
        lines += [
            f"Determined by their fitting rows on fewer directions than their narrower side's channels (the others "
            f"map to zero), with how many: {said}.",
            "",
        ]
    return lines


def stitch_section(entry: dict[str, Any], figures: Path, prefix: str, heading: str, version: str | None) -> list[str]:
    """The report of one evaluation set of a stitching run."""
    ds = entry["dataset"]
    lines = [
        f"Evaluation set **{ds['name']}** ({ds.get('spec', '')}): {ds['val_size']:,} held-out images, "
        f"{ds['num_classes']:,} classes"
        + (f" (scored over the {ds['scored_classes']:,} present)" if ds.get("scored_classes") else "")
        + f"; maps fitted on {ds['train_size']:,} images of {ds.get('fit_collection', '?')}."
        + (f" featswap {version}." if version else ""),
        "",
    ]
    if ds.get("fit_overlap"):
        lines += [f"**Not held out:** {ds['fit_overlap']:,} of these images are also fitting images.", ""]
    lines += ["| model | own accuracy | correct |", "|---|---:|---:|"]
    lines += [f"| {n} | {_pct(m['val_accuracy'])}% | {m['val_correct']:,} / {m['val_total']:,} |"
              for n, m in entry["models"].items()]  # fmt: skip
    lines.append("")
    layers = entry["layers"]
    on_set = f", {ds['name']}" if prefix else ""
    for solver in dict.fromkeys(p["solver"] for p in entry["pairs"]):
        depth_lines: dict[str, list[tuple[float, float, str]]] = {}
        directions = dict.fromkeys((p["source"], p["target"]) for p in entry["pairs"] if p["solver"] == solver)
        for source, target in directions:
            pairs = by_depth(
                [p for p in entry["pairs"] if (p["solver"], p["source"], p["target"]) == (solver, source, target)],
                layers,
            )
            lines += [f"{heading}{source} → {target}, solver `{solver}`", "", direction_table(pairs), ""]
            best = min(pairs, key=lambda p: p["loss"])
            worst = max(pairs, key=lambda p: p["loss"])
            lines += [
                f"Lowest loss {_signed(best['loss'])} points at `{best['source_layer']}` → `{best['target_layer']}`; "
                f"highest {_signed(worst['loss'])} at `{worst['source_layer']}` → `{worst['target_layer']}`.",
                "",
                *small_fit_lines(pairs),
            ]
            name = f"{prefix}stitch_loss_{source}__to__{target}__{solver}.png"
            plot_layer_heatmap(pairs, figures / name, f"Loss, {source} → {target} ({solver}{on_set}), points")
            lines += [f"![loss by layer, {source} → {target}](figures/{name})", ""]
            depth_lines[f"{source} → {target}"] = [
                (layers[source][p["source_layer"]]["depth"], p["loss"], f"{p['source_layer']}→{p['target_layer']}")
                for p in matched(pairs, layers)
            ]
        name = f"{prefix}stitch_depth__{solver}.png"
        plot_depth(depth_lines, figures / name, f"Loss against depth, matched layer pairs ({solver}{on_set})")
        lines += [
            "Loss against the relative depth of the source layer, for the matched pairs (each source layer with the "
            "target layer nearest to it in depth):",
            "",
            f"![loss against depth](figures/{name})",
            "",
        ]
    return lines


def render_stitch_report(out: Path, metrics: dict[str, Any]) -> Path:
    """`out/report.md` and `out/figures/*.png` of a stitching run from its metrics."""
    from featswap.outputs.metrics_json import evaluation_sets
    from featswap.outputs.paths import write_text

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sets = evaluation_sets(metrics)
    several = len(sets) > 1
    lines = ["# featswap stitching report", "", *INTRODUCTION]
    for entry in sets:
        if several:
            lines += [f"## Evaluation set `{entry['dataset']['name']}`", ""]
        prefix = f"{entry['dataset']['name']}_" if several else ""
        version = None if several else metrics["featswap_version"]
        lines += stitch_section(entry, figures, prefix, "### " if several else "## ", version)
    return write_text(out / "report.md", "\n".join(lines))
