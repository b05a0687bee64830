"""The layers of salbench: no import runs back up a layer, and no module imports itself in a circle.

Every ``import`` and ``from ... import`` of every module under ``salbench/`` counts,
module-level or inside a function (a deferred import is a dependency all the same).
Layers, bottom to top; a module may import its own layer and the layers below:

==  ===============================================  =============================================
 0  ``salbench``, ``_numba``, ``io``, ``stats``       foundations (version, Numba set-up, files, CIs)
 1  ``metrics``                                       the metric functions and their registry
 2  ``data``, ``predictions``                         datasets; user's maps (folders, array files)
 3  ``protocols``                                     how a benchmark computes its metrics
 4  ``models``                                        registry, baselines, networks
 5  ``training``                                      recipes and the training loop
 6  ``results``                                       results entries: schema, writer, reading
 7  ``scoring``, ``evaluate``                         the streaming loop; ``salbench eval``
 8  ``check``                                         recompute entries (rescoring through layer 7)
 9  ``leaderboard``, ``plotting``                     tables (verified by ``check``), figures
10  ``cli``, ``__main__``                             the command line
==  ===============================================  =============================================
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "salbench"

LAYERS = (
    ("salbench", "salbench._numba", "salbench.io", "salbench.stats"),
    ("salbench.metrics",),
    ("salbench.data", "salbench.predictions"),
    ("salbench.protocols",),
    ("salbench.models",),
    ("salbench.training",),
    ("salbench.results",),
    ("salbench.scoring", "salbench.evaluate"),
    ("salbench.check",),
    ("salbench.leaderboard", "salbench.plotting"),
    ("salbench.cli", "salbench.__main__"),
)


def module_files(package: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package (``__init__`` names the package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def add(target: str) -> None:
        # the longest prefix that is a module: `salbench.io.atomic.json_bytes` -> `salbench.io.atomic`
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                if candidate != name:
                    found.add(candidate)
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            for alias in node.names:
                add(f"{module}.{alias.name}")  # `from pkg import submodule` imports the submodule
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``."""
    files = module_files(package)
    modules = set(files)
    return {name: imported_modules(name, path, modules) for name, path in files.items()}


def layer_of(module: str, layers=LAYERS) -> int:
    """Index of the layer holding ``module`` (the longest matching package prefix)."""
    best, rank = -1, None
    for i, members in enumerate(layers):
        for member in members:
            if (module == member or module.startswith(member + ".")) and len(member) > best:
                best, rank = len(member), i
    if rank is None:
        raise KeyError(f"{module} is in no layer: add its package to LAYERS in tests/test_layers.py")
    return rank


def back_edges(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """``a -> b`` for every import of a module ``b`` in a higher layer than ``a``'s."""
    return sorted(f"{a} (layer {layer_of(a, layers)}) -> {b} (layer {layer_of(b, layers)})"
                  for a, targets in graph.items() for b in targets if layer_of(b, layers) > layer_of(a, layers))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


# -- the checks ------------------------------------------------------------------------------------
def test_every_module_is_in_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_import_runs_back_up_a_layer():
    bad = back_edges(import_graph())
    assert not bad, "imports that run back up a layer:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_evaluation_imports_nothing_from_the_leaderboard():
    graph = import_graph()
    evaluation = {m: t for m, t in graph.items() if m == "salbench.evaluate" or m.startswith("salbench.evaluate.")}
    assert evaluation
    assert not [(m, t) for m, ts in evaluation.items() for t in ts
                if t.startswith(("salbench.leaderboard", "salbench.check", "salbench.cli"))]


# -- the checks can fail ---------------------------------------------------------------------------
@pytest.fixture()
def toy(tmp_path):
    """A package with a back-edge (low -> high, deferred) and a cycle (a <-> b through a relative import)."""
    pkg = tmp_path / "salbench"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("from salbench.low import b\n")
    (pkg / "low" / "b.py").write_text("def f():\n    from . import a\n    import salbench.high.top\n")
    (pkg / "high").mkdir()
    (pkg / "high" / "__init__.py").write_text("")
    (pkg / "high" / "top.py").write_text("from salbench.low.a import thing\n")
    return pkg


def test_toy_package_back_edge_and_cycle_are_found(toy):
    layers = (("salbench", "salbench.low"), ("salbench.high",))
    graph = import_graph(toy)
    assert graph["salbench.high.top"] == {"salbench.low.a"}
    assert graph["salbench.low.b"] == {"salbench.low.a", "salbench.high.top"}
    assert back_edges(graph, layers) == ["salbench.low.b (layer 0) -> salbench.high.top (layer 1)"]
    assert cycles(graph) == [["salbench.high.top", "salbench.low.a", "salbench.low.b"]]


def test_unknown_package_is_named(toy):
    with pytest.raises(KeyError, match="salbench.high.top is in no layer"):
        layer_of("salbench.high.top", (("salbench.low",),))
