"""SlowSimulator: CartPole's task, deterministic, and its two costs cost what they say."""

from __future__ import annotations

import math
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import yaml

from course_lib.envs import (
    SlowSimulator,
    calibrate_cpu_substeps,
    check_env,
    make_env,
    registered_envs,
)

TUNED_PPO = Path(__file__).resolve().parent.parent / "tuned_examples" / "ppo-cartpole.yaml"


def rollout(env, seed: int, actions) -> tuple[np.ndarray, list[tuple[bool, bool]]]:
    """Observations (first one included) and (terminated, truncated) flags for these actions,
    up to the end of the episode."""
    obs, _ = env.reset(seed=seed)
    observations, flags = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        assert reward == 1.0
        observations.append(obs)
        flags.append((terminated, truncated))
        if terminated or truncated:
            break
    return np.array(observations), flags


ACTIONS = np.random.default_rng(7).integers(0, 2, size=500)


def test_registered_by_name_and_passes_the_env_checker():
    assert "SlowSimulator" in registered_envs()
    env = make_env("SlowSimulator", {"cpu_substeps": 3, "latency_s": 0.0001})
    assert isinstance(env, SlowSimulator)
    assert (env.cpu_substeps, env.latency_s, env.max_episode_steps) == (3, 0.0001, 500)
    report = check_env("SlowSimulator", {"cpu_substeps": 3}, n_steps=100)
    assert report.episodes_finished >= 1 and report.mean_reward_per_step == 1.0
    cartpole = gymnasium.make("CartPole-v1")
    assert env.observation_space == cartpole.observation_space
    assert env.action_space == cartpole.action_space


