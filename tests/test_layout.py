"""The package's shape: no import cycles between its modules, and the light commands load no heavy library."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import featswap

PACKAGE = Path(featswap.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """The featswap modules a module imports when it is imported (not inside functions or TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if isinstance(node, ast.Import | ast.ImportFrom | ast.If | ast.Try) else ():
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith("featswap"):
                found.add(inner.module)
                found.update(f"{inner.module}.{a.name}" for a in inner.names)
            elif isinstance(inner, ast.Import):
                found.update(a.name for a in inner.names if a.name.startswith("featswap"))
    return found


def test_no_module_imports_itself_through_others() -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in top_level_imports(path) if m in modules and m != name} for name, path in modules.items()}
    cycles = []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*stack, node], done)
        done.add(node)

    assert "featswap.store" in graph["featswap.experiment.fitting"]  # the parser sees imports
    assert "featswap.mapping.moments" in graph["featswap.mapping.paired"]
    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [], done)

    # A package importing its own submodule (featswap.store -> featswap.store.feature_store) is how packages work.
    def nested(a: str, b: str) -> bool:
        return a.startswith(b + ".") or b.startswith(a + ".")

    real = [c for c in cycles if not all(nested(a, b) for a, b in itertools.pairwise(c))]
    assert real == [], real


def test_help_and_report_load_no_heavy_library(tmp_path: Path, digits_store: Path) -> None:
    from runs import compare_on_store

    compare_on_store(digits_store, tmp_path / "run")
    script = (
        "import sys\n"
        "from featswap.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as done:\n"
        "    print('exit', done.code)\n"
        "heavy = ('torch', 'ray', 'zarr', 'timm', 'sklearn', 'transformers', 'open_clip')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    for args in (["--help"], ["compare", "--help"], ["report", str(tmp_path / "run")]):
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
        *_, code, loaded = done.stdout.strip().splitlines()
        assert code == "exit 0" and loaded == "[]", (args, done.stdout, done.stderr)
