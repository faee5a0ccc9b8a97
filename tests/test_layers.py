"""The layers of kae_utils (and the tooling package kae_tools above it), checked on the source: an import graph
read with ``ast`` (nothing is imported or run) must have no circle, no arrow that runs up the layer order, and no
arrow from kae_utils to kae_tools; and no module may import another module's private (``_name``) names.

The order, lowest first (one place: :data:`LAYERS`; the package docstring draws it). Why this order, from what
the modules import:

- ``core`` is torch-free and imports nothing of ours: the runner and the tooling import it at the top.
- ``data`` and ``models`` need only ``core`` (parameter checks, paths, the smoke scale); neither needs the other.
- ``display`` sits above ``data``: a scene's plot names its label maps (``viz.plot_scene``); the progress bar is
  used by ``training`` and ``benchmarks``, so ``display`` sits below them.
- ``evaluation`` (metrics, results) sits below ``training``: the trainer's default evaluation is
  ``metrics.accuracy``.
- ``training`` (numerics, trainer, predict, cache) is below every method: the losses compute in float32 under
  autocast (``numerics.float32_loss``) and ``amalgamation.train_ceiling`` trains with the ``Trainer``.
- ``notebook`` (``setup_notebook`` sets the numerics) and ``methods`` (the papers' shared pieces) share a rank
  and do not import each other.
- ``benchmarks``: the task table (``tasks``: a loss, metric and colouring per task, so it needs ``methods.dense``,
  ``evaluation.metrics`` and ``display.viz``) and the mini-Taskonomy (which needs the transferability
  estimators); hence ``tasks`` lives here and not in ``evaluation``.
- ``zoo`` trains and stores every teacher, so it may import everything; nothing of the library imports it.
- ``kae_tools`` (the repository's tooling) may import kae_utils; kae_utils never imports it.

Inside one layer's package, modules import each other freely (still without a circle). Imports under
``if TYPE_CHECKING:`` are not arrows (they never run). A package's implicit import of its parents'
``__init__`` is not counted either: only the import statements written in the source.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY, TOOLING = "kae_utils", "kae_tools"

#: The layers of kae_utils, lowest first; the sub-packages (or top-level modules) of one tuple share a rank.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("data", "models"),
    ("display",),
    ("evaluation",),
    ("training",),
    ("notebook", "methods"),
    ("benchmarks",),
    ("zoo",),
)
#: The tooling modules that issue 27 moves from kae_utils to kae_tools: while kae_tools does not exist yet (a
#: branch before that move), they are left out of the graph; once it exists, a module of kae_utils outside the
#: layers fails the test.
MOVING_TO_TOOLING = frozenset({"run", "sweep", "executors", "readme", "pairing", "nbclean"})

Graph = Mapping[str, set[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip |= {id(n) for n in ast.walk(child)}
    return skip


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports anywhere in its source (function bodies included)."""
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()

    def longest_known(name: str) -> str | None:
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            candidate = ".".join(parts[:k])
            if candidate in known:
                return candidate
        return None

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = longest_known(alias.name)
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source_module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source_module = node.module or ""
            for alias in node.names:
                sub = f"{source_module}.{alias.name}"
                target = sub if sub in known else longest_known(source_module)
                if target:
                    out.add(target)
    out.discard(module)
    return out


def import_graph(root: Path = ROOT, packages: Iterable[str] = (LIBRARY, TOOLING)) -> dict[str, set[str]]:
    """``{module: the modules of ours it imports}`` over the packages that exist under ``root``."""
    files = {module_name(p, root): p for pkg in packages if (root / pkg).is_dir()
             for p in sorted((root / pkg).rglob("*.py"))}
    if not (root / TOOLING).is_dir():
        files = {m: p for m, p in files.items()
                 if not (m.startswith(LIBRARY + ".") and m.split(".")[1] in MOVING_TO_TOOLING)}
    known = set(files)
    return {m: imports_of(m, p.read_text(), p.name == "__init__.py", known) for m, p in files.items()}


