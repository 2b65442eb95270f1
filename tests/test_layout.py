"""The layout is the architecture: packages in declared layers, imports only downward, no cycles.

Every module of ``sansa_probe`` is parsed with :mod:`ast` (nothing is imported). A module belongs
to a unit: its top-level package (``sansa_probe/evaluation/metrics.py`` -> ``evaluation``), or
``commands`` for the command modules at the top of the package and every ``__main__.py``. The
units sit in :data:`LAYERS`, top first; an import may go to its own layer or any layer below,
never up, and the units' graph has no cycle (nor has the modules' graph). An import sits at its
module's top unless it is in :data:`DEFERRED`, a heavy optional dependency imported late on
purpose, with a ``# deferred:`` comment saying why beside it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sansa_probe"
ROOT = ""  # the unit of sansa_probe/__init__.py: __version__ and the lazily re-exported public names

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    # what users run: the commands, their grammar and registry; the experiment scripts' body
    # (paper/ runs the commands with the paper's options) and what the notebooks call
    ("entry points", frozenset({"commands", "paper", "notebook_support"})),
    ("workflows", frozenset({"pipelines", "evaluation", "training", "annotation", "miniature"})),
    ("measurement", frozenset({"features", "probes", "inference", "reporting"})),
    ("model and data", frozenset({"model", "data", "prompts"})),
    ("files and helpers", frozenset({"io", "utils", ROOT})),
)

# (module, imported module) -> why it is imported inside a function; each such line says "# deferred:"
DEFERRED: dict[tuple[str, str], str] = {
    ("sansa_probe.probes.projection", "umap"): "umap-learn imports numba and compiles for seconds; only method='umap' needs it",
    ("sansa_probe.probes.plots", "plotly.express"): "plotly.express loads pandas plotting and templates; only the HTML figures need it",
    ("sansa_probe.training.trainer", "torch.utils.tensorboard"): "the optional [tensorboard] extra; only --tensorboard needs it",
    ("sansa_probe.features.sources.timm_source", "timm"): "the optional [encoders] extra; only timm:<model> encoders need it",
    ("sansa_probe.features.sources.timm_source", "huggingface_hub"): "timm's own dependency (the [encoders] extra): where timm weights are found",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return ROOT
    if parts[-1] == "__main__" or (len(parts) == 1 and not (PACKAGE / parts[0]).is_dir()):
        return "commands"
    return parts[0]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _exists(module: str) -> bool:
    return module in MODULES


def imports(path: Path) -> Iterator[tuple[ast.stmt, str, bool]]:
    """``(node, imported module, inside a function)`` for every import of ``path``'s module;
    ``from a import b`` is ``a.b`` when that is a module of the package."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, id(node) in in_function
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                target = f"{source}.{alias.name}"
                yield node, target if _exists(target) else source, id(node) in in_function


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """The modules' import graph (package modules only) and every in-function import not in DEFERRED."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    inside: list[str] = []
    for module, path in MODULES.items():
        for node, target, in_function in imports(path):
            line = f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {ast.unparse(node)}"
            if in_function and (module, target) not in DEFERRED and line not in inside:
                inside.append(line)
            if target == "sansa_probe" or target.startswith("sansa_probe."):
                while target not in MODULES:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target != module:
                    graph[module].add(target)
    return graph, inside


def layer_of(name: str) -> int:
    found = [i for i, (_, units) in enumerate(LAYERS) if name in units]
    assert len(found) == 1, f"unit {name!r} is in {len(found)} layers; declare it in exactly one of LAYERS"
    return found[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def unit_graph(graph: dict[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: [module -> module, ...]}}`` across units."""
    units: dict[str, dict[str, list[str]]] = {}
    for module, targets in graph.items():
        for target in targets:
            if unit(module) != unit(target):
                units.setdefault(unit(module), {}).setdefault(unit(target), []).append(f"{module} -> {target}")
    return units


def test_every_unit_is_declared_in_one_layer():
    for module in MODULES:
        layer_of(unit(module))


def test_no_import_goes_up_a_layer():
    graph, _ = _graph()
    upward = [f"{edge}  ({unit(edge.split(' -> ')[0])} imports {target_unit})"
              for source_unit, targets in unit_graph(graph).items() for target_unit, edges in targets.items()
              if layer_of(target_unit) < layer_of(source_unit) for edge in edges]
    assert upward == [], "imports that go up a layer:\n" + "\n".join(sorted(upward))


def test_no_cycle_between_packages_or_modules():
    graph, _ = _graph()
    units = {u: set(targets) for u, targets in unit_graph(graph).items()}
    assert cycles(units) == [], "packages that import each other"
    assert cycles(graph) == [], "modules that import each other (also through imports inside functions)"


def test_imports_sit_at_the_top_of_their_module():
    _, inside = _graph()
    assert inside == [], "imports inside functions (move them up, or defer a heavy optional one in DEFERRED):\n" + "\n".join(inside)


def test_every_deferred_import_says_why_and_is_still_deferred():
    for (module, target), why in DEFERRED.items():
        assert why and module in MODULES, f"DEFERRED names {module}, which is not a module of the package"
        path = MODULES[module]
        lines = path.read_text().splitlines()
        found = [node for node, imported, inside in imports(path) if imported == target and inside]
        assert found, f"{module} no longer imports {target} inside a function: remove it from DEFERRED"
        for node in found:
            said = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
            assert "# deferred:" in said, f"{path.name}:{node.lineno}: say why {target} is deferred in a '# deferred:' comment"


def test_the_root_package_imports_nothing_of_its_own():
    """``sansa_probe/__init__.py`` sits in the lowest layer: it re-exports lazily and imports no module of the package."""
    assert not [t for _, t, _ in imports(PACKAGE / "__init__.py") if t.startswith("sansa_probe")]


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert cycles(graph) == expected
