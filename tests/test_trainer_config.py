"""COMMON_CONFIG, config validation messages, and the plain-data checkpoint format."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_lib.agents import checkpoint
from course_lib.agents.config import COMMON_CONFIG, merge_dicts, merge_exploration, validate_config


def test_common_config_has_the_seeds_sections():
    for key in (
        "num_workers",
        "num_envs_per_worker",
        "gamma",
        "lr",
        "train_batch_size",
        "model",
        "log_level",
        "callbacks",
        "framework",
        "explore",
        "exploration_config",
        "evaluation_interval",
        "evaluation_num_episodes",
        "evaluation_config",
        "observation_filter",
        "seed",
        "num_gpus",
        "num_cpus_per_worker",
        "multiagent",
    ):
        assert key in COMMON_CONFIG
    assert set(COMMON_CONFIG["multiagent"]) == {
        "policies",
        "policy_mapping_fn",
        "policies_to_train",
        "count_steps_by",
    }


def test_unknown_key_names_the_closest_valid_one():
    with pytest.raises(
        ValueError, match="Unknown config key 'num_worker'. Did you mean 'num_workers'"
    ):
        validate_config({"num_worker": 2}, COMMON_CONFIG)


def test_unknown_nested_key_says_where_it_is():
    with pytest.raises(
        ValueError, match="'policy_mapping' in 'multiagent'. Did you mean 'policy_mapping_fn'"
    ):
        validate_config({"multiagent": {"policy_mapping": None}}, COMMON_CONFIG)
    with pytest.raises(ValueError, match="in 'evaluation_config'. Did you mean 'explore'"):
        validate_config({"evaluation_config": {"explor": False}}, COMMON_CONFIG)


def test_wrong_types_get_the_expected_type():
    with pytest.raises(TypeError, match="'num_workers' expects a int .* got '2' of type str"):
        validate_config({"num_workers": "2"}, COMMON_CONFIG)
    with pytest.raises(TypeError, match="'explore' expects a bool"):
        validate_config({"explore": 1}, COMMON_CONFIG)
    with pytest.raises(TypeError, match="'num_workers' expects a int"):
        validate_config({"num_workers": True}, COMMON_CONFIG)


def test_ints_are_accepted_where_floats_are_expected():
    validate_config({"lr": 1, "gamma": 1, "num_gpus": 1, "min_iter_time_s": 2}, COMMON_CONFIG)


def test_tf_framework_is_refused_with_an_explanation():
    with pytest.raises(ValueError, match="PyTorch"):
        validate_config({"framework": "tf"}, COMMON_CONFIG)


def test_search_space_outside_tune_is_explained():
    from ray import tune

    with pytest.raises(TypeError, match="Tune search space"):
        validate_config({"lr": tune.grid_search([0.1, 0.01])}, COMMON_CONFIG)
    with pytest.raises(TypeError, match="Tune search space"):
        validate_config({"lr": tune.uniform(0.1, 0.2)}, COMMON_CONFIG)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="'train_batch_size' must be >= 1"):
        validate_config({"train_batch_size": 0}, COMMON_CONFIG)


def test_merge_is_deep_and_leaves_inputs_unchanged():
    base = {"a": 1, "multiagent": {"policies": {}, "count_steps_by": "env_steps"}}
    merged = merge_dicts(base, {"multiagent": {"count_steps_by": "agent_steps"}})
    assert merged == {"a": 1, "multiagent": {"policies": {}, "count_steps_by": "agent_steps"}}
    assert base["multiagent"]["count_steps_by"] == "env_steps"


def test_exploration_config_merges_only_within_the_same_type():
    default = {"type": "EpsilonGreedy", "initial_epsilon": 1.0, "epsilon_timesteps": 10000}
    assert merge_exploration(default, {"epsilon_timesteps": 500}) == {
        "type": "EpsilonGreedy",
        "initial_epsilon": 1.0,
        "epsilon_timesteps": 500,
    }
    assert merge_exploration(default, {"type": "SoftQ", "temperature": 0.5}) == {
        "type": "SoftQ",
        "temperature": 0.5,
    }
    assert merge_exploration(default, None) == default


def test_checkpoint_round_trip_keeps_types_and_values(tmp_path):
    random.seed(3)
    state = {
        "weights": {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "mask": np.array([True, False]),
        },
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "torch_rng": torch.get_rng_state(),
        "counts": [1, 2.5, None, "x", np.int64(7)],
        "labels": np.array(["a", "bc"]),
        "optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}},
    }
    checkpoint.save_state(str(tmp_path), state, {"trainer": "PG"})
    loaded = checkpoint.load_state(str(tmp_path))
    assert loaded["weights"]["w"].dtype == np.float32 and np.array_equal(
        loaded["weights"]["w"], state["weights"]["w"]
    )
    assert loaded["weights"]["mask"].dtype == bool
    restored = loaded["numpy_rng"]
    assert (
        restored[0] == "MT19937"
        and restored[1].dtype == np.uint32
        and np.array_equal(restored[1], state["numpy_rng"][1])
    )
    np.random.set_state(restored)
    random.setstate(loaded["python_rng"])
    assert loaded["counts"] == [1, 2.5, None, "x", 7]
    assert loaded["labels"] == ["a", "bc"]
    assert torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], torch.ones(3))
    assert checkpoint.load_metadata(str(tmp_path))["trainer"] == "PG"


def test_checkpoint_refuses_objects_and_says_where(tmp_path):
    with pytest.raises(TypeError, match=r"state\['policies'\]\['p'\]: object is not plain data"):
        checkpoint.save_state(str(tmp_path), {"policies": {"p": object()}}, {})


def test_checkpoint_files_load_with_weights_only(tmp_path):
    checkpoint.save_state(str(tmp_path), {"w": np.ones(2)}, {})
    torch.load(tmp_path / checkpoint.STATE_FILE, weights_only=True)


def test_loading_a_folder_that_is_not_a_checkpoint_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a course_lib checkpoint.*trainer.save"):
        checkpoint.load_metadata(str(tmp_path))
