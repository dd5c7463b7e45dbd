"""The guides' Python examples run, so the docs cannot drift from the code.

Every ```python block of README.md and docs/*.md runs, in order, in one namespace per page and in a
temporary working folder, unless the line above its fence is ``<!-- no-run: why -->`` (a block that
trains for minutes, or needs your data or checkpoint). A page's names that stand for the reader's own
data (``df``, your DataFrame) come from ``SETUP`` below. A no-run block is still checked: it must
compile, its imports of multidiff must run, and every call of a multidiff callable it can name (imported, or an
object built by a multidiff class, its ``fit`` or ``load``) must accept the keywords and the number of
positional arguments given, so a renamed keyword fails here too.
"""
from __future__ import annotations

import ast
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DATA = Path(os.environ.get("MULTIDIFF_DATA", ROOT.parent / "shared" / "data"))
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NO_RUN = re.compile(r"<!--\s*no-run:\s*\S.*?-->\s*$")

# the reader's own objects a page's examples take as given, built small
_FRAME = """
import numpy as np, pandas as pd
_rng = np.random.default_rng(0)
_t = np.arange(240)
df = pd.DataFrame(np.sin(2 * np.pi * _t / 24)[:, None] + _rng.normal(0, 0.1, (240, 3)),
                  index=pd.date_range("2024-01-01", periods=240, freq="h"), columns=["a", "b", "OT"])
df = df.mask(_rng.random(df.shape) < 0.1)   # 10 % missing
"""
SETUP = {"imputation.md": _FRAME, "forecasting.md": _FRAME}


@dataclass
class Block:
    page: str
    line: int
    code: str
    run: bool


def blocks(text: str, page: str = "page.md") -> list[Block]:
    """The page's ```python blocks, each marked to run unless ``<!-- no-run: why -->`` precedes it."""
    out = []
    for m in _FENCE.finditer(text):
        before = [line for line in text[: m.start()].splitlines() if line.strip()]
        run = not (before and _NO_RUN.search(before[-1]))
        out.append(Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), run))
    return out


@dataclass
class _Instance:
    cls: type


def _resolve(node, ns: dict, types: dict):
    """The object an expression names (a module, class or function, or an instance of a class), or None."""
    if isinstance(node, ast.Name):
        return ns.get(node.id, types.get(node.id))
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, ns, types)
        owner = base.cls if isinstance(base, _Instance) else base
        try:
            return None if owner is None else getattr(owner, node.attr)
        except Exception:  # noqa: BLE001 - an attribute set in __init__, or a lazy one that fails to load
            return None
    if isinstance(node, ast.Call):
        f = _resolve(node.func, ns, types)
        if inspect.isclass(f):
            return _Instance(f)
        if callable(f):  # fit -> self, load -> cls: the annotation names the class
            ann = inspect.signature(f).return_annotation if _signature(f) else None
            bound = getattr(f, "__self__", None)  # a classmethod's class, or a method's instance
            if bound is None or inspect.ismodule(bound):
                owner = _owner(f, node.func, ns, types)
            else:
                owner = bound if inspect.isclass(bound) else type(bound)
            if inspect.isclass(ann):
                return _Instance(ann)
            if isinstance(ann, str) and owner is not None and ann.strip("'\"") in (owner.__name__, "Self"):
                return _Instance(owner)
    return None


def _owner(f, func_node, ns, types):
    if isinstance(func_node, ast.Attribute):
        base = _resolve(func_node.value, ns, types)
        return base.cls if isinstance(base, _Instance) else base if inspect.isclass(base) else None
    return None


def _signature(f):
    try:
        return inspect.signature(f)
    except (TypeError, ValueError):
        return None


def call_errors(code: str, ns: dict) -> list[str]:
    """Calls in ``code`` of multidiff callables whose signature refuses the arguments given; runs the
    code's imports into ``ns`` first."""
    tree = ast.parse(code)
    for node in ast.walk(tree):  # multidiff's imports only: the others take seconds and cannot drift with it
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [getattr(node, "module", None)]
        if isinstance(node, (ast.Import, ast.ImportFrom)) and all((n or "").startswith("multidiff") for n in names):
            exec(compile(ast.Module([node], []), "<imports>", "exec"), ns)
    types, errors = {}, []
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.Call))),
                       key=lambda n: (n.lineno, isinstance(n, ast.Assign))):
        if isinstance(node, ast.Assign):
            value = _resolve(node.value, ns, types)
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(value, _Instance):
                    types[target.id] = value
            continue
        f = _resolve(node.func, ns, types)
        target = f.cls.__call__ if isinstance(f, _Instance) else f
        sig = _signature(target) if callable(target) else None
        if sig is None or not getattr(target, "__module__", "").startswith("multidiff"):
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            continue
        args = [None] * len(node.args)
        if isinstance(f, _Instance) or (isinstance(node.func, ast.Attribute)
                                        and isinstance(_resolve(node.func.value, ns, types), _Instance)
                                        and inspect.isfunction(target)):
            args.insert(0, None)  # self
        try:
            sig.bind_partial(*args, **{k.arg: None for k in node.keywords})
        except TypeError as e:
            errors.append(f"line {node.lineno}: {ast.unparse(node.func)}(...): {e}")
    return errors


