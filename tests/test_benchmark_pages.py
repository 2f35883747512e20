"""The benchmark pages are generated from the JSON the benchmarks write: a real benchmark run with `--json` is read
back by the docs hook into a table, its printed output and a plot; the committed results are consistent; a
malformed or missing result stops the build."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HELPERS = {"recording", "planted", "memory_probe", "extraction_peer", "references", "gpu", "paper_gpu"}


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_pages", ROOT / "docs" / "hooks" / "benchmark_pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def offsets_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`benchmarks/offsets.py`, run for real at a small size with `--json`."""
    folder = tmp_path_factory.mktemp("results")
    out = folder / "offsets.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "offsets.py"), "--rows", "3000", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"wrote {out}")
    return folder


def test_a_benchmark_run_with_json_records_its_figures_output_machine_and_date(offsets_result: Path) -> None:
    record = json.loads((offsets_result / "offsets.json").read_text())
    printed = [line for line in record["output"] if line.startswith("largest featswap error: ")]
    assert len(printed) == 1
    (figure,) = record["figures"]
    assert figure["name"] == "largest relative error under a common offset" and figure["target"] == "<= 1e-6"
    assert f"{figure['value']:.1e}" == printed[0].split(": ")[1]  # the figure is the printed number
    assert figure["met"] is (figure["value"] <= 1e-6)
    assert record["command"].startswith("python benchmarks/offsets.py --rows 3000 --json ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", record["date"]) and record["started"].startswith(record["date"])
    assert record["machine"]["cores"] >= 1 and "torch" in record["machine"]


def test_the_hook_renders_the_table_the_output_and_the_plot(offsets_result: Path) -> None:
    pages = hook()
    results = pages.load_results(offsets_result)
    record = results["offsets"]
    page = pages.render("# B\n\n<!-- benchmark-results -->\n\n<!-- benchmark-output offsets -->\n", results)
    table_row = next(line for line in page.splitlines() if line.startswith("| `offsets.py` |"))
    cells = [c.strip() for c in table_row.strip("|").split("|")]
    assert cells[1] == "largest relative error under a common offset"
    assert cells[2] == f"{record['figures'][0]['value']:.1e}" and cells[3] == "<= 1e-6"
    assert cells[4] == ("yes" if record["figures"][0]["met"] else "**no**")
    assert cells[5].startswith(f"{record['machine']['cores']}-core ") and cells[6] == record["date"]
    assert f"$ {record['command']}" in page and record["output"][-1] in page
    assert f"commit `{record['commit']}`" in page and "<!--" not in page
    in_a_list = pages.render("- a promise:\n\n  <!-- benchmark-output offsets -->\n", results).splitlines()[2:]
    assert in_a_list[0] == "  ```text" and all(line.startswith("  ") for line in in_a_list if line)
    png = pages.ratio_plot(pages.load_results())  # the committed results' ratios
    assert png.startswith(b"\x89PNG")


def test_a_missing_or_malformed_result_stops_the_build(offsets_result: Path, tmp_path: Path) -> None:
    pages = hook()
    with pytest.raises(ValueError, match=r"no benchmarks/results/stitch.json"):
        pages.render("<!-- benchmark-output stitch -->", pages.load_results(offsets_result))
    record = json.loads((offsets_result / "offsets.json").read_text())
    cases = [
        ({k: v for k, v in record.items() if k != "machine"}, r"not a featswap benchmark record \(missing machine\)"),
        ({**record, "figures": [{**record["figures"][0], "target": "about 1"}]}, "is not '<= X' or '>= X'"),
        ({**record, "figures": [{**record["figures"][0], "met": not record["figures"][0]["met"]}]}, "is marked met="),
    ]
    for k, (broken, message) in enumerate(cases):
        folder = tmp_path / str(k)
        folder.mkdir()
        (folder / "offsets.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=message):
            pages.load_results(folder)
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    (misnamed / "stitch.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"name it offsets\.json"):
        pages.load_results(misnamed)


def test_a_failed_run_writes_no_record(tmp_path: Path) -> None:
    out = tmp_path / "stitch.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "offsets.py"), "--rows", "-5", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0 and not out.exists() and not list(tmp_path.iterdir())


def test_every_committed_result_is_consistent_and_shown_in_the_docs() -> None:
    results = hook().load_results()  # raises on any inconsistency
    assert results, "benchmarks/results/ holds no result"
    pages = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for name in results:
        assert f"<!-- benchmark-output {name} -->" in pages, f"{name}.json is in no page"


def test_every_benchmark_takes_json_and_records_under_its_own_name() -> None:
    for script in sorted(BENCHMARKS.glob("*.py")):
        if script.stem in HELPERS:
            continue
        text = script.read_text()
        assert f'Recording("{script.stem}", args.json, argv)' in text, script.name
        assert "add_json_option(parser)" in text or "arguments(__doc__, argv)" in text, script.name


def test_the_memory_benchmarks_run_on_a_store_they_write(tmp_path: Path) -> None:
    """`fit_memory.py` and `similarity_memory.py` write a planted store through the store's API and measure a fresh
    process on it (they once failed at once on an API they no longer matched)."""
    store = tmp_path / "planted.zarr"
    for script, figure in (("fit_memory", "lstsq peak memory"), ("similarity_memory", "linear + debiased CKA peak")):
        out = tmp_path / f"{script}.json"
        args = ["--rows", "3000", "--store", str(store), "--keep", "--json", str(out)]
        done = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), *args], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        peak = next(f for f in json.loads(out.read_text())["figures"] if f["name"].startswith(figure))
        assert peak["unit"] == "GiB" and 0.1 < peak["value"] < 8
    assert (store / "zarr.json").is_file()  # --keep kept it, and the second script reused it


def test_a_json_path_that_is_a_folder_or_a_users_file_is_refused_before_the_run(tmp_path: Path) -> None:
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    (tmp_path / "folder.json").mkdir()
    cases = ((mine, "is not a benchmark record"), (tmp_path / "folder.json", "is a folder"),
             (mine / "under" / "a-file.json", "is not a folder this process can write to"))  # fmt: skip
    for path, words in cases:
        done = subprocess.run([sys.executable, str(BENCHMARKS / "offsets.py"), "--rows", "3000", "--json", str(path)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 2 and done.stderr.strip().startswith("error: --json") and words in done.stderr
        assert "relative error" not in done.stdout  # refused before the run
    assert mine.read_text() == '{"my": "notes"}'