def find_cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component with more than one module (or a module importing itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's algorithm (the graphs are small: recursion is fine)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> tuple[int, str] | None:
    """``(rank, group)`` of a module: kae_tools above every layer, the package root ``kae_utils`` (the lazy
    public surface) above the library's layers, ``None`` for a kae_utils module outside the layers."""
    parts = module.split(".")
    if parts[0] == TOOLING:
        return len(layers) + 1, TOOLING
    if parts == [LIBRARY]:
        return len(layers), LIBRARY
    for rank, names in enumerate(layers):
        if parts[1] in names:
            return rank, parts[1]
    return None


def layer_problems(graph: Graph, layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """Arrows that run up the order or sideways between two packages of one rank, arrows from kae_utils to
    kae_tools, and kae_utils modules outside the layers."""
    problems = []
    for a in sorted(graph):
        la = layer_of(a, layers)
        if la is None:
            problems.append(f"{a} is in no layer (add its package to LAYERS)")
            continue
        for b in sorted(graph[a]):
            lb = layer_of(b, layers)
            if a.split(".")[0] == LIBRARY and b.split(".")[0] == TOOLING:
                problems.append(f"{a} imports the tooling package: {b}")
            elif lb is None or lb[1] == la[1]:
                continue  # inside one package (a module outside the layers is reported on its own)
            elif lb[0] >= la[0]:
                where = "up" if lb[0] > la[0] else "sideways"
                problems.append(f"{a} ({la[1]}) imports {b} ({lb[1]}): an arrow {where} the layer order")
    return problems


def private_imports(root: Path = ROOT, packages: Iterable[str] = (LIBRARY, TOOLING)) -> list[str]:
    """Every ``from <one of ours> import _name`` (a private name, not a dunder) in the packages under ``root``:
    one module reaching into another's privates. What two modules share is public and in ``__all__``."""
    found = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else ():
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or (node.level == 0 and (node.module or "").split(".")[0]
                                                            not in (LIBRARY, TOOLING)):
                    continue
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if names:
                    source = "." * node.level + (node.module or "")
                    found.append(f"{module_name(path, root)}: from {source} import {', '.join(names)}")
    return found


# ------------------------------------------------------------------------------------ the repository


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_covers_the_library(graph):
    assert "kae_utils.core.params" in graph and "kae_utils.zoo.store" in graph
    assert "kae_utils.training.trainer" in graph["kae_utils.zoo.recipes"]


def test_no_import_circle(graph):
    assert find_cycles(graph) == []


def test_arrows_point_down_the_layers(graph):
    assert layer_problems(graph) == []


def test_the_library_never_imports_the_tooling(graph):
    assert not [(a, b) for a, bs in graph.items() for b in bs
                if a.startswith(LIBRARY) and b.split(".")[0] == TOOLING]


def test_core_is_torch_free(graph):
    """core imports only core, and no third-party module of it imports torch at module level."""
    for module, imported in graph.items():
        if module.startswith("kae_utils.core"):
            assert all(b.startswith("kae_utils.core") for b in imported), (module, imported)
            tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text()
                             if (ROOT / (module.replace(".", "/") + ".py")).exists()
                             else (ROOT / module.replace(".", "/") / "__init__.py").read_text())
            top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module or "" for n in top if isinstance(n, ast.ImportFrom)}
            assert not {n for n in names if n.split(".")[0] in ("torch", "numpy", "matplotlib")}, module


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


# ----------------------------------------------------------------------------- the checks can fail


MAX_MODULE_LINES = 600  # issue 27: "no module over about 600 lines"


