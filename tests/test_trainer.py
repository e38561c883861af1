"""Trainer: building, training, checkpoints (and identical resume), acting, evaluation, results
folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from course_lib.agents import Trainer, build_trainer, get_trainer_class
from course_lib.agents.a3c import A2CTrainer
from course_lib.agents.dqn import DQNTrainer
from course_lib.agents.pg import PGTrainer
from course_lib.agents.ppo import PPOTrainer
from course_lib.callbacks import DefaultCallbacks
from course_lib.policy import PGTorchPolicy

SMALL_PPO = {
    "num_envs_per_worker": 4,
    "rollout_fragment_length": 50,
    "train_batch_size": 200,
    "sgd_minibatch_size": 64,
    "num_sgd_iter": 3,
    "model": {"fcnet_hiddens": [32, 32]},
}


@pytest.fixture
def logdir(tmp_path):
    return {"logger_config": {"logdir": str(tmp_path / "results")}}


def train(trainer, iterations):
    return [trainer.train() for _ in range(iterations)]


def same_weights(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[pid][k], b[pid][k]) for pid in a for k in a[pid])


def test_trainer_is_a_tune_trainable_and_registered_by_name():
    from ray.tune import Trainable
    from ray.tune.registry import get_trainable_cls

    from course_lib.agents import register_with_tune

    # The last registration of a name wins: `tune.Tuner(PPO, ...)` with RLlib's class (an earlier
    # test in this process does it) registers RLlib's PPO under "PPO". Importing course_lib.agents
    # and every ray.init() register course_lib's again; so does this call.
    register_with_tune()
    assert issubclass(PPOTrainer, Trainable)
    for name, cls in (
        ("PG", PGTrainer),
        ("A2C", A2CTrainer),
        ("PPO", PPOTrainer),
        ("DQN", DQNTrainer),
    ):
        assert get_trainer_class(name) is cls
        # Tune's registry keeps a pickled copy: the same trainer, not the same class object.
        assert get_trainable_cls(name)._name == name and issubclass(
            get_trainable_cls(name), Trainable
        )


def test_unknown_algorithm_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'PPO'"):
        get_trainer_class("PPX")


def test_config_errors_surface_at_construction(logdir):
    with pytest.raises(ValueError, match="Did you mean 'num_workers'"):
        PGTrainer(config={"num_worker": 0, **logdir}, env="CartPole-v1")
    with pytest.raises(ValueError, match="No environment"):
        PGTrainer(config=logdir)
    with pytest.raises(ValueError, match="sgd_minibatch_size .* larger than train_batch_size"):
        PPOTrainer(
            config={"sgd_minibatch_size": 512, "train_batch_size": 256, **logdir}, env="CartPole-v1"
        )


def test_train_returns_the_tutorials_result_keys(logdir):
    trainer = PGTrainer(
        config={
            **logdir,
            "seed": 0,
            "num_envs_per_worker": 2,
            "rollout_fragment_length": 100,
            "train_batch_size": 200,
        },
        env="CartPole-v1",
    )
    first, second = train(trainer, 2)
    trainer.stop()
    for key in (
        "episode_reward_mean",
        "episode_reward_min",
        "episode_reward_max",
        "episode_len_mean",
        "episodes_this_iter",
        "timesteps_total",
        "training_iteration",
        "custom_metrics",
        "hist_stats",
        "policy_reward_mean",
        "timers",
    ):
        assert key in second
    assert "total_loss" in second["info"]["learner"]["default_policy"]
    assert (first["training_iteration"], second["training_iteration"]) == (1, 2)
    assert (first["timesteps_total"], second["timesteps_total"]) == (200, 400)


def test_standalone_trainer_writes_a_results_folder(logdir):
    trainer = PGTrainer(
        config={
            **logdir,
            "seed": 0,
            "num_envs_per_worker": 2,
            "rollout_fragment_length": 100,
            "train_batch_size": 200,
        },
        env="CartPole-v1",
    )
    train(trainer, 3)
    folder = trainer.logdir
    trainer.stop()
    assert os.path.basename(folder).startswith("PG_CartPole-v1_")
    assert json.load(open(os.path.join(folder, "params.json")))["train_batch_size"] == 200
    lines = open(os.path.join(folder, "result.json")).read().splitlines()
    assert [json.loads(line)["training_iteration"] for line in lines] == [1, 2, 3]
    import pandas as pd

    progress = pd.read_csv(os.path.join(folder, "progress.csv"))
    assert list(progress["timesteps_total"]) == [200, 400, 600]
    assert "info/learner/default_policy/total_loss" in progress.columns
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(folder))


def test_checkpoint_round_trip_restores_weights_and_counters(logdir, tmp_path):
    config = {**logdir, **SMALL_PPO, "seed": 1, "observation_filter": "MeanStdFilter"}
    trainer = PPOTrainer(config=config, env="CartPole-v1")
    train(trainer, 2)
    path = trainer.save(str(tmp_path / "ckpt"))
    assert sorted(os.listdir(path)) == ["metadata.json", "trainer_state.pt"]
    restored = PPOTrainer(config=config, env="CartPole-v1")
    restored.restore(path)
    assert restored.iteration == 2
    assert same_weights(trainer.get_weights(), restored.get_weights())
    assert restored.get_policy().kl_coeff == trainer.get_policy().kl_coeff
    saved_filter = trainer.workers.local_worker().filters["default_policy"].get_state()
    loaded_filter = restored.workers.local_worker().filters["default_policy"].get_state()
    assert saved_filter["count"] == loaded_filter["count"] > 0
    np.testing.assert_array_equal(saved_filter["mean"], loaded_filter["mean"])
    trainer.stop()
    restored.stop()


@pytest.mark.parametrize(
    "trainer_cls,config",
    [
        (PPOTrainer, SMALL_PPO),
        (
            PGTrainer,
            {"num_envs_per_worker": 2, "rollout_fragment_length": 100, "train_batch_size": 200},
        ),
    ],
)
def test_resumed_training_is_identical_to_uninterrupted(trainer_cls, config, logdir, tmp_path):
    config = {**logdir, **config, "seed": 7, "observation_filter": "MeanStdFilter"}
    straight = trainer_cls(config=config, env="CartPole-v1")
    train(straight, 2)
    path = straight.save(str(tmp_path / "mid"))
    expected = train(straight, 3)
    expected_weights = straight.get_weights()
    straight.stop()

    resumed = trainer_cls(config=config, env="CartPole-v1")
    train(resumed, 1)  # move it off the checkpoint's state first, so restore has to undo this
    resumed.restore(path)
    got = train(resumed, 3)
    for want, have in zip(expected, got, strict=True):
        assert have["training_iteration"] == want["training_iteration"]
        assert have["timesteps_total"] == want["timesteps_total"]
        assert have["hist_stats"]["episode_reward"] == want["hist_stats"]["episode_reward"]
        assert (
            have["info"]["learner"]["default_policy"]["total_loss"]
            == want["info"]["learner"]["default_policy"]["total_loss"]
        )
    assert same_weights(expected_weights, resumed.get_weights())
    resumed.stop()


def test_restoring_with_another_number_of_envs_starts_fresh_episodes(logdir, tmp_path):
    config = {
        **logdir,
        "seed": 0,
        "num_envs_per_worker": 2,
        "rollout_fragment_length": 50,
        "train_batch_size": 100,
    }
    trainer = PGTrainer(config=config, env="CartPole-v1")
    trainer.train()
    path = trainer.save(str(tmp_path / "two_envs"))
    trainer.stop()
    wider = PGTrainer(config={**config, "num_envs_per_worker": 4}, env="CartPole-v1")
    with pytest.warns(UserWarning, match="episodes start afresh"):
        wider.restore(path)
    assert wider.train()["timesteps_this_iter"] == 200
    wider.stop()


def test_restoring_another_algorithms_checkpoint_is_refused(logdir, tmp_path):
    pg = PGTrainer(
        config={
            **logdir,
            "num_envs_per_worker": 1,
            "rollout_fragment_length": 50,
            "train_batch_size": 50,
        },
        env="CartPole-v1",
    )
    path = pg.save(str(tmp_path / "pg"))
    pg.stop()
    ppo = PPOTrainer(config={**logdir, **SMALL_PPO}, env="CartPole-v1")
    with pytest.raises(ValueError, match="written by a 'PG' trainer"):
        ppo.restore(path)
    ppo.stop()


def test_compute_single_action_and_the_tutorials_alias(logdir):
    import gymnasium as gym

    trainer = PGTrainer(
        config={
            **logdir,
            "seed": 0,
            "num_envs_per_worker": 1,
            "rollout_fragment_length": 50,
            "train_batch_size": 50,
        },
        env="CartPole-v1",
    )
    obs, _ = gym.make("CartPole-v1").reset(seed=0)
    greedy = [trainer.compute_single_action(obs, explore=False) for _ in range(5)]
    assert (
        len(set(int(a) for a in greedy)) == 1 and trainer.action_space_contains(greedy[0])
        if hasattr(trainer, "action_space_contains")
        else True
    )
    assert int(trainer.compute_action(obs, explore=False)) == int(greedy[0])
    action, state, extra = trainer.compute_single_action(obs, full_fetch=True)
    assert state == [] and "action_logp" in extra
    trainer.stop()


def test_evaluation_runs_greedy_episodes_every_interval(logdir):
    config = {
        **logdir,
        "seed": 0,
        "num_envs_per_worker": 2,
        "rollout_fragment_length": 100,
        "train_batch_size": 200,
        "evaluation_interval": 2,
        "evaluation_num_episodes": 3,
    }
    trainer = PGTrainer(config=config, env="CartPole-v1")
    first, second = train(trainer, 2)
    assert "evaluation" not in first
    assert second["evaluation"]["episodes_this_iter"] == 3
    assert trainer.evaluation_workers.local_worker().get_policy().config["explore"] is False
    trainer.stop()


def test_on_train_result_fires_with_the_result(logdir):
    class Record(DefaultCallbacks):
        seen = []

        def on_train_result(self, *, trainer, result, **kwargs):
            Record.seen.append(
                (type(trainer).__name__, result["timesteps_total"], result["training_iteration"])
            )
            result["callback_ok"] = True

    trainer = PGTrainer(
        config={
            **logdir,
            "callbacks": Record,
            "num_envs_per_worker": 1,
            "rollout_fragment_length": 50,
            "train_batch_size": 50,
        },
        env="CartPole-v1",
    )
    result = trainer.train()
    trainer.stop()
    assert Record.seen == [("PG", 50, 1)] and result["callback_ok"]
    assert (
        json.loads(open(os.path.join(trainer.logdir, "result.json")).readline())["callback_ok"]
        is True
    )


def test_build_trainer_runs_hooks_in_the_tutorials_order(logdir):
    order = []
    MyTrainer = build_trainer(
        "MyTrainer",
        default_policy=PGTorchPolicy,
        validate_config=lambda config: order.append("validate_config"),
        before_init=lambda trainer: order.append("before_init"),
        after_init=lambda trainer: order.append("after_init"),
        execution_plan=lambda workers, config: (
            order.append("execution_plan") or iter([{"episode_reward_mean": 1.0}])
        ),
    )
    trainer = MyTrainer(config={**logdir, "num_workers": 0}, env="CartPole-v1")
    assert order == ["validate_config", "before_init", "execution_plan", "after_init"]
    assert trainer.train()["episode_reward_mean"] == 1.0
    assert issubclass(MyTrainer, Trainer) and MyTrainer.__name__ == "MyTrainer"


def test_with_updates_replaces_the_policy_and_leaves_the_original(logdir):
    Custom = PPOTrainer.with_updates(name="CustomPPO", default_policy=PGTorchPolicy)
    assert (
        Custom._default_policy is PGTorchPolicy and PPOTrainer._default_policy is not PGTorchPolicy
    )
    assert Custom._default_config is PPOTrainer._default_config
    with pytest.raises(TypeError, match="Did you mean 'default_policy'"):
        PPOTrainer.with_updates(default_polcy=PGTorchPolicy)


def test_build_trainer_rejects_incomplete_configs():
    with pytest.raises(ValueError, match="lacks the common keys"):
        build_trainer("Bad", default_policy=PGTorchPolicy, default_config={"lr": 0.1})
    with pytest.raises(ValueError, match="needs default_policy"):
        build_trainer("Bad")


def test_remote_workers_and_tune_search_space_errors(ray_session, logdir):
    trainer = PGTrainer(
        config={
            **logdir,
            "seed": 0,
            "num_workers": 2,
            "num_cpus_per_worker": 0.5,
            "num_envs_per_worker": 1,
            "rollout_fragment_length": 50,
            "train_batch_size": 100,
        },
        env="CartPole-v1",
    )
    result = trainer.train()
    assert result["timesteps_total"] == 100 and result["num_healthy_workers"] == 2
    import ray

    remote = ray.get(trainer.workers.remote_workers()[0].get_weights.remote())
    assert same_weights(trainer.get_weights(), remote)
    trainer.stop()


RANDOM_RETURN = 23  # CartPole-v1 mean return of uniformly random actions


@pytest.mark.slow
@pytest.mark.parametrize(
    "trainer_cls,config,iterations,threshold",
    [
        (PGTrainer, {}, 12, 60),
        (A2CTrainer, {}, 60, 60),
        (PPOTrainer, {"lr": 1e-3, "model": {"fcnet_hiddens": [64, 64]}}, 8, 120),
        (
            DQNTrainer,
            {
                "lr": 1e-3,
                "n_step": 3,
                "model": {"fcnet_hiddens": [64]},
                "hiddens": [64],
                "prioritized_replay": False,
                "learning_starts": 500,
                "target_network_update_freq": 500,
                "exploration_config": {"epsilon_timesteps": 5000},
            },
            10,
            60,
        ),
    ],
)
def test_each_algorithm_learns_cartpole_beyond_random(
    trainer_cls, config, iterations, threshold, logdir
):
    trainer = trainer_cls(
        config={**logdir, **config, "seed": 0, "metrics_smoothing_episodes": 20}, env="CartPole-v1"
    )
    results = train(trainer, iterations)
    trainer.stop()
    assert results[-1]["episode_reward_mean"] > max(threshold, 2 * RANDOM_RETURN)


def test_a_plan_that_returns_no_iterator_is_explained(logdir):
    Broken = build_trainer(
        "Broken", default_policy=PGTorchPolicy, execution_plan=lambda workers, config: None
    )
    with pytest.raises(
        TypeError, match="not an iterator of result dicts.*StandardMetricsReporting"
    ):
        Broken(config={**logdir, "num_workers": 0}, env="CartPole-v1")
