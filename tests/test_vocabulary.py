"""One vocabulary (issue 10, docs/architecture.md "Vocabulary"): ``sampler``, ``sampler_steps``,
``num_train_steps``, ``alpha_bar_of``, in the API, the command line and the docs.

The guards scan what a user sees: the signatures and attributes of every public callable of the
package, the attributes the source assigns, every option of ``multidiff``'s command line, and
the docs and benchmark scripts. An old name may appear only in a deprecation shim
(:mod:`multidiff.core.deprecation`, :func:`multidiff.cli.common.add_option`) or where it means
something else (``ALLOWED``, each with the reason). Every deprecated path is then checked: the old
name works and warns, the new one works silently, both together raise.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pickle
import pkgutil
import re
import warnings
from pathlib import Path

import pytest
import torch

import multidiff
from multidiff.core.deprecation import renamed_attribute

ROOT = Path(__file__).resolve().parents[1]

# the vocabulary's old names: sampler steps, training-schedule steps, the function t -> alpha-bar
OLD_NAMES = {"n_steps", "sampling_steps", "steps", "eval_steps", "sample_steps", "num_steps", "diff_steps",
             "n_train_steps", "alpha_bar_fn", "alpha_bar_func", "alpha_bar", "abar", "abar_of", "ab_of", "ab_fn",
             "method"}  # method: the sampler's name
OLD_FLAGS = {"--steps", "--n-steps", "--eval-steps", "--sample-steps", "--fast-steps", "--sampling-steps",
             "--num-steps", "--diff-steps", "--n-train-steps", "--train-steps"}
# the same word with another meaning: "qualified name:parameter or attribute" -> why it stays
ALLOWED = {
    "multidiff.tasks.purify.evaluate.evaluate:steps": "PGD iterations of the attacks, not diffusion steps",
    "multidiff.tasks.purify.attacks.make_attack:steps": "PGD iterations",
    "multidiff.tasks.purify.attacks.AttackConfig:steps": "PGD iterations",
    "multidiff.core.training.TrainResult:steps": "optimizer steps taken by a training run",
}
# the same for attributes the source assigns: (file, attribute) -> why it stays
ALLOWED_ASSIGNED = {("multidiff/core/training.py", "steps"): "TrainResult.steps, optimizer steps taken"}
# modules that exist only to forward an old import path (they warn when imported)
SHIMS = {"multidiff.tasks.purify_eval", "multidiff.tasks.purify_attacks", "multidiff.tasks.purify_data",
         "multidiff.tasks.forecast_plot", "multidiff.tasks.imputation.benchmark"}


def _modules():
    for info in pkgutil.walk_packages(multidiff.__path__, "multidiff."):
        if info.name in SHIMS or info.name.endswith("__main__"):
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
                if isinstance(attr, renamed_attribute):
                    continue  # the shim that keeps an old attribute name working
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
    assert sorted(found - set(ALLOWED)) == []
    assert set(ALLOWED) <= found  # each exception is still needed (else remove it)


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
    assert [f for f in found if f[:2] not in ALLOWED_ASSIGNED] == []
    assert set(ALLOWED_ASSIGNED) <= {f[:2] for f in found}


def _parsers(parser: argparse.ArgumentParser, prog: str = "multidiff"):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_command_line_options_use_the_vocabulary():
    from multidiff.cli import build_parser
    from multidiff.cli.common import _Spelling

    found, aliases = [], 0
    for prog, parser in _parsers(build_parser()):
        for action in parser._actions:
            for flag in set(action.option_strings) & OLD_FLAGS:
                if isinstance(action, _Spelling) and action.canonical != flag and action.help == argparse.SUPPRESS:
                    aliases += 1  # an old spelling kept for one release, hidden from --help
                else:
                    found.append(f"{prog} {flag}")
    assert found == [] and aliases >= 9


# lines in the docs that may name an old spelling: they say it is old
_OLD_TEXT = re.compile(r"\b(n_steps|sampling_steps|num_steps|diff_steps|n_train_steps|alpha_bar_fn)\b"
                       r"|(?<![\w-])--(steps|n-steps|eval-steps|sample-steps|fast-steps)\b|\bpoints\.(save|load)\(")
_SAYS_OLD = re.compile(r"deprecated|formerly|old name|old spelling|\bwas\b|old=\[")


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
                 "`n_steps`", "`sampling_steps`", "`diff_steps`", "`num_steps`", "`--steps`", "`save_clouds`"):
        assert name in table, name


# ---------------------------------------------------------------- deprecated keyword paths
def _imputer(**kw):
    from multidiff.tasks.imputation import Imputer
    return Imputer(**kw).get_params()["num_train_steps"]


def _set_params(**kw):
    from multidiff.tasks.imputation import Imputer
    return Imputer().set_params(**kw).num_train_steps


def _csdi_model(**kw):
    from multidiff.tasks.imputation import CSDIModel
    return len(CSDIModel(2, channels=8, layers=1, heads=1, **kw).alpha_bars)


def _point_model(cls):
    def make(**kw):
        from multidiff.tasks import points
        model = getattr(points, cls)(num_points=8, channels=8, layers=1, k=2, device="cpu", **kw)
        return model.num_train_steps, len(model.alpha_bars)
    return make


def _draw_t(**kw):
    from multidiff.core.losses import draw_discrete_t
    return tuple(draw_discrete_t(64, **kw, generator=torch.Generator().manual_seed(0)).unique().tolist())


def _vp_grid(**kw):
    from multidiff.core import samplers
    return len(samplers.vp_grid(**kw))


def _discrete_grid(**kw):
    from multidiff.core import samplers
    return len(samplers.discrete_grid(torch.linspace(0.99, 0.01, 20), **kw))


def _sample(**kw):
    from multidiff.core import samplers
    grid = samplers.discrete_grid(torch.linspace(0.99, 0.01, 20), 4)
    return tuple(samplers.sample(model=lambda x, t: torch.zeros_like(x), x=torch.ones(1, 3), grid=grid, **kw).shape)


def _tts_evaluate(**kw):
    from multidiff.tasks import tts
    with pytest.raises(ValueError, match="needs at least one held-out utterance"):  # reached the body
        tts.evaluate(None, [], **kw)
    return "called"


def _purifier(**kw):
    from multidiff.tasks.purify import Purifier
    return Purifier(lambda x, t: torch.zeros_like(x), t_star=0.1, **kw).sampler_steps


def _timegrad_estimator(**kw):
    from multidiff.tasks.forecasting import TimeGradEstimator
    est = TimeGradEstimator(freq="D", prediction_length=2, target_dim=2, device="cpu", **kw)
    return est.model_kwargs["num_train_steps"], est.model_kwargs["sampler_steps"]


def _vp(t):
    return torch.exp(-t)


# (what, call, old keywords, new keywords, the result both give)
KEYWORDS = [
    ("Imputer(num_steps=)", _imputer, {"num_steps": 7}, {"num_train_steps": 7}, 7),
    ("Imputer.set_params(num_steps=)", _set_params, {"num_steps": 7}, {"num_train_steps": 7}, 7),
    ("CSDIModel(num_steps=)", _csdi_model, {"num_steps": 7}, {"num_train_steps": 7}, 7),
    ("points.Generator(num_steps=)", _point_model("Generator"), {"num_steps": 7}, {"num_train_steps": 7}, (7, 7)),
    ("points.Completer(num_steps=)", _point_model("Completer"), {"num_steps": 7}, {"num_train_steps": 7}, (7, 7)),
    ("core.losses.draw_discrete_t(num_steps=)", _draw_t, {"num_steps": 3}, {"num_train_steps": 3}, (0, 1, 2)),
    ("core.samplers.vp_grid(n_steps=, alpha_bar_fn=)", _vp_grid, {"n_steps": 4, "alpha_bar_fn": _vp},
     {"sampler_steps": 4, "alpha_bar_of": _vp}, 4),
    ("core.samplers.discrete_grid(n_steps=)", _discrete_grid, {"n_steps": 5}, {"sampler_steps": 5}, 5),
    ("core.samplers.sample(method=)", _sample, {"method": "ddim"}, {"sampler": "ddim"}, (1, 3)),
    ("tts.evaluate(steps=)", _tts_evaluate, {"steps": (4,)}, {"sampler_steps": (4,)}, "called"),
    ("purify.Purifier(n_steps=)", _purifier, {"n_steps": 6}, {"sampler_steps": 6}, 6),
    ("TimeGradEstimator(diff_steps=, sampling_steps=)", _timegrad_estimator, {"diff_steps": 7, "sampling_steps": 3},
     {"num_train_steps": 7, "sampler_steps": 3}, (7, 3)),
]
# warnings a call gives whatever the names (vp_grid is deprecated as a whole)
_UNRELATED = re.compile(r"samplers.vp_grid is deprecated")


@pytest.mark.parametrize("what, call, old, new, result", KEYWORDS, ids=[k[0] for k in KEYWORDS])
def test_old_keywords_work_and_warn_new_ones_are_silent_both_raise(what, call, old, new, result):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert call(**old) == result
    said = [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)]
    for (name, value), new_name in zip(old.items(), new):
        assert any(f"keyword {name!r} is deprecated" in s and f"use {new_name!r}" in s for s in said), said
    assert all(w.filename == __file__ for w in record if "keyword" in str(w.message))  # points at the caller
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert call(**new) == result
    assert [str(w.message) for w in record if not _UNRELATED.search(str(w.message))] == []
    with pytest.raises(TypeError, match="got both .* \\(deprecated\\) and"):
        call(**old, **new)


# ---------------------------------------------------------------- renamed attributes and names
def _attr_cases():
    from multidiff.core.schedules import VPSDE
    from multidiff.tasks import points
    from multidiff.tasks.imputation import CSDIModel, Imputer
    from multidiff.tasks.tts import DiffusionConfig

    t = torch.tensor([0.25, 0.5])
    return [
        ("VPSDE.alpha_bar", lambda: VPSDE(), "alpha_bar", "alpha_bar_of", lambda f: f(t)),
        ("tts.DiffusionConfig.alpha_bar", lambda: DiffusionConfig(), "alpha_bar", "alpha_bar_of", lambda f: f(t)),
        ("Imputer.num_steps", lambda: Imputer(num_train_steps=7), "num_steps", "num_train_steps", None),
        ("CSDIModel.num_steps", lambda: CSDIModel(2, num_train_steps=7, channels=8, layers=1, heads=1),
         "num_steps", "num_train_steps", None),
        ("points.Generator.num_steps", lambda: points.Generator(num_points=8, channels=8, layers=1, k=2,
                                                                num_train_steps=7, device="cpu"),
         "num_steps", "num_train_steps", None),
    ]


@pytest.mark.parametrize("case", range(5), ids=lambda i: ["VPSDE", "DiffusionConfig", "Imputer", "CSDIModel",
                                                          "Generator"][i])
def test_old_attribute_names_read_the_new_ones_with_a_warning(case):
    what, make, old, new, apply = _attr_cases()[case]
    obj = make()
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated .* use .*{new}"):
        value = getattr(obj, old)
    expected = getattr(obj, new)
    if apply is None:
        assert value == expected
    else:
        torch.testing.assert_close(apply(value), apply(expected))


def test_imputer_keeps_scikit_learns_conventions_under_the_new_name():
    from sklearn.base import clone

    from multidiff.tasks.imputation import Imputer

    imp = Imputer(num_train_steps=7, window=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        params = imp.get_params()
        again = clone(imp)
    assert params["num_train_steps"] == 7 and "num_steps" not in params and again.num_train_steps == 7
    with pytest.warns(DeprecationWarning, match="Imputer.num_steps is deprecated"):
        imp.num_steps = 9  # the attribute is scikit-learn's parameter: setting the old name sets the new one
    assert imp.get_params()["num_train_steps"] == 9 and "num_steps" not in vars(imp)
    # an Imputer pickled before the rename
    state = imp.__getstate__()
    state["num_steps"] = state.pop("num_train_steps")
    old = pickle.loads(pickle.dumps(imp))
    old.__dict__.clear()
    old.__setstate__(state)
    assert old.get_params()["num_train_steps"] == 9


def test_cloud_files_functions_have_their_own_names_and_the_old_ones_warn():
    from multidiff.tasks import points
    from multidiff.tasks.points import api

    for module in (points, api):
        for old, new in (("save", "save_clouds"), ("load", "load_clouds")):
            with pytest.warns(DeprecationWarning, match=f"{module.__name__}.{old} is deprecated .* use .*{new}"):
                assert getattr(module, old) is getattr(api, new)
    assert "save" not in points.__all__ and {"save_clouds", "load_clouds"} <= set(points.__all__)


# ---------------------------------------------------------------- command line
CLI = [  # (argv before the option, old spelling, new spelling, value given, destination, value parsed)
    (["impute", "x.csv"], "--steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["forecast", "x.csv"], "--steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["tts", "synthesize", "--checkpoint", "c", "--text", "hi"], "--steps", "--sampler-steps", ["7"],
     "sampler_steps", 7),
    (["tts", "evaluate", "--checkpoint", "c"], "--eval-steps", "--sampler-steps", ["4", "7"], "sampler_steps", [4, 7]),
    (["points", "sample", "m", "o"], "--steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["points", "complete", "m", "p.ply", "--out", "o"], "--steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["points", "evaluate", "m", "d"], "--steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["purify", "evaluate"], "--n-steps", "--sampler-steps", ["7"], "sampler_steps", 7),
    (["purify", "evaluate"], "--steps", "--attack-steps", ["7"], "attack_steps", 7),  # PGD iterations
]


@pytest.mark.parametrize("argv, old, new, given, dest, value", CLI, ids=[f"{c[0][0]} {c[1]}" for c in CLI])
def test_old_option_spellings_work_with_a_note_and_both_is_an_error(argv, old, new, given, dest, value, capsys):
    from multidiff.cli import build_parser

    args = build_parser().parse_args(argv + [old, *given])
    assert getattr(args, dest) == value
    err = capsys.readouterr().err
    assert f"{old} is deprecated and will be removed in the next release; use {new}" in err
    args = build_parser().parse_args(argv + [new, *given])
    assert getattr(args, dest) == value and capsys.readouterr().err == ""
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv + [new, *given, old, *given])
    assert exit_.value.code == 2 and f"{new} and {old} are the same option" in capsys.readouterr().err
    progs = dict(_parsers(build_parser()))
    prog = max((" ".join(["multidiff", *argv[:n]]) for n in (1, 2)), key=lambda p: (p in progs, len(p)))
    help_text = progs[prog].format_help()
    assert new in help_text and not re.search(f"{old}\\b", help_text)  # --help shows the new spelling only
