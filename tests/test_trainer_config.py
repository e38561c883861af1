"""COMMON_CONFIG, config validation messages, merging (tuned examples included), and the
plain-data checkpoint format."""

from __future__ import annotations

import pathlib
import random

import numpy as np
import pytest
import torch
import yaml

from course_lib.agents import Trainer, checkpoint, get_trainer_class
from course_lib.agents.config import (
    COMMON_CONFIG,
    merge_config,
    merge_dicts,
    merge_exploration,
    validate_config,
)
from course_lib.agents.dqn import DQNTrainer
from course_lib.agents.ppo import PPOTrainer

TUNED_EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "tuned_examples").glob("*.yaml"))


def tuned_example(path: pathlib.Path) -> dict:
    """The one experiment of a tuned-example file: {"env": ..., "run": ..., "config": {...}}."""
    [experiment] = yaml.safe_load(path.read_text()).values()
    return experiment


def assert_reaches(merged: dict, given: dict, where: str = "config") -> None:
    """Every value of ``given`` is in ``merged`` unchanged (nested dicts key by key)."""
    for key, value in given.items():
        if isinstance(value, dict):
            assert_reaches(merged[key], value, f"{where}[{key!r}]")
        else:
            assert merged[key] == value, f"{where}[{key!r}] is {merged[key]!r}, not {value!r}"


def test_common_config_has_the_2021_tutorials_sections():
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
    given = {"lr": 1, "gamma": 1, "num_gpus": 1, "min_iter_time_s": 2}
    merged = Trainer.merge_trainer_configs(COMMON_CONFIG, given)
    assert {key: merged[key] for key in given} == given
    assert merged["train_batch_size"] == COMMON_CONFIG["train_batch_size"]


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
    merged["multiagent"]["policies"]["p"] = None
    assert base["multiagent"]["policies"] == {}  # a deep copy


def test_merge_dicts_knows_no_key_by_name():
    base = {"exploration_config": {"type": "EpsilonGreedy", "epsilon_timesteps": 10}}
    assert merge_dicts(base, {"exploration_config": {"type": "SoftQ"}}) == {
        "exploration_config": {"type": "SoftQ", "epsilon_timesteps": 10}
    }


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


def test_a_trainer_config_merges_exploration_only_within_the_same_type():
    base = {"lr": 0.1, "exploration_config": {"type": "EpsilonGreedy", "epsilon_timesteps": 10}}
    assert merge_config(base, {"lr": 0.2, "exploration_config": {"epsilon_timesteps": 5}}) == {
        "lr": 0.2,
        "exploration_config": {"type": "EpsilonGreedy", "epsilon_timesteps": 5},
    }
    assert merge_config(base, {"exploration_config": {"type": "SoftQ"}}) == {
        "lr": 0.1,
        "exploration_config": {"type": "SoftQ"},
    }
    assert merge_config(base, {"exploration_config": None}) == base
    assert merge_config({"lr": 0.1}, {"exploration_config": {"type": "SoftQ"}}) == {
        "lr": 0.1,
        "exploration_config": {"type": "SoftQ"},
    }
    kept = merge_config(base, {})
    assert kept == base and kept["exploration_config"] is not base["exploration_config"]


def test_the_trainer_merge_applies_the_exploration_rule_to_its_defaults():
    defaults = DQNTrainer._default_config
    same_type = DQNTrainer.merge_trainer_configs(
        defaults, {"exploration_config": {"epsilon_timesteps": 500}}
    )
    assert same_type["exploration_config"] == {
        **defaults["exploration_config"],
        "epsilon_timesteps": 500,
    }
    other_type = DQNTrainer.merge_trainer_configs(
        defaults, {"exploration_config": {"type": "SoftQ", "temperature": 0.5}}
    )
    assert other_type["exploration_config"] == {"type": "SoftQ", "temperature": 0.5}
    assert defaults["exploration_config"]["epsilon_timesteps"] == 10000  # defaults untouched


@pytest.mark.parametrize("path", TUNED_EXAMPLES, ids=lambda path: path.stem)
def test_each_tuned_example_reaches_the_merged_trainer_config_with_its_values(path):
    experiment = tuned_example(path)
    trainer_cls = get_trainer_class(experiment["run"])
    given = {**experiment["config"], "env": experiment["env"]}
    merged = trainer_cls.merge_trainer_configs(trainer_cls._default_config, given)
    assert_reaches(merged, given)
    defaults = trainer_cls._default_config
    for key in set(defaults) - set(given):
        assert merged[key] == defaults[key], key  # what the file leaves out keeps the default
    for key in set(defaults["model"]) - set(given.get("model", {})):
        assert merged["model"][key] == defaults["model"][key], key


def test_the_ppo_tuned_example_reaches_the_built_trainer_and_its_policy(tmp_path):
    experiment = tuned_example(
        pathlib.Path(__file__).parents[1] / "tuned_examples/ppo-cartpole.yaml"
    )
    config = {**experiment["config"], "logger_config": {"logdir": str(tmp_path)}}
    trainer = PPOTrainer(config=config, env=experiment["env"])
    try:
        assert_reaches(trainer.config, experiment["config"])
        policy = trainer.get_policy()
        assert_reaches(policy.config, experiment["config"])
        assert policy.optimizer.param_groups[0]["lr"] == experiment["config"]["lr"] == 0.001
        hidden = [
            layer.out_features
            for layer in policy.model.modules()
            if isinstance(layer, torch.nn.Linear)
        ]
        assert hidden[:2] == experiment["config"]["model"]["fcnet_hiddens"] == [64, 64]
        (vector_env,) = trainer.workers.local_worker().envs  # vectorize_envs: one vector env
        assert vector_env.num_envs == experiment["config"]["num_envs_per_worker"] == 8
    finally:
        trainer.stop()


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
    stored = torch.load(tmp_path / checkpoint.STATE_FILE, weights_only=True)
    restored = checkpoint.from_storable(stored)["w"]
    assert isinstance(restored, np.ndarray) and np.array_equal(restored, np.ones(2))


def test_checkpoint_keeps_the_shape_of_every_array(tmp_path):
    """A 0-d array (SAC's log_alpha) comes back 0-d, not as shape (1,), and a transposed view
    comes back with its values."""
    arrays = {
        "scalar": np.array(0.5, dtype=np.float32),
        "empty": np.zeros((0, 3)),
        "transposed": np.arange(6.0).reshape(2, 3).T,
        "unsigned": np.array([1, 2], dtype=np.uint8),
    }
    checkpoint.save_state(str(tmp_path), arrays, {})
    loaded = checkpoint.load_state(str(tmp_path))
    for name, array in arrays.items():
        assert loaded[name].shape == array.shape, name
        assert loaded[name].dtype == array.dtype, name
        assert np.array_equal(loaded[name], array), name


def test_loading_a_folder_that_is_not_a_checkpoint_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a course_lib checkpoint.*trainer.save"):
        checkpoint.load_metadata(str(tmp_path))


def test_tune_reserves_each_workers_custom_resources_in_the_trials_placement_group():
    request = PPOTrainer.default_resource_request(
        {
            "num_workers": 2,
            "num_cpus_per_worker": 0.5,
            "custom_resources_per_worker": {"simulator": 1},
        }
    )
    assert request.bundles == [
        {"CPU": 1.0},
        {"CPU": 0.5, "simulator": 1},
        {"CPU": 0.5, "simulator": 1},
    ]
