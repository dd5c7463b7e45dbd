"""The one helper that keeps old keyword and module names working for a release."""
import sys
import types
import warnings

import pytest

from multidiff.core.deprecation import moved, renamed_kwargs


@renamed_kwargs(n_steps="sampler_steps", sampling_steps="sampler_steps")
def f(x, sampler_steps=10, sampler="ddim"):
    return x, sampler_steps, sampler


def test_old_keyword_is_renamed_with_a_warning_pointing_at_the_caller():
    with pytest.warns(DeprecationWarning, match=r"f\(\): the keyword 'n_steps' is deprecated .* use 'sampler_steps'") as rec:
        assert f(1, n_steps=4) == (1, 4, "ddim")
    assert rec[0].filename == __file__  # stacklevel: the warning names the caller's line
    with pytest.warns(DeprecationWarning, match="'sampling_steps'"):
        assert f(1, sampling_steps=3, sampler="ddpm") == (1, 3, "ddpm")


def test_new_and_positional_names_do_not_warn_and_both_names_is_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(1, 5) == (1, 5, "ddim") and f(1, sampler_steps=6) == (1, 6, "ddim")
    with pytest.raises(TypeError, match="got both 'n_steps' \\(deprecated\\) and 'sampler_steps'"):
        f(1, n_steps=4, sampler_steps=5)
    assert f.__name__ == "f" and f.__wrapped__ is not None  # functools.wraps keeps the signature visible


def test_moved_names_import_from_their_new_home_with_a_warning():
    old = types.ModuleType("old_home")
    old.__getattr__ = moved("old_home", {"dumps": "json:dumps"})
    sys.modules["old_home"] = old
    try:
        with pytest.warns(DeprecationWarning, match="old_home.dumps is deprecated .* import it from json"):
            from old_home import dumps
        import json
        assert dumps is json.dumps
        with pytest.raises(AttributeError, match="has no attribute 'loads'"):
            old.loads
    finally:
        del sys.modules["old_home"]
