"""A3C (course_lib.agents.a3c.a3c): A2C's policy with AsyncGradients + ApplyGradients(update_all=
False), learning CartPole on two Ray workers."""

from __future__ import annotations

import pytest
import ray

from course_lib.agents import get_trainer_class
from course_lib.agents.a3c import A3CTrainer
from course_lib.agents.a3c.a3c import execution_plan

RANDOM_RETURN = 22  # CartPole-v1, uniformly random actions


def test_a3c_is_registered_with_its_plan():
    assert get_trainer_class("A3C") is A3CTrainer
    assert A3CTrainer.build_args["execution_plan"] is execution_plan
    assert A3CTrainer._default_config["num_workers"] == 2


@pytest.mark.slow
def test_a3c_learns_cartpole_on_two_workers(ray_session, tmp_path):
    """Clearly above random within 30k env steps: a 20-episode mean of at least 150 (measured:
    150 after 12-16k steps, 300 after 26-28k, seeds 0 and 1; asynchrony varies the order)."""
    trainer = A3CTrainer(
        config={
            "env": "CartPole-v1",
            "seed": 0,
            "metrics_smoothing_episodes": 20,
            "logger_config": {"logdir": str(tmp_path)},
        }
    )
    try:
        workers = trainer.workers.remote_workers()
        assert len(workers) == 2
        means = []
        for _ in range(15):
            result = trainer.train()
            means.append(result["episode_reward_mean"])
            if means[-1] >= 150:
                break
        # Each iteration applied gradients until 2,000 env steps were sampled.
        assert result["timesteps_total"] >= 2000 * len(means)
        # Both workers' gradients were applied: each got weights back with the step count then.
        timesteps = ray.get(
            [w.apply.remote(lambda w: w.get_policy().global_timestep) for w in workers]
        )
        assert all(0 < t <= result["timesteps_total"] for t in timesteps), timesteps
    finally:
        trainer.stop()
    assert means[-1] >= max(150, 5 * RANDOM_RETURN), (
        f"A3C's 20-episode mean returns per 2,000 steps: {[round(m, 1) for m in means]}"
    )
