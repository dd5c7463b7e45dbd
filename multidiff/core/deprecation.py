"""Old names kept for one release, each with a ``DeprecationWarning`` that names the new one.

The package speaks one vocabulary (``sampler``, ``sampler_steps``, ``num_train_steps``,
``alpha_bar_of``; table in docs/architecture.md). :func:`renamed_kwargs` lets a signature take the
new keyword while callers that still pass the old one keep working, :func:`ignored_kwargs` does
the same for a keyword that no longer has an effect, :func:`renamed_attribute` for an attribute
or method, :func:`rename_keys` for the keys of a saved config, and :func:`moved` for a name that
moved to another module (or was renamed there).
"""
from __future__ import annotations

import functools
import importlib
import warnings
from typing import Callable, Mapping, TypeVar

__all__ = ["renamed_kwargs", "ignored_kwargs", "renamed_attribute", "rename_keys", "moved"]

F = TypeVar("F", bound=Callable)

_REMOVED = "is deprecated and will be removed in the next release"


def _where(fn: Callable, args: tuple) -> str:
    """How a message names the call: ``Generator()`` for a constructor (the class the caller
    built, not the base class that defines ``__init__``), else ``Imputer.set_params()``."""
    if fn.__name__ == "__init__" and args:
        return f"{type(args[0]).__name__}()"
    return f"{fn.__qualname__}()"


def rename_keys(renames: Mapping[str, str], given: dict, where: str, warn: bool = True, stacklevel: int = 2) -> dict:
    """``given`` with every old key of ``renames`` (old -> new) replaced by its new key.

    With ``warn``, each old key found gives a ``DeprecationWarning`` (``stacklevel`` as for
    :func:`warnings.warn`, counted from the caller of this function); without it the keys are
    translated silently (a config written by an older release: the user did not choose those
    names). ``where`` names the function or file in the messages. Old and new key together is a
    ``TypeError``, as for any duplicate argument."""
    out = dict(given)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise TypeError(f"{where} got both {old!r} (deprecated) and {new!r}; pass {new!r} only")
        if warn:
            warnings.warn(f"{where}: the keyword {old!r} {_REMOVED}; use {new!r}", DeprecationWarning,
                          stacklevel=stacklevel + 1)
        out[new] = out.pop(old)
    return out


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Decorator: ``@renamed_kwargs(n_steps="sampler_steps")`` makes ``f(n_steps=5)`` call
    ``f(sampler_steps=5)`` with a ``DeprecationWarning`` (attributed to the caller's line).
    Passing both the old and the new name is a ``TypeError``, as for any duplicate argument.
    Positional calls are untouched: a renamed parameter keeps its position. The signature
    seen by ``inspect.signature`` (and scikit-learn's ``get_params``) is the new one."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if kwargs:
                kwargs = rename_keys(renames, kwargs, _where(fn, args), stacklevel=2)
            return fn(*args, **kwargs)
        wrapper.__deprecated_kwargs__ = {**getattr(fn, "__deprecated_kwargs__", {}), **renames}
        return wrapper  # type: ignore[return-value]
    return decorate


def ignored_kwargs(**reasons: str) -> Callable[[F], F]:
    """Decorator for keywords that no longer have an effect: ``@ignored_kwargs(n_train_steps="every
    sampler runs on the VP-SDE's continuous grid")`` drops ``n_train_steps=`` with a
    ``DeprecationWarning`` giving the reason, so it leaves the signature but old calls still run."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for name, reason in reasons.items():
                if name in kwargs:
                    kwargs.pop(name)
                    warnings.warn(f"{_where(fn, args)}: the keyword {name!r} {_REMOVED}; it has no effect: {reason}",
                                  DeprecationWarning, stacklevel=2)
            return fn(*args, **kwargs)
        wrapper.__deprecated_kwargs__ = {**getattr(fn, "__deprecated_kwargs__", {}), **{k: None for k in reasons}}
        return wrapper  # type: ignore[return-value]
    return decorate


class renamed_attribute:
    """A class attribute that forwards to its new name with a ``DeprecationWarning``:

        class VPSDE:
            def alpha_bar_of(self, t): ...
            alpha_bar = renamed_attribute("alpha_bar_of")

    Reading ``sde.alpha_bar`` (a method, a property or a plain attribute) returns
    ``sde.alpha_bar_of``. Read on the class (``VPSDE.alpha_bar``), it is this descriptor and does
    not warn, so that ``help()`` and other introspection stay quiet. With ``settable=True``
    (a scikit-learn parameter, ``imputer.num_steps = 20``) assigning it sets the new name, with
    the warning; otherwise assigning it is an ``AttributeError``, as for a read-only property."""

    def __init__(self, new: str, settable: bool = False):
        self.new, self.settable = new, settable

    def __set_name__(self, owner, name: str) -> None:
        self.old, self.owner = name, owner.__qualname__

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        warnings.warn(f"{self.owner}.{self.old} {_REMOVED}; use {self.owner}.{self.new}", DeprecationWarning,
                      stacklevel=2)
        return getattr(obj, self.new)

    def __set__(self, obj, value) -> None:
        if not self.settable:
            raise AttributeError(f"{self.owner}.{self.old} (deprecated; now {self.new}) cannot be set")
        warnings.warn(f"{self.owner}.{self.old} {_REMOVED}; use {self.owner}.{self.new}", DeprecationWarning,
                      stacklevel=2)
        setattr(obj, self.new, value)


def moved(old_module: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for names that moved or were renamed: ``names`` maps each old name
    to ``"new.module:attr"``. Reading one imports it from its new home with a
    ``DeprecationWarning``; any other name raises ``AttributeError`` as usual.

        __getattr__ = moved(__name__, {"TimeGradModel": "multidiff.tasks.forecasting.timegrad_model:TimeGradModel"})
        __getattr__ = moved(__name__, {"save": "multidiff.tasks.points.api:save_clouds"})  # a rename
    """
    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        module, attr = names[name].split(":")
        where = f"import it from {module}" if attr == name else f"use {module}.{attr}"
        warnings.warn(f"{old_module}.{name} {_REMOVED}; {where}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), attr)
    return __getattr__