def test_no_module_is_over_the_size_limit():
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for package in (LIBRARY, TOOLING) for path in (ROOT / package).rglob("*.py")}
    assert len(sizes) > 50
    assert {path: n for path, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_a_circle_is_found():
    graph = {"kae_utils.data.a": {"kae_utils.data.b"}, "kae_utils.data.b": {"kae_utils.data.c"},
             "kae_utils.data.c": {"kae_utils.data.a"}, "kae_utils.core.x": set()}
    assert find_cycles(graph) == [["kae_utils.data.a", "kae_utils.data.b", "kae_utils.data.c"]]
    assert find_cycles({"m": {"m"}}) == [["m"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_an_upward_or_sideways_arrow_is_found():
    graph = {"kae_utils.core.params": {"kae_utils.training.trainer"},  # up
             "kae_utils.training.trainer": {"kae_utils.core.params"},  # down: fine
             "kae_utils.data.scenes": {"kae_utils.models.backbones"},  # sideways: one rank
             "kae_utils.models.backbones": set()}
    problems = layer_problems(graph)
    assert len(problems) == 2
    assert "kae_utils.core.params (core) imports kae_utils.training.trainer (training): an arrow up" in problems[0]
    assert "sideways" in problems[1]


def test_the_library_importing_the_tooling_is_found():
    problems = layer_problems({"kae_utils.zoo.cli": {"kae_tools.runner.cli"}, "kae_tools.runner.cli": set()})
    assert problems == ["kae_utils.zoo.cli imports the tooling package: kae_tools.runner.cli"]
    assert layer_problems({"kae_tools.runner.cli": {"kae_utils.zoo.cli"}, "kae_utils.zoo.cli": set()}) == []


def test_a_module_outside_the_layers_is_found():
    assert layer_problems({"kae_utils.misc": set()}) == ["kae_utils.misc is in no layer (add its package to LAYERS)"]


def test_a_private_import_is_found(tmp_path):
    pkg = tmp_path / "kae_utils" / "data"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("_SECRET = 1\n__all__ = []\n")
    (pkg / "b.py").write_text("from __future__ import annotations\nfrom kae_utils.data.a import __all__, _SECRET\n"
                              "from os import _exit\n")
    (pkg / "c.py").write_text("from .a import _SECRET as S\n")
    assert private_imports(tmp_path, packages=("kae_utils",)) == [
        "kae_utils.data.b: from kae_utils.data.a import _SECRET", "kae_utils.data.c: from .a import _SECRET"]


def test_imports_are_read_from_the_source(tmp_path):
    pkg = tmp_path / "kae_utils"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text(
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
        "from . import b\nif TYPE_CHECKING:\n    from kae_utils.zoo import store\n"
        "def f():\n    import kae_utils.training.trainer\n")
    (pkg / "core" / "b.py").write_text("from kae_utils.core import a\n")
    (pkg / "zoo").mkdir()
    (pkg / "zoo" / "__init__.py").write_text("")
    (pkg / "zoo" / "store.py").write_text("")
    (pkg / "training").mkdir()
    (pkg / "training" / "__init__.py").write_text("")
    (pkg / "training" / "trainer.py").write_text("")
    graph = import_graph(tmp_path, packages=("kae_utils",))
    # relative and function-local imports count; TYPE_CHECKING ones do not
    assert graph["kae_utils.core.a"] == {"kae_utils.core.b", "kae_utils.training.trainer"}
    assert find_cycles(graph) == [["kae_utils.core.a", "kae_utils.core.b"]]
    assert any("an arrow up" in p for p in layer_problems(graph))


# ------------------------------------------------------------------------------- the public surface


def test_import_kae_utils_is_cheap():
    """``import kae_utils`` imports no sub-module (torch included); the surface loads on first use."""
    import subprocess
    import sys

    code = ("import sys, kae_utils; assert 'torch' not in sys.modules, 'torch'; "
            "assert not [m for m in sys.modules if m.startswith('kae_utils.')], 'a sub-module'; "
            "assert set(kae_utils.__all__) <= set(dir(kae_utils))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_public_surface_resolves():
    import importlib

    import kae_utils

    for name in kae_utils.__all__:
        value = getattr(kae_utils, name)
        assert value is not None, name
    assert kae_utils.zoo is importlib.import_module("kae_utils.zoo")
    assert kae_utils.Trainer is importlib.import_module("kae_utils.training.trainer").Trainer
    with pytest.raises(AttributeError):
        kae_utils.not_a_name  # noqa: B018


def test_the_diagram_lists_every_layer_and_is_the_same_in_the_docs():
    import re

    import kae_utils

    diagram = re.search(r"::\n\n(.*?)\n\n", kae_utils.__doc__ or "", re.S).group(1)
    rows = [line.split()[0] for line in diagram.splitlines() if line.strip() and not line.startswith(" " * 8)]
    drawn = {name for line in diagram.splitlines() if line.strip() and not line.startswith(" " * 8)
             for name in line[:25].replace("|", " ").split()}
    assert {name for names in LAYERS for name in names} <= drawn
    assert rows[0] == TOOLING and rows[-1] == "core"
    text = "\n".join(line[4:] for line in diagram.splitlines())
    assert text in (ROOT / "docs" / "architecture.md").read_text()
