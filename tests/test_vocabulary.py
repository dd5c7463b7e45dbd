"""One vocabulary (issues 10 and 28, docs/architecture.md "Vocabulary"): ``sampler``,
``sampler_steps``, ``num_train_steps``, ``alpha_bar_of``, ``attack_steps``, ``t_start``,
``temperature``, ``epochs`` and ``num_batches_per_epoch``, in the API, the command line and the docs.

The guards scan what a user sees: the signatures and attributes of every public callable of the
package, the attributes the source assigns, every option of ``multidiff``'s command line, and
the docs and benchmark scripts. No exceptions: a word that means something else gets its own name
(PGD iterations are ``attack_steps``, the optimizer steps of a run ``optimizer_steps``).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import multidiff

ROOT = Path(__file__).resolve().parents[1]

# the vocabulary's old names: sampler steps, training-schedule steps, the function t -> alpha-bar
# and (issue 28) PGD iterations (steps -> attack_steps), DiffPure's t* (t_star -> t_start), the start
# noise (noise_scale -> temperature), GluonTS' batches per epoch and TrainConfig's epochs in forecasting
OLD_NAMES = {"n_steps", "sampling_steps", "steps", "eval_steps", "sample_steps", "num_steps", "diff_steps",
             "n_train_steps", "alpha_bar_fn", "alpha_bar_func", "alpha_bar", "abar", "abar_of", "ab_of", "ab_fn",
             "method",  # method: the sampler's name
             "t_star", "noise_scale", "batches_per_epoch", "max_epochs"}
OLD_FLAGS = {"--steps", "--n-steps", "--eval-steps", "--sample-steps", "--fast-steps", "--sampling-steps",
             "--num-steps", "--diff-steps", "--n-train-steps", "--train-steps", "--t-star", "--noise-scale",
             "--batches-per-epoch", "--max-epochs"}


def _modules():
    for info in pkgutil.walk_packages(multidiff.__path__, "multidiff."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def _public(module):
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = vars(module).get(name)
        if obj is not None and getattr(obj, "__module__", "").startswith("multidiff") and callable(obj):
            yield f"{obj.__module__}.{obj.__qualname__}", obj


def _parameters(fn) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def _violations_in(qualname: str, obj) -> list[str]:
    found = []
    if inspect.isclass(obj):
        for cls in obj.__mro__:
            if not cls.__module__.startswith("multidiff"):
                continue
            for name, attr in vars(cls).items():
                where = f"{cls.__module__}.{cls.__qualname__}"
                if name in OLD_NAMES:
                    found.append(f"{where}:{name}")
                if name.startswith("_") and name != "__init__":
                    continue
                fn = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
                if callable(fn):
                    found += [f"{where}:{p}" for p in _parameters(fn) if p in OLD_NAMES]
    else:
        found += [f"{qualname}:{p}" for p in _parameters(obj) if p in OLD_NAMES]
    return found


def test_public_signatures_and_attributes_use_the_vocabulary():
    found = set()
    for module in _modules():
        for qualname, obj in _public(module):
            found |= set(_violations_in(qualname, obj))
    assert sorted(found) == []


def test_the_source_assigns_no_attribute_by_an_old_name():
    """Instance attributes (``self.num_steps = ...``) are not in any signature: read the source."""
    found = []
    for path in sorted((ROOT / "multidiff").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(t, ast.Attribute) and t.attr in OLD_NAMES:
                        found.append((path.relative_to(ROOT).as_posix(), t.attr, node.lineno))
    assert found == []


def _parsers(parser: argparse.ArgumentParser, prog: str = "multidiff"):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_command_line_options_use_the_vocabulary():
    from multidiff.cli import build_parser

    found = [f"{prog} {flag}" for prog, parser in _parsers(build_parser())
             for action in parser._actions for flag in set(action.option_strings) & OLD_FLAGS]
    assert found == []


# lines in the docs that may name an old spelling: they say it is old
_OLD_TEXT = re.compile(r"\b(n_steps|sampling_steps|num_steps|diff_steps|n_train_steps|alpha_bar_fn|t_star|noise_scale"
                       r"|batches_per_epoch)\b|\bsteps=|(?<![\w-])--(steps|n-steps|eval-steps|sample-steps|fast-steps"
                       r"|t-star|noise-scale|batches-per-epoch|max-epochs)\b|\bpoints\.(save|load)\(")
_SAYS_OLD = re.compile(r"formerly|old name|old spelling|\bwas\b")


def _doc_lines():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").rglob("*.ipynb")),
             *sorted((ROOT / "benchmarks").glob("*.py"))]
    for path in files:
        in_table = False
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("## "):
                in_table = line.strip() == "## Vocabulary"  # the table of old names, by design
            if not in_table:
                yield f"{path.relative_to(ROOT)}:{i}", line


def test_docs_and_benchmark_scripts_use_the_vocabulary():
    found = [f"{where}: {line.strip()[:100]}" for where, line in _doc_lines()
             if _OLD_TEXT.search(line) and not _SAYS_OLD.search(line)]
    assert found == []


def test_the_vocabulary_table_lists_each_name():
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text[text.index("## Vocabulary"):]
    table = table[: table.index("\n## ", 1)]
    for name in ("`sampler`", "`sampler_steps`", "`num_train_steps`", "`alpha_bar_of`", "`--sampler-steps`",
                 "`attack_steps`", "`--attack-steps`", "`t_start`", "`--t-start`", "`temperature`", "`epochs`",
                 "`num_batches_per_epoch`", "`optimizer_steps`",
                 "`n_steps`", "`sampling_steps`", "`diff_steps`", "`num_steps`", "`--steps`", "`save_clouds`",
                 "`t_star`", "`noise_scale`", "`batches_per_epoch`", "`max_epochs`"):
        assert name in table, name
