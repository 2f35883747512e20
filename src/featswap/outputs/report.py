"""report.md and its figures, rendered from metrics.json and fit_curves.json alone."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featswap.evaluation.venn import REGIONS
from featswap.outputs.metrics_json import read_metrics
from featswap.outputs.paths import writing_to


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed_pct(x: float) -> str:
    return f"{100 * x:+.1f}".replace("+0.0", "0.0").replace("-0.0", "0.0")


def iterations_note(iterations: list[int]) -> str:
    """`, 3,000 iterations`, `, 200 to 600 iterations` (iterative solvers that stop early differ per map), or
    `, closed form`."""
    low, high = min(iterations, default=0), max(iterations, default=0)
    if high == 0:
        return ", closed form"
    return f", {low:,} iterations" if low == high else f", {low:,} to {high:,} iterations"


def table1(metrics: dict[str, Any], solver: str) -> str:
    """The paper's Table 1 for one solver, as Markdown (counts, percent, loss in points)."""
    models = metrics["models"]
    pairs = [p for p in metrics["pairs"] if p["solver"] == solver]
    lines = [
        "| Description | Mapping | Correct | Percent | Loss | Loss 95% CI | McNemar p |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name, m in models.items():
        lines.append(f"| {name} | ({name} → {name}) | {m['val_correct']:,} | {_pct(m['val_accuracy'])} | | | |")
    for p in pairs:
        low, high = p["loss_ci95"]
        lines.append(
            f"| {p['source']} to {p['target']} | ({p['source']} → {p['target']}) | {p['mapped_correct']:,} | "
            f"{_pct(p['mapped_accuracy'])} | {_signed_pct(p['loss'])} | [{_signed_pct(low)}, {_signed_pct(high)}] | "
            f"{p['mcnemar_p']:.3g} |"
        )
    return "\n".join(lines)


def table1_rows(metrics: dict[str, Any]) -> list[str]:
    """Table 1 of one evaluation set as CSV rows (without the header): solver, description, mapping, correct,
    total, percent, loss."""
    rows = []
    for solver in _solvers(metrics):
        for name, m in metrics["models"].items():
            rows.append(
                f"{solver},{name},{name}->{name},{m['val_correct']},{m['val_total']},{_pct(m['val_accuracy'])},"
            )
        for p in metrics["pairs"]:
            if p["solver"] == solver:
                rows.append(
                    f"{solver},{p['source']} to {p['target']},{p['source']}->{p['target']},{p['mapped_correct']},"
                    f"{p['total']},{_pct(p['mapped_accuracy'])},{_signed_pct(p['loss'])}"
                )
    return rows


#: A loss whose 95% interval lies within ±2 points (and includes 0) reads as "as accurate as"; a wider interval
#: that includes 0 reads as undecided.
EQUIVALENCE_MARGIN = 0.02


def reading(p: dict[str, Any]) -> str:
    """One plain-language sentence on a direction, following the paper's logic."""
    loss, (low, high) = p["loss"], p["loss_ci95"]
    source, target = p["source"], p["target"]
    head = f"{target}'s classifier on {source}'s mapped features"
    counts = f"Fixed {p['fixed']}, broken {p['broken']} images (McNemar p = {p['mcnemar_p']:.3g})."
    if p["solver"] == "heads":
        # The heads map is built from the two classifiers alone so that B's head reproduces A's logits: its
        # accuracy is A's own, by construction, and says nothing about whether the features share information.
        return (
            f"- **{source} → {target}**: the `heads` map makes {target}'s classifier reproduce {source}'s own logits "
            f"by construction (no features are fitted), so its accuracy ({_pct(p['mapped_accuracy'])}%) is "
            f"{source}'s own classifier's, not evidence that the two networks' features share information. "
            f"{counts}"
        )
    interval = f"[{_signed_pct(low)}, {_signed_pct(high)}]"
    if low <= 0 <= high and max(-low, high) <= EQUIVALENCE_MARGIN:
        verdict = (
            f"{head} is as accurate as on {target}'s own features, to within {_pct(max(-low, high))} points (loss "
            f"{_signed_pct(loss)}, 95% interval {interval}): the information {target}'s classifier uses is present "
            f"in {source}'s features."
        )
    elif low <= 0 <= high:
        verdict = (
            f"{head} differs by {_signed_pct(loss)} points from its accuracy on {target}'s own features, but the 95% "
            f"interval {interval} includes 0 and reaches beyond ±{_pct(EQUIVALENCE_MARGIN)} points: these "
            f"{p['total']:,} images cannot tell whether information is lost. Evaluate on more images to decide."
        )
    elif loss > 0 and p.get("fit", {}).get("underdetermined"):
        verdict = (
            f"{head} loses {_pct(loss)} points, but the map was fitted on {p['fit']['fit_size']:,} images, fewer than "
            f"{source}'s {p['fit']['source_dim']:,} features + 1: part or all of the loss may be the small fitting "
            f"set rather than information missing from {source}'s features. Fit on more images to tell."
        )
    elif loss > 0:
        verdict = (
            f"{head} loses {_pct(loss)} points: some information {target}'s classifier relies on is missing "
            f"from {source}'s features (or not linearly recoverable)."
        )
    else:
        chance = " McNemar's test does not rule out chance for the gain itself." if p["mcnemar_p"] >= 0.05 else ""
        verdict = (
            f"{head} gains {_pct(-loss)} points (95% interval {interval}): {source}'s features carry what "
            f"{target}'s classifier needs.{chance}"
        )
    return f"- **{source} → {target}**: {verdict} {counts}"


def details(pairs: list[dict[str, Any]]) -> str:
    """Per direction: accuracies with 95% intervals, top-5, agreement with native predictions."""
    lines = [
        "| map | native % [95% CI] | mapped % [95% CI] | native top-5 % | mapped top-5 % | agreement % |",
        "|---|---|---|---:|---:|---:|",
    ]
    for p in pairs:
        nl, nh = p["native_accuracy_ci95"]
        ml, mh = p["mapped_accuracy_ci95"]
        lines.append(
            f"| {p['source']} → {p['target']} | {_pct(p['native_accuracy'])} [{_pct(nl)}, {_pct(nh)}] | "
            f"{_pct(p['mapped_accuracy'])} [{_pct(ml)}, {_pct(mh)}] | {_pct(p['native_top5_accuracy'])} | "
            f"{_pct(p['mapped_top5_accuracy'])} | {_pct(p['agreement'])} |"
        )
    return "\n".join(lines)


def memorised_advice(facts: Mapping[str, Any]) -> str:
    """What to do about a map that reproduces its fitting images: a ridge strength only where none was chosen."""
    if facts.get("alpha", 0) > 0:
        how = "chosen on held-out fitting images" if facts.get("alpha_chosen", True) else "given"
        return f"even with the ridge strength {facts['alpha']:.3g} {how}: fit on more images"
    return "fit on more images, or let a ridge strength be chosen on held-out fitting images (--param alpha=auto)"


def convergence_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """What the report says of maps whose iterative solver stopped while its loss was still improving."""
    lines = [
        f"- **Not converged:** {p['source']} → {p['target']} ({p['solver']}) was still improving at its last "
        f"iteration ({p['fit']['iterations']:,}); more iterations may fit a better map and change its loss."
        for p in pairs
        if p["fit"].get("converged") is False
    ]
    return [*lines, ""] if lines else []


def small_fit_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """What the report says of maps fitted on fewer images N than their source's width D plus one (an affine map
    has D + 1 parameters per output, so without a ridge penalty it can reproduce every fitting image), and of
    `procrustes` maps whose fitting images determine only `rank` of their directions."""
    lines = []
    for p in pairs:
        fit = p["fit"]
        rank = (f" Its fitting images determine {fit['rank']:,} of its directions; the others are mapped to zero."
                if "rank" in fit else "")  # fmt: skip
        if not fit.get("underdetermined"):
            if rank:
                lines.append(f"- {p['source']} → {p['target']} ({p['solver']}):{rank}")
            continue
        what = (f"{p['source']} → {p['target']} was fitted on N = {fit['fit_size']:,} images, fewer than "
                f"D + 1 = {fit['source_dim'] + 1:,} (its source's features + 1)")  # fmt: skip
        if fit.get("interpolates"):
            lines.append(
                f"- **Memorised:** {what}, and it reproduces them (train loss {fit['train_loss']:.2g}): its accuracy "
                f"measures the images it memorised, not information the networks share; {memorised_advice(fit)}."
            )
        elif fit.get("alpha", 0) > 0:
            how = "chosen on held-out fitting images" if fit.get("alpha_chosen", True) else "given (--param alpha)"
            lines.append(f"- {what}; ridge strength {fit['alpha']:.3g}, {how}.")
        else:
            lines.append(f"- {what} (train loss {fit['train_loss']:.4f}, val loss {fit['val_loss']:.4f}).{rank}")
    return [*lines, ""] if lines else []


def class_changes(p: dict[str, Any]) -> str:
    """One line naming the classes that lose and gain most under the map (or saying that none does)."""

    def show(rows: list[dict[str, Any]]) -> str:
        return ", ".join(f"class {r['class']} ({_signed_pct(-r['loss'])}, n = {r['images']:,})" for r in rows)

    losses, gains = p["per_class"]["largest_losses"], p["per_class"]["largest_gains"]
    drops = f"largest drops {show(losses)}" if losses else "no class loses accuracy"
    rises = f"largest gains {show(gains)}" if gains else "no class gains accuracy"
    unit = " (points of per-class accuracy; n: the class's held-out images)" if losses or gains else ""
    few = sorted({r["images"] for r in losses + gains if r["images"] < FEW_IMAGES})
    caution = (
        f" Classes with {' or '.join(f'{n:,}' for n in few)} image(s) change by whole images (±{100 / few[0]:.0f} "
        "points for one): not a finding on their own."
        if few
        else ""
    )
    return f"- {p['source']} → {p['target']}: {drops}; {rises}{unit}.{caution}"


#: Classes with fewer held-out images than this are flagged where the report names their changes.
FEW_IMAGES = 5


def _solvers(metrics: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(p["solver"] for p in metrics["pairs"]))


INTRODUCTION = [
    "Each network is `C(F(x))`: features `F` and a linear classifier `C`. An affine map `M` is fitted from one "
    "network's features to the other's on the fitting images; the other network's untouched classifier then "
    "labels the held-out images from the mapped features. **Loss** = accuracy of the target network on its own "
    "features minus its accuracy on mapped features, in percentage points (negative: a gain).",
    "",
    "How sure each number is: *Loss 95% CI* resamples the held-out images `n_boot` times (a paired bootstrap; "
    "1,000 unless the run's config.toml says otherwise); "
    "*McNemar p* is the chance of a split of fixed versus broken images at least this uneven if mapping did "
    "not change the accuracy (below 0.05: unlikely to be chance). *Fixed* images are labelled wrongly by the "
    "target network but correctly from mapped features; *broken* ones the reverse. *Top-5* counts the label "
    "among the 5 highest scores; *agreement* is how often native and mapped predictions are the same class. "
    "The Venn diagrams (the paper's Fig. 5) show which held-out images each of three classifiers labels "
    "correctly: the source network, the target network, and the target's classifier on mapped features.",
    "",
]


def render_report(out: str | Path) -> Path:
    """Write `out/report.md`, `out/table1.csv` and `out/figures/*.png` from `out/metrics.json` (one section per
    evaluation set when a run has several) and `out/fit_curves.json`."""
    from featswap.outputs.metrics_json import evaluation_sets
    from featswap.outputs.paths import write_text

    out = Path(out)
    metrics = read_metrics(out)
    if metrics.get("kind") == "stitch":
        from featswap.outputs.stitch_report import render_stitch_report

        return render_stitch_report(out, metrics)
    curves_path = out / "fit_curves.json"
    curves: dict[str, list[float]] = json.loads(curves_path.read_text()) if curves_path.is_file() else {}
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sets = evaluation_sets(metrics)
    several = len(sets) > 1
    lines = ["# featswap report", ""]
    if several:
        names = ", ".join(f"**{e['dataset']['name']}**" for e in sets)
        lines += [f"{len(sets)} evaluation sets ({names}), each with its own Table 1 below. "
                  f"featswap {metrics['featswap_version']}.", ""]  # fmt: skip
    lines += INTRODUCTION
    csv_rows = ["set,solver,description,mapping,correct,total,percent,loss"]
    for entry in sets:
        prefix = f"{entry['dataset']['name']}_" if several else ""
        heading = "### " if several else "## "
        if several:
            lines += [f"## Evaluation set `{entry['dataset']['name']}`", ""]
        lines += set_section(entry, figures, prefix, heading, curves, None if several else metrics["featswap_version"])
        csv_rows += [f"{entry['dataset']['name']},{row}" for row in table1_rows(entry)]
        table = f"{prefix}predictions"
        found = next((f"{table}{ext}" for ext in (".parquet", ".csv") if (out / f"{table}{ext}").is_file()), None)
        if found:
            lines += [
                f"Per-image predictions of every classifier: `{found}` (columns `id`, `label`, `native:MODEL`, "
                "`mapped:SOURCE->TARGET:SOLVER`).",
                "",
            ]
    write_text(out / "table1.csv", "\n".join(csv_rows) + "\n")
    return write_text(out / "report.md", "\n".join(lines))


def set_section(
    metrics: dict[str, Any],
    figures: Path,
    prefix: str,
    heading: str,
    curves: dict[str, list[float]],
    version: str | None,
) -> list[str]:
    """The report of one evaluation set: its data, a Table 1 per solver with readings, details, figures, and
    the similarity measures. Figure files start with `prefix` (the set's name when there are several)."""
    ds = metrics["dataset"]
    fit = f" of {ds['fit_collection']}" if ds.get("fit_collection") else ""
    spec = f" ({ds['spec']})" if ds.get("spec") else ""
    lines = [
        f"Evaluation set **{ds['name']}**{spec}: {ds['val_size']:,} held-out images, {ds['num_classes']:,} classes"
        + (f" (scored over the {ds['scored_classes']:,} present)" if ds.get("scored_classes") else "")
        + "; "
        f"maps fitted on {ds['train_size']:,} images{fit}." + (f" featswap {version}." if version else ""),
        "",
        *[
            f"Skipped as unreadable ({name}, {len(ids)}): {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}.\n"
            for name, ids in ds.get("skipped", {}).items()
        ],
    ]
    for name, model in metrics["models"].items():
        if model.get("head_offset"):
            lines += [head_offset_note(name, model["head_outputs"], model["head_offset"]) + ".", ""]
    lines += head_lines(metrics["models"])
    if ds.get("scored_classes"):
        lines += [
            f"**Scored over the {ds['scored_classes']:,} classes present** of the {ds['num_classes']:,}: every "
            "prediction, native and mapped, is the highest logit among those classes (the protocol of ImageNet-R and "
            "ImageNet-A).",
            "",
        ]
    if ds.get("fit_overlap"):
        lines += [
            f"**Not held out:** {ds['fit_overlap']:,} of these {ds['val_size']:,} images are also images the maps "
            "were fitted on, so their results measure the fit, not what transfers to new images.",
            "",
        ]
    on_set = f", {ds['name']}" if prefix else ""  # figure titles name the set when there are several
    for solver in _solvers(metrics):
        pairs = [p for p in metrics["pairs"] if p["solver"] == solver]
        note = iterations_note([p["fit"]["iterations"] for p in pairs])
        lines += [f"{heading}Table 1 — solver `{solver}`{note}", "", table1(metrics, solver), ""]
        lines += small_fit_lines(pairs)
        lines += convergence_lines(pairs)
        lines += ["Reading:", ""]
        lines += [reading(p) for p in pairs]
        lines += ["", details(pairs), "", "Classes that change most:", "", *[class_changes(p) for p in pairs], ""]
        matrix = metrics.get("loss_matrix", {}).get(solver)
        if matrix and len(metrics["models"]) > 2:
            name = f"{prefix}loss_matrix_{solver}.png"
            plot_loss_matrix(matrix, list(metrics["models"]), figures / name, solver + on_set)
            lines += [
                "Directional loss for every ordered pair (rows: the classifier's network, columns: the features "
                "mapped into it; percentage points, lower is better, the diagonal is not a pair):",
                "",
                f"![loss matrix](figures/{name})",
                "",
            ]
        solver_curves = {k.split("/")[0]: v for k, v in curves.items() if k.endswith(f"/{solver}")}
        if solver_curves:
            name = f"fit_curve_{solver}.png"
            plot_fit_curves(solver_curves, figures / name, solver)
            lines += ["Training curve (per-batch loss, the paper's Fig. 4):", "", f"![fit curve](figures/{name})", ""]
        for p in pairs:
            name = f"{prefix}venn_{p['source']}__to__{p['target']}__{solver}.png"
            plot_venn(p, figures / name, on_set)
            lines += [f"![Venn {p['source']} → {p['target']}](figures/{name})", ""]
        lines += [
            "| map | fit seconds | train loss | val loss |",
            "|---|---:|---:|---:|",
            *[
                f"| {p['source']} → {p['target']} | {p['fit']['seconds']:.2f} | {p['fit']['train_loss']:.4f} | "
                f"{p['fit']['val_loss']:.4f} |"
                for p in pairs
            ],
            "",
        ]
    if metrics.get("similarity"):
        lines += similarity_section(metrics, figures, prefix, heading)
    return lines


def plot_fit_curves(curves: dict[str, list[float]], path: Path, solver: str) -> None:
    """Per-batch loss against iteration, one line per direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=120)
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, lw=0.8, label=label.replace("->", " → "))
    ax.set_xscale("log")
    ax.set_xlabel("iteration (log scale)")
    ax.set_ylabel("batch loss ‖t/‖t‖ − y/‖y‖‖²\n(0 = same directions)")
    ax.set_title(f"Fitting the affine maps: the paper's loss per batch ({solver})", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    with writing_to(path):
        fig.savefig(path)
    plt.close(fig)


def similarity_section(metrics: dict[str, Any], figures: Path, prefix: str = "", heading: str = "## ") -> list[str]:
    """A table (two models) or heatmaps (more) of every similarity measure, and how each ranks the model
    pairs against the swap test."""
    from featswap.catalog.measures import MEASURES, rank_agreement

    models = list(metrics["models"])
    similarity = metrics["similarity"]
    solver = next(iter(metrics.get("loss_matrix", {})), None)
    losses = metrics["loss_matrix"][solver] if solver else {}
    measures = [MEASURES.get(name) for name in MEASURES if name in similarity]
    lines = [
        f"{heading}Similarity measures",
        "",
        "Representational similarity of the held-out features, beside the swap test. Each measure's range and "
        "the direction that means *more similar*:",
        "",
        "| measure | range | more similar | " + " | ".join(f"{a} / {b}" for a, b in _pairs(models)) + " |",
        "|---|---|---|" + "---:|" * len(_pairs(models)),
    ]
    for m in measures:
        values = similarity.get(m.name, {})
        cells = [_cell(values, a, b) + ("" if m.symmetric else f" / {_cell(values, b, a)}") for a, b in _pairs(models)]
        lines.append(f"| `{m.name}` | {m.span} | {m.better} | " + " | ".join(cells) + " |")
    directional = [f"`{m.name}`" for m in measures if not m.symmetric]
    if directional:
        verb = "is" if len(directional) == 1 else "are"
        lines += ["", f"({', '.join(directional)} {verb} directional: first → second / second → first.)"]
    lines.append("")
    subsample = metrics.get("similarity_subsample")
    if subsample:
        lines += [f"{', '.join(f'`{m}`' for m in subsample['measures'])} hold N x N matrices: computed on a random "
                  f"subsample of {subsample['rows']:,} of the {subsample['of']:,} images (seed {subsample['seed']}).",
                  ""]  # fmt: skip
    swapped = [p for p in metrics.get("pairs", []) if "jsd" in p]
    if swapped:
        lines += ["Each map's swapped outputs against its target network's native ones (the target's own head on "
                  "its own features, and on the mapped features): share of images whose top-1 class differs, and "
                  "the mean Jensen-Shannon divergence of the softmaxes (bits, 0..1):", ""]  # fmt: skip
        lines += [f"- {p['source']} → {p['target']} ({p['solver']}): disagreement {p['disagreement']:.4f}, "
                  f"JSD {p['jsd']:.4f}" for p in swapped]  # fmt: skip
        lines.append("")
    undefined = metrics.get("similarity_undefined", [])
    if undefined:
        lines += ["Undefined measures (shown as *undefined* above):", ""]
        lines += [f"- `{u['measure']}`, {u['source']} / {u['target']}: {u['reason']}" for u in undefined]
        lines.append("")
    if len(models) > 2:
        for m in measures:
            name = f"{prefix}similarity_{m.name}.png"
            title = f"{m.name} ({metrics['dataset']['name']})" if prefix else m.name
            plot_matrix(
                similarity.get(m.name, {}), models, figures / name, title, f"{m.span}, {m.better} = more similar"
            )
            lines.append(f"![{m.name}](figures/{name})")
        lines.append("")
    if solver:
        lines += [f"Agreement with the swap test (`{solver}` losses): the Spearman rank correlation across model "
                  "pairs between each measure and the loss (for symmetric measures, the mean loss of the two "
                  "directions):", ""]  # fmt: skip
        unranked = []
        for m in measures:
            rho = rank_agreement(similarity.get(m.name, {}), losses, m.symmetric)
            if rho != rho:  # nan: too few pairs
                unranked.append(f"`{m.name}`")
            elif abs(rho) < 0.3:
                lines.append(f"- `{m.name}`: Spearman {rho:+.2f}, no clear relation to the swap test.")
            else:
                agrees = rho < 0 if m.better == "higher" else rho > 0
                verdict = "agrees with the swap test" if agrees else "disagrees with the swap test"
                lines.append(f"- `{m.name}`: Spearman {rho:+.2f}, {verdict} (pairs it calls more similar lose "
                             f"{'less' if agrees else 'more'} accuracy when swapped).")  # fmt: skip
        if unranked and len(unranked) == len(measures):
            lines.append("- Too few model pairs to rank any measure against the swap test (three or more models "
                         "needed, with the measure defined).")  # fmt: skip
        elif unranked:
            lines.append(f"- {', '.join(unranked)}: too few model pairs where defined to rank against the swap test.")
        lines.append("")
    return lines


def _pairs(models: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]


def _cell(values: dict[str, dict[str, float | None]], a: str, b: str) -> str:
    row = values.get(a, {})
    if b not in row:
        return "—"
    value = row[b]
    return "*undefined*" if value is None else f"{value:.3f}"


def plot_loss_matrix(matrix: dict[str, dict[str, float]], models: list[str], path: Path, solver: str) -> None:
    """Directional losses in points: rows target head, columns source features, diverging around 0."""
    plot_matrix(
        matrix,
        models,
        path,
        f"Directional loss, points ({solver})",
        "loss: native − mapped accuracy (points); < 0 = gain",
        True,
    )


def plot_matrix(
    matrix: Mapping[str, Mapping[str, float | None]],
    models: list[str],
    path: Path,
    title: str,
    label: str,
    loss: bool = False,
) -> None:
    """Annotated heatmap of `matrix[source][target]`: rows target, columns source; missing cells (the
    diagonal) grey. `loss`: values in points on a scale diverging around 0; else raw values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(models)
    values = np.full((n, n), np.nan)
    undefined = np.zeros((n, n), dtype=bool)  # a pair whose measure is undefined, as opposed to no pair
    for j, source in enumerate(models):
        for i, target in enumerate(models):
            if target in matrix.get(source, {}):
                value = matrix[source][target]
                undefined[i, j] = value is None
                values[i, j] = np.nan if value is None else (100 if loss else 1) * value
    finite = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 1.8), dpi=120)
    if loss:
        limit = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        cmap, low, high = matplotlib.colormaps["RdBu_r"], -limit, limit
    else:
        cmap = matplotlib.colormaps["viridis"]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap.with_extremes(bad="#dddddd"), vmin=low, vmax=high)
    for i in range(n):
        for j in range(n):
            text = f"{values[i, j]:+.1f}" if loss else f"{values[i, j]:.3f}"
            text = ("undefined" if undefined[i, j] else "—") if np.isnan(values[i, j]) else text
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="black" if loss else "white")
    ax.set_xticks(range(n), models, rotation=30, ha="right")
    ax.set_yticks(range(n), models)
    ax.set_xlabel("source features (mapped)" if loss else "first model")
    ax.set_ylabel("target classifier" if loss else "second model")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    fig.tight_layout()
    with writing_to(path):
        fig.savefig(path)
    plt.close(fig)