def run_page(name: str, text: str, tmp_path: Path, monkeypatch) -> None:
    """Run the page's blocks as the module docstring says; fail naming the block's line."""
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__docs__"}
    if name in SETUP:
        exec(SETUP[name], ns)
    for b in blocks(text, name):
        where = f"{name}:{b.line}"
        try:
            code = compile(b.code, where, "exec")
        except SyntaxError as e:
            pytest.fail(f"{where}: the block does not compile: {e}")
        if b.run:
            if "shared/data" in b.code and not DATA.is_dir():
                pytest.skip(f"{where} reads {DATA}, which is absent")
            try:
                exec(code, ns)
            except Exception as e:  # noqa: BLE001 - the block's error, with where it is
                raise AssertionError(f"{where}: the example fails: {type(e).__name__}: {e}") from e
        else:
            errors = call_errors(b.code, ns)
            assert not errors, f"{where} (no-run):\n" + "\n".join(errors)


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in p.read_text()],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_guide_examples_run(page, tmp_path, monkeypatch):
    run_page(page.name, page.read_text(), tmp_path, monkeypatch)


def test_every_no_run_block_says_why():
    for page in PAGES:
        for line in page.read_text().splitlines():
            assert "no-run" not in line or _NO_RUN.search(line), f"{page.name}: {line!r}: write <!-- no-run: why -->"


PAGE = '''
```python
from multidiff.core.schedules import DiscreteSchedule
s = DiscreteSchedule(num_train_steps=10)
```
<!-- no-run: an example of a drifted keyword -->
```python
from multidiff.core.schedules import DiscreteSchedule
s = DiscreteSchedule(num_steps=10)
s.alpha_bar_of(1, 2)
```
'''


def test_the_checks_catch_a_failing_example_and_a_renamed_keyword(tmp_path, monkeypatch):
    found = blocks(PAGE)
    assert [b.run for b in found] == [True, False] and found[1].line == 7
    ns = {}
    errors = call_errors(found[1].code, ns)
    assert len(errors) == 2 and "num_steps" in errors[0] and "line 3: s.alpha_bar_of" in errors[1], errors
    run_page("ok.md", PAGE.split("<!--")[0], tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match=r"bad\.md:2: the example fails: TypeError"):
        run_page("bad.md", PAGE.split("<!--")[0].replace("num_train_steps", "num_steps"), tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match=r"bad\.md:7 \(no-run\)"):
        run_page("bad.md", PAGE, tmp_path, monkeypatch)


def test_the_reference_build_flags_a_missing_docstring_and_a_role_that_names_nothing(tmp_path, caplog):
    # docs/griffe_docstrings.py, the griffe extension of mkdocs.yml, on a planted package: its warnings
    # fail `make docs` (mkdocs build --strict)
    griffe = pytest.importorskip("griffe")
    import importlib.util
    spec = importlib.util.spec_from_file_location("griffe_docstrings", ROOT / "docs" / "griffe_docstrings.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text('"""Toy."""\n')
    (tmp_path / "toy" / "m.py").write_text(
        '"""A module; see :func:`documented`."""\n\n\ndef documented():\n    """Calls :func:`nowhere`."""\n\n\n'
        'def bare():\n    pass\n\n\ndef _private():\n    pass\n')
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "toy.md").write_text("# Toy\n\n::: toy.m\n")
    with caplog.at_level("WARNING"):
        mod = griffe.load("toy", search_paths=[tmp_path], extensions=griffe.load_extensions(
            ext.PublicDocstrings(reference=str(tmp_path / "ref"))))
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "toy.m.bare: public object without a docstring" in warned, warned
    assert "toy.m.documented: :func:`nowhere` names nothing" in warned, warned
    assert "_private" not in warned and "toy.m:" not in warned
    assert mod["m"].docstring.value == "A module; see [`documented`][toy.m.documented]."


def _griffe_extension():
    import importlib.util
    spec = importlib.util.spec_from_file_location("griffe_docstrings", ROOT / "docs" / "griffe_docstrings.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    return ext


def test_the_reference_documents_every_public_module_of_the_core_and_the_tasks():
    # a module left out of docs/reference/*.md would also escape the docstring check of `make docs`
    package = ROOT / "multidiff"
    public = {".".join(f.relative_to(ROOT).with_suffix("").parts)
              for f in [*package.glob("core/*.py"), *package.glob("tasks/*/*.py")] if not f.name.startswith("_")}
    missing = sorted(public - set(_griffe_extension().documented_modules()))
    assert not missing, f"add a '::: module' line to a page of docs/reference/ for: {missing}"


def test_make_docs_builds_strictly_and_not_quietly():
    # mkdocs 1.6 drops warnings under --quiet before --strict counts them: the build would pass with
    # a public object without a docstring
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has no docs target"
    words = recipe.group(1).split()
    assert "--strict" in words and "--quiet" not in words and "-q" not in words, recipe.group(1)
