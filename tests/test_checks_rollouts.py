"""Graders of lessons 08-10 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import checks
from course_lib.callbacks import DefaultCallbacks
from course_lib.checks import ray_tasks
from course_lib.exploration import Exploration
from course_lib.sample_batch import SampleBatch

# --- 7.1 parallel_training_step -----------------------------------------------------------------


@pytest.fixture
def short_rendezvous(monkeypatch):
    """Wrong answers make a worker's env wait alone until the rendezvous gives up; keep it short."""
    monkeypatch.setattr(ray_tasks, "RENDEZVOUS_TIMEOUT_S", 3.0)


def training_step_right(workers):
    import ray

    batch = SampleBatch.concat_samples(
        ray.get([w.sample.remote() for w in workers.remote_workers()])
    )
    policy = workers.local_worker().get_policy()
    result = policy.learn_on_batch(batch)
    weights = ray.put({"default_policy": policy.get_weights()})
    ray.get([w.set_weights.remote(weights) for w in workers.remote_workers()])
    return result


def test_training_step_accepts_the_tutorials_loop(ray_session, capsys):
    checks.check_parallel_training_step(training_step_right)
    assert "Exercise 8.1 passed" in capsys.readouterr().out


def test_training_step_detects_ray_get_in_the_loop(ray_session, short_rendezvous):
    def get_in_loop(workers):
        import ray

        samples = [ray.get(w.sample.remote()) for w in workers.remote_workers()]
        policy = workers.local_worker().get_policy()
        result = policy.learn_on_batch(SampleBatch.concat_samples(samples))
        weights = ray.put({"default_policy": policy.get_weights()})
        ray.get([w.set_weights.remote(weights) for w in workers.remote_workers()])
        return result

    with pytest.raises(checks.CheckFailed, match="ray.get-in-a-loop anti-pattern"):
        checks.check_parallel_training_step(get_in_loop)


def test_training_step_detects_a_missing_broadcast(ray_session):
    def no_broadcast(workers):
        import ray

        batch = SampleBatch.concat_samples(
            ray.get([w.sample.remote() for w in workers.remote_workers()])
        )
        return workers.local_worker().get_policy().learn_on_batch(batch)

    with pytest.raises(checks.CheckFailed, match="still has the old weights"):
        checks.check_parallel_training_step(no_broadcast)


def test_training_step_detects_one_worker_only(ray_session, short_rendezvous):
    def one_worker(workers):
        import ray

        batch = ray.get(workers.remote_workers()[0].sample.remote())
        return workers.local_worker().get_policy().learn_on_batch(batch)

    with pytest.raises(checks.CheckFailed, match="2 workers x 25 steps"):
        checks.check_parallel_training_step(one_worker)


# --- 8.1 DecayingBoltzmann ----------------------------------------------------------------------


class DecayingBoltzmannRight(Exploration):
    def __init__(
        self,
        action_space,
        *,
        initial_temperature=1.0,
        final_temperature=0.1,
        temperature_timesteps=1000,
        **kwargs,
    ):
        super().__init__(action_space, **kwargs)
        self.initial, self.final, self.steps = (
            initial_temperature,
            final_temperature,
            temperature_timesteps,
        )
        self.temperature = initial_temperature

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        inputs = action_distribution.inputs
        if not explore:
            return inputs.argmax(dim=-1), torch.zeros(len(inputs))
        self.temperature = self.initial + min(timestep / self.steps, 1.0) * (
            self.final - self.initial
        )
        dist = torch.distributions.Categorical(logits=inputs / self.temperature)
        actions = dist.sample()
        return actions, dist.log_prob(actions)

    def get_info(self):
        return {"cur_temperature": self.temperature}


class ConstantBoltzmann(DecayingBoltzmannRight):
    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        return super().get_exploration_action(
            action_distribution=action_distribution, timestep=0, explore=explore
        )


def test_decaying_boltzmann_accepts_a_correct_class(capsys):
    checks.check_decaying_boltzmann(DecayingBoltzmannRight)
    assert "Exercise 9.1 passed" in capsys.readouterr().out


def test_decaying_boltzmann_check_leaves_the_learners_random_streams_alone(capsys):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    checks.check_decaying_boltzmann(DecayingBoltzmannRight)
    assert torch.equal(torch.get_rng_state(), before)


def test_decaying_boltzmann_detects_a_temperature_that_never_decays():
    with pytest.raises(checks.CheckFailed, match="at timestep 500 the temperature should be"):
        checks.check_decaying_boltzmann(ConstantBoltzmann)


# --- 9.1 PoleAngleCallbacks ---------------------------------------------------------------------


class PoleAngleRight(DefaultCallbacks):
    def on_episode_start(self, *, episode, **kwargs):
        episode.user_data["pole_angles"] = []

    def on_episode_step(self, *, episode, **kwargs):
        episode.user_data["pole_angles"].append(abs(episode.last_observation_for()[2]))

    def on_episode_end(self, *, episode, **kwargs):
        episode.custom_metrics["pole_angle"] = float(np.mean(episode.user_data["pole_angles"]))
        episode.hist_data["pole_angles"] = episode.user_data["pole_angles"]


class PoleAngleSigned(PoleAngleRight):
    def on_episode_step(self, *, episode, **kwargs):
        episode.user_data["pole_angles"].append(episode.last_observation_for()[2])


class PoleAngleNeverReset(PoleAngleRight):
    def __init__(self):
        self.angles = []

    def on_episode_start(self, *, episode, **kwargs):
        episode.user_data["pole_angles"] = self.angles


def test_pole_angle_accepts_the_tutorials_callback(capsys):
    checks.check_pole_angle_callbacks(PoleAngleRight)
    assert "Exercise 10.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "callbacks, hint", [(PoleAngleSigned, "absolute value"), (PoleAngleNeverReset, "fresh list")]
)
def test_pole_angle_names_the_mistake(callbacks, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_pole_angle_callbacks(callbacks)
