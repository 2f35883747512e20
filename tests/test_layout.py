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


# -- layers: every import points down -------------------------------------------------------------------------
#: featswap's layers, lowest first (docs/architecture.md). A module may import from its own layer or any below,
#: at module level or inside a function alike; never from a layer above. Top-level modules and packages are
#: named by their first name under featswap.
LAYERS: list[set[str]] = [
    {"featswap", "errors", "registry", "validate", "threads", "heap", "progress", "files", "rows", "provenance"},
    {"catalog"},  # the names a config may use and their checks (solvers' settings, measures, model names)
    {"config"},  # frozen settings, read by every part below the experiment
    {"store", "data", "backbones", "heads"},
    {"mapping", "evaluation"},
    {"similarity", "extraction"},
    {"engines", "outputs"},
    {"stitching"},
    {"experiment"},
    {"demo", "paper"},
    {"cli"},
]
#: Imports that still point up, each with where it should go; the test fails when one is added or one is
#: removed without being struck from this list, so the list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def layer_of(module: str) -> int:
    first = module.split(".")[1] if "." in module else "featswap"
    for rank, layer in enumerate(LAYERS):
        if first in layer:
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py: add it to LAYERS")


def every_import(path: Path) -> list[tuple[str, list[str]]]:
    """Every featswap module a module imports, at module level or inside functions (not under TYPE_CHECKING),
    with the names it takes."""

    def walk(tree: ast.AST) -> list[ast.AST]:
        found: list[ast.AST] = []
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            found += [node, *walk(node)]
        return found

    imports = []
    for node in walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "featswap":
            imports.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            imports += [(a.name, []) for a in node.names if a.name.split(".")[0] == "featswap"]
    return imports


def test_every_import_points_down_the_layers() -> None:
    upward = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for imported, _ in every_import(path):
            if layer_of(imported) > layer_of(name):
                upward.add((name, imported))
    assert upward - KNOWN_UPWARD == set(), "imports that point up the layers"
    assert KNOWN_UPWARD - upward == set(), "no longer upward: strike them from KNOWN_UPWARD"


def test_no_private_name_crosses_a_module() -> None:
    crossing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for imported, names in every_import(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            crossing += [f"{module_name(path)} imports {imported}.{n}" for n in private]
    assert crossing == []


def test_the_light_parts_load_no_torch() -> None:
    """Opening a store (`featswap verify`), the numpy statistics and the run directory's files need no torch."""
    script = (
        "import sys\n"
        "import featswap.store, featswap.mapping.moments, featswap.mapping.products, featswap.files, featswap.rows\n"
        "import featswap.outputs.paths, featswap.config\n"
        "print(sorted(m for m in ('torch', 'ray', 'featswap.mapping.solvers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_layer_test_sees_an_upward_import(tmp_path: Path) -> None:
    assert layer_of("featswap.cli") > layer_of("featswap.experiment") > layer_of("featswap.mapping.moments")
    assert layer_of("featswap.config") > layer_of("featswap.catalog.solvers") > layer_of("featswap.errors")
    path = PACKAGE / "config.py"
    assert any(m == "featswap.provenance" for m, _ in every_import(path))  # function-level imports are seen
    module = tmp_path / "upward.py"
    module.write_text("def check(name):\n    from featswap.mapping.solvers import SOLVERS\n\n    SOLVERS.get(name)\n")
    assert every_import(module) == [("featswap.mapping.solvers", ["SOLVERS"])]
    assert layer_of("featswap.mapping.solvers") > layer_of("featswap.config")  # as config's import was, upward
