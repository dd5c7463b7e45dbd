"""The one helper that keeps old keyword and module names working for a release."""
import sys
import types
import warnings

import pytest

from multidiff.core.deprecation import ignored_kwargs, moved, rename_keys, renamed_attribute, renamed_kwargs


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


def test_a_renamed_module_attribute_names_its_new_name():
    old = types.ModuleType("old_home")
    old.__getattr__ = moved("old_home", {"write": "json:dumps"})
    with pytest.warns(DeprecationWarning, match=r"old_home.write is deprecated .* use json.dumps"):
        import json
        assert old.write is json.dumps


class Base:
    @renamed_kwargs(num_steps="num_train_steps")
    @ignored_kwargs(n_train_steps="the grid is continuous")
    def __init__(self, num_train_steps=50):
        self.num_train_steps = num_train_steps

    def alpha_bar_of(self, t):
        return 1 - t

    alpha_bar = renamed_attribute("alpha_bar_of")
    num_steps = renamed_attribute("num_train_steps", settable=True)


class Child(Base):
    pass


def test_constructor_messages_name_the_class_built_and_ignored_keywords_are_dropped():
    with pytest.warns(DeprecationWarning, match=r"^Child\(\): the keyword 'num_steps' is deprecated"):
        assert Child(num_steps=7).num_train_steps == 7
    with pytest.warns(DeprecationWarning, match=r"^Child\(\): the keyword 'n_train_steps' .* no effect: the grid"):
        assert Child(n_train_steps=3).num_train_steps == 50
    assert Base.__init__.__deprecated_kwargs__ == {"num_steps": "num_train_steps", "n_train_steps": None}


def test_renamed_attributes_forward_with_a_warning_and_only_settable_ones_set():
    obj = Child()
    with pytest.warns(DeprecationWarning, match=r"Base.alpha_bar is deprecated .* use Base.alpha_bar_of") as rec:
        assert obj.alpha_bar(0.25) == 0.75
    assert rec[0].filename == __file__
    with pytest.warns(DeprecationWarning, match="Base.num_steps is deprecated"):
        obj.num_steps = 9
    assert obj.num_train_steps == 9 and "num_steps" not in vars(obj)
    with pytest.raises(AttributeError, match="cannot be set"):
        obj.alpha_bar = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(Base.alpha_bar, renamed_attribute)  # read on the class (help(), inspect): no warning


def test_rename_keys_translates_configs_silently_or_with_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rename_keys({"num_steps": "num_train_steps"}, {"num_steps": 5, "a": 1}, "cfg", warn=False) == \
            {"num_train_steps": 5, "a": 1}
    with pytest.warns(DeprecationWarning, match="set_params: the keyword 'num_steps'"):
        rename_keys({"num_steps": "num_train_steps"}, {"num_steps": 5}, "set_params")
    with pytest.raises(TypeError, match="got both"):
        rename_keys({"num_steps": "num_train_steps"}, {"num_steps": 5, "num_train_steps": 5}, "cfg", warn=False)
