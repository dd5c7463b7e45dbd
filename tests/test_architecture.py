"""The layering of docs/architecture.md, checked by reading every module's imports with ``ast``
(function-local imports included: a cycle through a lazy import is still a cycle)."""
import ast
from pathlib import Path

import multidiff

PACKAGE = Path(multidiff.__file__).resolve().parent

# folder -> the folders of multidiff it may import (besides itself); see docs/architecture.md
ALLOWED = {
    "core": set(),
    "nets": {"core"},
    "audio": {"core"},
    "datasets": {"core"},
    "metrics": {"core", "audio"},
    "tasks": {"core", "nets", "audio", "datasets", "metrics"},
    "cli": {"core", "nets", "audio", "datasets", "metrics", "tasks"},
    "demo": {"core", "datasets", "metrics", "tasks"},
    "__main__": {"cli"},
    "": {"core"},  # multidiff/__init__.py
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module of the package."""
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = ["multidiff", *f.relative_to(PACKAGE).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def _imports(name: str, path: Path, is_pkg: bool, known) -> list[tuple[str, int]]:
    """(imported module, line) for every import of multidiff (or benchmarks) in the file; ``from X
    import y`` counts as importing X.y when that is a module."""
    out = []
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            out += [(s, node.lineno) for s in subs] or [(base, node.lineno)]
    return [(m, line) for m, line in out if m.split(".")[0] in ("multidiff", "benchmarks")]


def _graph():
    known = _modules()
    return known, {name: _imports(name, path, is_pkg, known) for name, (path, is_pkg) in known.items()}


def _folder(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _task(name: str):
    """The task package a module belongs to (multidiff.tasks.<noun>), or None."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[1] == "tasks" and (PACKAGE / "tasks" / parts[2]).is_dir():
        return ".".join(parts[:3])
    return None


def layer_violations(known, graph) -> list[str]:
    bad = []
    for name, edges in graph.items():
        path = known[name][0].relative_to(PACKAGE.parent)
        mine = _folder(name)
        for target, line in edges:
            if target.split(".")[0] == "benchmarks":
                bad.append(f"{path}:{line} imports {target}: the library never imports benchmarks/")
                continue
            theirs = _folder(target)
            if theirs != mine and theirs not in ALLOWED.get(mine, set()):
                bad.append(f"{path}:{line} imports {target}: {mine or 'multidiff/__init__'} may import only "
                           f"{', '.join(sorted(ALLOWED.get(mine, ()))) or 'itself'}")
            elif _task(name) and _task(target) and _task(name) != _task(target):
                bad.append(f"{path}:{line} imports {target}: a task package imports no other task")
    for task in sorted({_task(n) for n in graph} - {None}):
        # inside a task package: model <- api <- evaluate, never the other way round
        for start, forbidden in (("model", ("api", "evaluate")), ("api", ("evaluate",))):
            for name, target, line in _reached(graph, f"{task}.{start}", task):
                if target.rsplit(".", 1)[-1] in forbidden:
                    bad.append(f"{known[name][0].relative_to(PACKAGE.parent)}:{line} imports {target}, reached from "
                               f"{start}.py: {start}.py must not depend on {target.rsplit('.', 1)[-1]}.py")
    return bad


# extras that sit above api.py by design: dask.py beside evaluate.py (docs/architecture.md)
ABOVE_API = {"multidiff.tasks.imputation.dask"}


def extra_violations(known, graph) -> list[str]:
    """Imports by which a task's extra (a module other than ``__init__``, ``api`` and ``evaluate``) reaches
    the task's ``api.py`` or ``evaluate.py``: extras import each other and ``model.py`` only."""
    bad = []
    for start in sorted(graph):
        task = _task(start)
        if task is None or start == task or start in ABOVE_API or start.rsplit(".", 1)[-1] in ("api", "evaluate"):
            continue
        for name, target, line in _reached(graph, start, task):
            if target.rsplit(".", 1)[-1] in ("api", "evaluate"):
                bad.append(f"{known[name][0].relative_to(PACKAGE.parent)}:{line} imports {target}, reached from the "
                           f"extra {start}: extras import each other and model.py, never api.py or evaluate.py")
    return bad


def _reached(graph, start: str, task: str):
    """(module, import, line) for every import inside ``task`` reached from ``start``."""
    seen, todo, out = {start}, [start], []
    while todo:
        name = todo.pop()
        for target, line in graph.get(name, ()):
            if _task(target) == task and target != task:
                out.append((name, target, line))
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    return out


def import_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself), Tarjan."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or any(t == v for t, _ in graph[v]):
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_folder_imports_only_the_layers_below_it():
    known, graph = _graph()
    assert not layer_violations(known, graph), "\n".join(layer_violations(known, graph))


def test_task_extras_stay_below_api():
    known, graph = _graph()
    assert not extra_violations(known, graph), "\n".join(extra_violations(known, graph))


def test_no_import_cycle_between_modules():
    known, graph = _graph()
    cycles = import_cycles(graph)
    report = []
    for comp in cycles:
        report.append(" <-> ".join(comp) + ":")
        report += [f"  {known[a][0].relative_to(PACKAGE.parent)}:{line} imports {b}"
                   for a in comp for b, line in graph[a] if b in comp]
    assert not cycles, "import cycles:\n" + "\n".join(report)


def test_the_checks_see_a_cycle_and_a_layer_breach():
    # the two checks above on a graph with a planted cycle and a planted breach
    known, graph = _graph()
    graph = {k: list(v) for k, v in graph.items()}
    graph["multidiff.tasks.purify.model"].append(("multidiff.tasks.purify.evaluate", 1))
    graph["multidiff.nets.csdi"].append(("multidiff.tasks.imputation", 1))
    assert any({"multidiff.tasks.purify.evaluate", "multidiff.tasks.purify.model"} <= set(c)
               for c in import_cycles(graph))
    bad = layer_violations(known, graph)
    assert any("nets/csdi.py:1 imports multidiff.tasks.imputation:" in b for b in bad), bad
    assert any("purify/model.py:1 imports multidiff.tasks.purify.evaluate" in b for b in bad), bad
    graph["multidiff.tasks.points.latent_completion"].append(("multidiff.tasks.points.api", 1))  # as before issue 28
    bad = extra_violations(known, graph)
    assert any("points/latent_completion.py:1 imports multidiff.tasks.points.api" in b for b in bad), bad


def test_every_task_package_has_the_same_shape():
    for noun in ("imputation", "points", "tts", "purify"):
        files = {p.name for p in (PACKAGE / "tasks" / noun).glob("*.py")}
        assert {"__init__.py", "model.py", "api.py", "evaluate.py"} <= files, (noun, files)
