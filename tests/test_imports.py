"""The import graphs of cmcore and cmcnn have no cycles (every import counts: module
level, in functions, and under ``TYPE_CHECKING``), between modules and between the
stages of cmcnn (``train`` → ``evaluate`` → ``interpret``/``workflows``, ``serve`` beside)."""
from __future__ import annotations

import ast
from pathlib import Path

import cmcore

SRC = Path(cmcore.__file__).resolve().parents[1]
PACKAGES = ("cmcore", "cmcnn")
#: The stages of cmcnn, each a subpackage.
STAGES = ("cmcnn.train", "cmcnn.evaluate", "cmcnn.serve", "cmcnn.interpret", "cmcnn.workflows",
          "cmcnn.commands", "cmcnn.benchmarks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the cmc modules it imports.  ``from P import m`` with ``P.m`` a module
    counts as importing ``P.m`` (not the package ``P``, already imported as its parent)."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (SRC / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def stage_of(module: str) -> str:
    """The cmcnn stage a module belongs to (the module itself outside the stages)."""
    return next((s for s in STAGES if module == s or module.startswith(s + ".")), module)


def stage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph seen between stages (imports of a stage's own ``__init__`` excluded)."""
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        out.setdefault(stage_of(mod), set()).update(stage_of(d) for d in deps if stage_of(d) != stage_of(mod))
    for deps in list(out.values()):
        for d in deps:
            out.setdefault(d, set())
    return out


def test_cmc_module_graph_is_acyclic():
    graph = import_graph()
    assert any(m.startswith("cmcnn.serve.") for m in graph) and "cmcore.projection" in graph
    assert cycles(graph) == []


def test_cmcnn_stages_are_acyclic_and_cmcore_never_imports_cmcnn():
    graph = import_graph()
    assert cycles(stage_graph(graph)) == []
    assert not [(m, d) for m, deps in graph.items() if m.startswith("cmcore") for d in deps if d.startswith("cmcnn")]
    stages = stage_graph(graph)
    assert "cmcnn.train" in stages["cmcnn.evaluate"] and "cmcnn.serve" in stages["cmcnn.interpret"]


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "cmcore.validation" in graph["cmcore.cellindex"]           # the graph is read, edges and all
    assert "cmcore.cellindex" in graph["cmcore.projection"]            # TYPE_CHECKING imports count
    assert "cmcnn.serve.predictor" in graph["cmcnn"]                   # imports inside functions count
