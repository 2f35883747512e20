"""MkDocs hook: the benchmark pages' tables, printed outputs and plot are generated at every build from the JSON
files the benchmarks write (`python benchmarks/NAME.py --json benchmarks/results/NAME.json`), each with the
machine and the date it ran on, so that no figure is copied by hand.

In a page's Markdown:

- `<!-- benchmark-results -->` becomes a table of every result's headline figures (value, target, met or not,
  machine, date);
- `<!-- benchmark-output NAME -->` becomes the command and everything it printed, from
  `benchmarks/results/NAME.json`, with its machine, date and commit;
- `images/benchmark-ratios.png` is a plot of every figure measured as a ratio against its target.

A result file that is missing or malformed stops the build (`mkdocs build --strict`).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
PLOT = "images/benchmark-ratios.png"
TABLE_MARK = "<!-- benchmark-results -->"
OUTPUT_MARK = re.compile(r"^([ \t]*)<!-- benchmark-output ([a-z_]+) -->", re.MULTILINE)  # indented in a list item
REQUIRED = ("format", "script", "command", "date", "commit", "machine", "figures", "output")


@functools.cache
def _recording() -> ModuleType:
    """benchmarks/recording.py, which wrote the files (its `describe` names the machine)."""
    spec = importlib.util.spec_from_file_location("benchmark_recording", REPO / "benchmarks" / "recording.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def load_results(folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every `NAME.json` of `folder`, by script name; a file that is not a benchmark record is an error."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        missing = [key for key in REQUIRED if key not in record]
        if missing or record["format"] != _recording().FORMAT:
            raise ValueError(f"{path} is not a featswap benchmark record (missing {', '.join(missing) or 'format'})")
        for figure in record["figures"]:
            if figure["target"] is None:
                continue
            try:
                met = _recording().meets(figure["value"], figure["target"])
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
            if figure["met"] != met:
                raise ValueError(f"{path}: {figure['name']} {figure['value']} is marked met={figure['met']} against "
                                 f"{figure['target']}")  # fmt: skip
        if path.stem != record["script"]:
            raise ValueError(f"{path} holds the results of {record['script']}.py: name it {record['script']}.json")
        found[record["script"]] = record
    return found


def _value(figure: dict[str, Any]) -> str:
    value, unit = figure["value"], figure["unit"]
    if unit == "bool":
        return "yes" if value else "no"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        shown = f"{value:.1e}"
    else:
        shown = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{shown}{unit}" if unit in ("x", "%") else f"{shown} {unit}".strip()


def results_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per headline figure of every result, with its target, its machine and its date."""
    describe = _recording().describe
    rows = ["| benchmark | figure | value | target | met | machine | date |", "|---|---|---:|---|---|---|---|"]
    for name, record in results.items():
        for figure in record["figures"]:
            met = {True: "yes", False: "**no**", None: ""}[figure["met"]]
            rows.append(f"| `{name}.py` | {figure['name']} | {_value(figure)} | {figure['target'] or ''} "
                        f"| {met} | {describe(record['machine'])} | {record['date']} |")  # fmt: skip
    return "\n".join(rows)


def output_block(record: dict[str, Any]) -> str:
    """The command, everything it printed, and where and when it ran."""
    machine = _recording().describe(record["machine"])
    load = record["machine"].get("load_average")
    where = f"{machine}, load average {load:g} at the start" if load is not None else machine
    body = "\n".join([f"$ {record['command']}", *record["output"]])
    return f"```text\n{body}\n```\n\n*Measured on {where}; {record['started']}, commit `{record['commit']}`.*"


def ratio_plot(results: dict[str, dict[str, Any]]) -> bytes:
    """A PNG: every figure measured as a ratio (unit "x") with a target, as a bar, and its target as a mark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{name}: {f['name']} [{f['target']}]", f) for name, r in results.items() for f in r["figures"]
            if f["unit"] == "x" and f["target"]]  # fmt: skip
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.6))
    bounds = [_recording().target_bound(f["target"]) for _, f in rows]
    ax.set_xlim(0, 1.15 * max([f["value"] for _, f in rows] + bounds + [1.0]))
    for i, ((_, figure), bound) in enumerate(zip(rows, bounds, strict=True)):
        colour = {True: "tab:green", False: "tab:red", None: "tab:gray"}[figure["met"]]
        ax.barh(i, figure["value"], color=colour, height=0.6)
        ax.plot([bound] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.text(figure["value"], i, f" {figure['value']:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio, as each row defines it (no unit)")
    fig.suptitle("Each ratio against its target (black mark): green where met, red where not")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def render(markdown: str, results: dict[str, dict[str, Any]]) -> str:
    """The page with its markers replaced; a marker naming a result that is not there is an error."""

    def output(match: re.Match[str]) -> str:
        indent, name = match.groups()
        if name not in results:
            raise ValueError(f"no benchmarks/results/{name}.json for '{match.group(0).strip()}'")
        return "\n".join(indent + line if line else line for line in output_block(results[name]).splitlines())

    return OUTPUT_MARK.sub(output, markdown.replace(TABLE_MARK, results_table(results)))


_built: dict[str, dict[str, Any]] = {}  # the records of the build under way, read once by on_files


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    _built.clear()
    _built.update(load_results())
    files.append(File.generated(config, PLOT, content=ratio_plot(_built)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if TABLE_MARK not in markdown and not OUTPUT_MARK.search(markdown):
        return markdown
    return render(markdown, _built)
