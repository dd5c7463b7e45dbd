import numpy as np
import pytest

from multidiff.core.validate import check_whole


@pytest.mark.parametrize("value", [1, 7, 10 ** 12, np.int64(3), np.uint8(2)])
def test_whole_numbers_pass_and_come_back_as_int(value):
    out = check_whole("n_steps", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, float("nan"), float("inf"), np.float64(3.0), 0, -1, -10,
                                   np.int64(0), "3", None, [3]])
def test_bools_floats_zero_negatives_and_non_numbers_are_rejected_with_name_and_value(value):
    with pytest.raises(ValueError) as err:
        check_whole("n_votes", value)
    assert str(err.value) == f"n_votes must be a whole number >= 1, got {value!r}"


def test_lower_and_upper_bounds_are_in_the_message():
    assert check_whole("seed", 0, 0) == 0
    with pytest.raises(ValueError, match=r"^seed must be a whole number >= 0, got -1$"):
        check_whole("seed", -1, 0)
    assert check_whole("stride", 8, 1, 8) == 8
    with pytest.raises(ValueError, match=r"^stride must be a whole number in \[1, 8\], got 9$"):
        check_whole("stride", 9, 1, 8)
    with pytest.raises(ValueError, match=r"^test_every must be a whole number >= 2, got 1$"):
        check_whole("test_every", 1, 2)


def test_none_is_allowed_only_when_its_meaning_is_given():
    assert check_whole("max_steps", None, none="no limit") is None
    assert check_whole("max_steps", 5, none="no limit") == 5
    with pytest.raises(ValueError, match=r"^max_steps must be None \(no limit\) or a whole number >= 1, got 0$"):
        check_whole("max_steps", 0, none="no limit")
    with pytest.raises(ValueError, match=r"^max_steps must be None \(no limit\) or a whole number >= 1, got True$"):
        check_whole("max_steps", True, none="no limit")