def test_one_substep_is_cartpole_v1_step_for_step():
    ours, ours_flags = rollout(SlowSimulator({"cpu_substeps": 1}), 3, ACTIONS)
    theirs, theirs_flags = rollout(gymnasium.make("CartPole-v1"), 3, ACTIONS)
    assert ours_flags == theirs_flags and ours_flags[-1] == (True, False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_same_seed_and_actions_give_the_same_trajectory_whatever_the_latency():
    reference, flags = rollout(SlowSimulator({"cpu_substeps": 50}), 11, ACTIONS)
    again, again_flags = rollout(SlowSimulator({"cpu_substeps": 50}), 11, ACTIONS)
    waiting, waiting_flags = rollout(
        SlowSimulator({"cpu_substeps": 50, "latency_s": 0.0002}), 11, ACTIONS
    )
    np.testing.assert_array_equal(reference, again)
    np.testing.assert_array_equal(reference, waiting)
    assert flags == again_flags == waiting_flags
    other_seed, _ = rollout(SlowSimulator({"cpu_substeps": 50}), 12, ACTIONS)
    assert not np.array_equal(reference[0], other_seed[0])


def test_more_substeps_converge_to_the_exact_motion_with_error_about_one_over_n():
    # 20 alternating pushes (0.4 s): the pole stays up and chaos does not amplify the error.
    def trajectory(substeps):
        observations, flags = rollout(SlowSimulator({"cpu_substeps": substeps}), 0, [0, 1] * 10)
        assert len(flags) == 20 and not any(any(f) for f in flags)
        return observations.astype(np.float64)

    exact = trajectory(2000)
    errors = {n: np.abs(trajectory(n) - exact).max() for n in (1, 10, 100)}
    assert errors[1] > errors[10] > errors[100] > 0
    # Explicit Euler is first order: ten times the substeps, a tenth of the error.
    assert 5 < errors[1] / errors[10] < 20
    assert 5 < errors[10] / errors[100] < 20


def cpu_and_wall_per_step(env_config: dict, steps: int) -> tuple[float, float]:
    """(CPU seconds of this thread, wall seconds) per step, averaged over ``steps`` steps."""
    env = SlowSimulator(env_config)
    env.reset(seed=0)
    cpu, wall = time.thread_time(), time.perf_counter()
    for action in ACTIONS[:steps]:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return (time.thread_time() - cpu) / steps, (time.perf_counter() - wall) / steps


def test_cpu_cost_is_real_work_that_grows_in_proportion_to_the_substeps():
    # Thread CPU time, not wall time: other programs on the machine cannot inflate it.
    small, _ = cpu_and_wall_per_step({"cpu_substeps": 500}, 40)
    large, _ = cpu_and_wall_per_step({"cpu_substeps": 2000}, 40)
    assert 2.5 < large / small < 6, (small, large)  # 4x the substeps


def test_latency_costs_waiting_time_but_almost_no_cpu():
    cpu, wall = cpu_and_wall_per_step({"latency_s": 0.01}, 10)
    assert wall >= 0.01  # time.sleep waits at least as long as asked
    assert cpu < 0.1 * wall, (cpu, wall)


def test_latency_and_substeps_add_up():
    cpu, wall = cpu_and_wall_per_step({"cpu_substeps": 2000, "latency_s": 0.005}, 10)
    cpu_only, _ = cpu_and_wall_per_step({"cpu_substeps": 2000}, 10)
    assert wall >= 0.005 + cpu  # the wait and the work happen one after the other
    assert 0.5 < cpu / cpu_only < 2


def test_calibration_scales_with_the_cpu_time_asked_for():
    one_ms = calibrate_cpu_substeps(0.001)
    assert isinstance(one_ms, int) and one_ms > 10
    assert 1.4 < calibrate_cpu_substeps(0.002) / one_ms < 2.8
    assert calibrate_cpu_substeps(1e-12) == 1
    with pytest.raises(ValueError, match="such as 0.001 for 1 ms"):
        calibrate_cpu_substeps(0)


def test_episode_is_truncated_after_max_episode_steps():
    env = SlowSimulator({"max_episode_steps": 5})
    _, flags = rollout(env, 0, [0, 1, 0, 1, 0, 1, 0])
    assert flags == [(False, False)] * 4 + [(False, True)]


@pytest.mark.parametrize(
    "env_config, expected",
    [
        ({"cpu_substeps": 0}, r"'cpu_substeps'\] must be an int >= 1, got 0"),
        ({"cpu_substeps": 2.5}, "got 2.5"),
        ({"cpu_substeps": True}, "got True"),
        ({"latency_s": -0.001}, r"'latency_s'\] must be a number of seconds >= 0"),
        ({"latency_s": math.inf}, "got inf"),
        ({"latency_s": math.nan}, "got nan"),
        ({"latency_s": "2ms"}, "0.002 for 2 ms"),
        ({"max_episode_steps": 0}, r"'max_episode_steps'\] must be an int >= 1"),
        ({"latency": 0.002}, "Unknown env_config key 'latency'.*Did you mean 'latency_s'"),
    ],
)
def test_bad_settings_say_what_was_expected(env_config, expected):
    with pytest.raises(ValueError, match=expected):
        SlowSimulator(env_config)


def test_misuse_of_step_is_explained():
    env = SlowSimulator()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 \\(push left\\) or 1 \\(push right\\), got 2"):
        env.step(2)
    env = SlowSimulator({"max_episode_steps": 1})
    env.reset(seed=0)
    env.step(1)
    with pytest.raises(RuntimeError, match="after the episode ended.*call env.reset"):
        env.step(1)


@pytest.mark.slow
def test_ppo_tuned_for_cartpole_learns_the_simulator(tmp_path):
    import torch

    from course_lib.agents.ppo import PPOTrainer

    torch.set_num_threads(1)
    with open(TUNED_PPO) as file:
        (experiment,) = yaml.safe_load(file).values()
    config = {
        **experiment["config"],
        "env": "SlowSimulator",
        "env_config": {"cpu_substeps": 10},
        "seed": 0,
        "metrics_smoothing_episodes": 20,
        "logger_config": {"logdir": str(tmp_path)},
    }
    trainer = PPOTrainer(config=config)
    try:
        returns = []
        while len(returns) < 60 and not (returns and returns[-1] > 150):
            returns.append(trainer.train()["episode_reward_mean"])
    finally:
        trainer.stop()
    assert returns[-1] > 150, returns  # random actions average about 23