#: Which of the three classifiers (source natively, target natively, target head on mapped source features) is
#: right on the images of each Venn region, for the UpSet-style bars; "none" is the eighth region.
MEMBERSHIP = {
    "all": (1, 1, 1),
    "source_target": (1, 1, 0),
    "source_mapped": (1, 0, 1),
    "target_mapped": (0, 1, 1),
    "source_only": (1, 0, 0),
    "target_only": (0, 1, 0),
    "mapped_only": (0, 0, 1),
    "none": (0, 0, 0),
}
REGION_LABELS = {
    "all": "all three",
    "source_target": "source & target",
    "source_mapped": "source & mapped",
    "target_mapped": "target & mapped",
    "source_only": "source only",
    "target_only": "target only",
    "mapped_only": "mapped only",
    "none": "none",
}


def plot_venn(pair: dict[str, Any], path: Path, on_set: str = "") -> None:
    """Write `venn_figure(pair, on_set)` to `path`."""
    import matplotlib.pyplot as plt

    fig = venn_figure(pair, on_set)
    with writing_to(path):
        fig.savefig(path)
    plt.close(fig)


def venn_figure(pair: dict[str, Any], on_set: str = "") -> Any:
    """The paper's Fig. 5, legible however nested the sets are: a three-set Venn diagram with circles of equal
    size (areas not to scale, so that every region has room for its count even when almost every image is in
    the triple intersection), and beside it the same eight counts as UpSet-style bars (a dot under each
    classifier that is right on the region's images), largest first. `on_set` (`, NAME`) names the evaluation
    set in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib_venn import venn3
    from matplotlib_venn.layout.venn3 import DefaultLayoutAlgorithm

    source, target = pair["source"], pair["target"]
    venn = pair["venn"]
    subsets = tuple(venn[r] for r in REGIONS)
    names = (source, target, f"{target}'s head on {source}'s mapped features")
    fig = plt.figure(figsize=(11, 4.6), dpi=120)
    grid = fig.add_gridspec(1, 3, width_ratios=(4.2, 1.5, 3.3), wspace=0.05)
    ax_venn, ax_dots, ax_bars = fig.add_subplot(grid[0]), fig.add_subplot(grid[1]), fig.add_subplot(grid[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        venn3(  # every region the same area: the layout no longer depends on the counts
            subsets=subsets,
            layout_algorithm=DefaultLayoutAlgorithm(fixed_subset_sizes=(1,) * 7),
            set_labels=(source, target, f"{target} head on\n{source} features"),
            ax=ax_venn,
            subset_label_formatter=lambda count: f"{count:,}",
        )
    ax_venn.set_title("regions (areas not to scale)", fontsize=9)

    order = sorted(MEMBERSHIP, key=lambda region: -venn[region])
    rows = range(len(order))
    for row, region in zip(rows, order, strict=True):
        member = MEMBERSHIP[region]
        ax_dots.scatter(range(3), [row] * 3, s=40, c=["#333333" if m else "#dddddd" for m in member], zorder=2)
        filled = [i for i, m in enumerate(member) if m]
        if len(filled) > 1:
            ax_dots.plot([filled[0], filled[-1]], [row, row], color="#333333", lw=1.5, zorder=1)
    ax_dots.set_xticks(range(3), ["source", "target", "mapped"], rotation=40, ha="right", fontsize=8)
    ax_dots.set_yticks(list(rows), [REGION_LABELS[region] for region in order], fontsize=8)
    ax_dots.set_xlim(-0.5, 2.5)
    ax_dots.set_ylim(len(order) - 0.5, -0.5)
    ax_dots.tick_params(length=0)
    for side in ax_dots.spines.values():
        side.set_visible(False)
    ax_dots.set_title("right on the images", fontsize=9)

    counts = [venn[region] for region in order]
    ax_bars.barh(list(rows), counts, color=["#8c6bb1" if region == "all" else "#6baed6" for region in order])
    top = max(counts) if max(counts) > 0 else 1
    for row, count in zip(rows, counts, strict=True):
        ax_bars.text(count + top * 0.01, row, f"{count:,}", va="center", fontsize=8)
    ax_bars.set_ylim(len(order) - 0.5, -0.5)
    ax_bars.set_yticks([])
    ax_bars.set_xlim(0, top * 1.18)
    ax_bars.set_xlabel(f"images (of {pair['total']:,} held out)")
    ax_bars.set_title("images per region", fontsize=9)
    ax_bars.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Which classifiers label each image correctly: {names[0]} → {names[1]} ({pair['solver']}{on_set})\n"
        f"source = {source} natively, target = {target} natively, mapped = {names[2]}",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.17, top=0.83)
    return fig


def head_offset_note(name: str, outputs: int, offset: int) -> str:
    """What the terminal and the report say of a head whose first outputs are not classes."""
    dropped = f"outputs 0..{offset - 1}" if offset > 1 else "output 0"
    dropped += " (TF-slim's background)" if (outputs, offset) == (1001, 1) else ""
    return (f"{name}: its head has {outputs} outputs; {dropped} left out, outputs {offset}..{outputs - 1} are its "
            f"{outputs - offset} classes (--head-offset sets this)")  # fmt: skip


def head_lines(models: Mapping[str, Any]) -> list[str]:
    """Which heads are not the networks' own (zero-shot text heads, trained probes), one line each, with a
    zero-shot head's names and templates and a probe's held-out accuracy: swapping into them tests those heads."""
    from featswap.heads.kinds import describe

    lines = []
    for name, model in models.items():
        head = model.get("head") or {"kind": "own"}
        if head.get("kind", "own") == "own":
            continue
        features = f" on its {model['features']} features" if model.get("features") else ""
        lines.append(f"**{name}'s head is {describe(head)}**{features}.")
        if head.get("kind") == "zero-shot":
            names = ", ".join(head.get("names", [])[:10]) + (" ..." if len(head.get("names", [])) > 10 else "")
            templates = " | ".join(head.get("templates", [])[:3]) + (
                " ..." if len(head.get("templates", [])) > 3 else ""
            )
            lines.append(f"Class names: {names}. Templates: {templates}.")
        lines.append("")
    return lines
