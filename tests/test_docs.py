"""The documentation's Python: the code blocks of the API pages (docs/api*.md) run, in order, as a reader would
run them after `make demo`."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def api_pages() -> list[Path]:
    return sorted(DOCS.glob("api*.md"))


@pytest.fixture
def in_demo_folder(tmp_path: Path, trained_weights: dict[str, Path]) -> Iterator[Path]:
    """A folder where runs/demo/weights holds the two tiny networks' weights, as after `make demo`."""
    weights = tmp_path / "runs" / "demo" / "weights"
    weights.mkdir(parents=True)
    for spec, path in trained_weights.items():
        shutil.copy(path, weights / f"{spec}.safetensors")
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def test_the_api_pages_have_code_to_run() -> None:
    assert api_pages(), "no docs/api*.md"
    assert sum(len(python_blocks(p)) for p in api_pages()) >= 2


@pytest.mark.parametrize("page", api_pages(), ids=lambda p: p.name)
def test_the_code_blocks_of_the_api_pages_run(page: Path, in_demo_folder: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(python_blocks(page), 1):
        try:
            exec(compile(block, f"{page.name}, block {number}", "exec"), namespace)
        except Exception as err:  # the page's reader would see this
            pytest.fail(f"{page.name}, python block {number} fails: {type(err).__name__}: {err}")
    assert (in_demo_folder / "runs" / "py" / "metrics.json").is_file()


def test_the_cli_page_is_generated_from_the_app_and_lists_every_command() -> None:
    import importlib.util

    import typer

    from featswap.cli import app

    spec = importlib.util.spec_from_file_location("cli_page", DOCS / "hooks" / "cli_page.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.cli_markdown()
    group = typer.main.get_command(app)
    for name in group.commands:  # type: ignore[attr-defined]
        assert f"## featswap {name}\n" in page
    assert "`--val-fraction`" in page and "`--solver`" in page
