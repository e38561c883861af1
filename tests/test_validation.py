"""course_lib.validation: the shared words of the library's input checks."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.validation import (
    close_matches,
    did_you_mean,
    is_real_number,
    is_whole_number,
    require_whole_number,
)


@pytest.mark.parametrize("value", [0, 3, -2])
def test_whole_numbers_are_ints(value):
    assert is_whole_number(value)


@pytest.mark.parametrize("value", [True, False, 2.0, "2", None, np.float32(2)])
def test_bools_floats_and_strings_are_not_whole_numbers(value):
    assert not is_whole_number(value)


@pytest.mark.parametrize("value", [0, 0.5, -3, np.float32(0.25), np.int64(4)])
def test_real_numbers_include_numpy_scalars(value):
    assert is_real_number(value)


@pytest.mark.parametrize("value", [True, "0.5", None, 1j, [1.0]])
def test_bools_strings_and_complex_are_not_real_numbers(value):
    assert not is_real_number(value)


def test_require_whole_number_returns_the_value_and_names_the_setting_when_wrong():
    assert require_whole_number(4, '"num_workers"', minimum=0) == 4
    with pytest.raises(ValueError, match=r'"num_workers" must be a whole number >= 1, got 0\.'):
        require_whole_number(0, '"num_workers"', minimum=1)
    with pytest.raises(ValueError, match=r"must be a whole number, got True"):
        require_whole_number(True, '"num_workers"')


def test_did_you_mean_suggests_the_closest_name_with_a_leading_space():
    assert (
        did_you_mean("num_worker", ["num_workers", "lr", "gamma"]) == " Did you mean 'num_workers'?"
    )
    assert did_you_mean("zzz", ["num_workers", "lr"]) == ""


def test_a_name_that_differs_only_in_case_comes_first():
    assert close_matches("ppo", ["PG", "PPO", "APPO"], n=2)[0] == "PPO"
    assert (
        did_you_mean("epsilongreedy", ["EpsilonGreedy", "SoftQ"])
        == " Did you mean 'EpsilonGreedy'?"
    )
