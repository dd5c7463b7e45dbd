"""Old names kept for one release, each with a ``DeprecationWarning`` that names the new one.

The package speaks one vocabulary (``sampler``, ``sampler_steps``, ``num_train_steps``,
``alpha_bar_of``); :func:`renamed_kwargs` lets a signature take the new keyword while callers
that still pass the old one keep working, and :func:`moved` does the same for a name that moved
to another module.
"""
from __future__ import annotations

import functools
import importlib
import warnings
from typing import Callable, TypeVar

__all__ = ["renamed_kwargs", "moved"]

F = TypeVar("F", bound=Callable)


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Decorator: ``@renamed_kwargs(n_steps="sampler_steps")`` makes ``f(n_steps=5)`` call
    ``f(sampler_steps=5)`` with a ``DeprecationWarning`` (attributed to the caller's line).
    Passing both the old and the new name is a ``TypeError``, as for any duplicate argument.
    Positional calls are untouched: a renamed parameter keeps its position."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got both {old!r} (deprecated) and {new!r}; "
                                        f"pass {new!r} only")
                    warnings.warn(f"{fn.__qualname__}(): the keyword {old!r} is deprecated and will be removed "
                                  f"in the next release; use {new!r}", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def moved(old_module: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for names that moved: ``names`` maps each old name to
    ``"new.module:attr"``. Reading one imports it from its new home with a ``DeprecationWarning``;
    any other name raises ``AttributeError`` as usual.

        __getattr__ = moved(__name__, {"TimeGradModel": "multidiff.tasks.forecasting.timegrad_model:TimeGradModel"})
    """
    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        module, attr = names[name].split(":")
        warnings.warn(f"{old_module}.{name} is deprecated and will be removed in the next release; import it "
                      f"from {module}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), attr)
    return __getattr__
