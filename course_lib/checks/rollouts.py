"""Graders for notebooks/08_rollout_workers.ipynb and 10_callbacks.ipynb.

Whether the workers sampled in parallel is decided as in lesson 01's graders, by behaviour and not
by timing: each worker's env waits at its first step for the other worker's env at a rendezvous
actor. Sampled together, they meet at once; sampled one after another (``ray.get`` inside the
loop), the first waits alone until the rendezvous gives up, and says so.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

from . import ray_tasks
from ._common import CheckFailed, expect_type, passed, require_callable, require_ray
from ._learner_calls import call_learner
from .ray_tasks import Rendezvous, _wait_until_open

# How long your code may run before the check stops it. A right answer samples 50 steps on two
# workers and learns once (a second or two), or samples a few CartPole episodes with your
# callbacks (under a second); a slow laptop needs a few times that.
TIME_LIMIT_S = 60.0


def _cartpole(env_config):
    return gym.make("CartPole-v1", max_episode_steps=env_config.get("max_steps", 500))


class SamplingRendezvous(Rendezvous):
    """The rendezvous of lesson 01's graders, which also counts the envs that waited in vain."""

    def __init__(self, expected: int):
        super().__init__(expected)
        self.alone = 0

    def waited_alone(self) -> None:
        self.alone += 1

    def times_alone(self) -> int:
        return self.alone


class MeetAtFirstStep(gym.Wrapper):
    """A CartPole whose first ``step`` waits at ``gate`` until the other workers' envs arrive."""

    def __init__(self, env, gate, timeout_s: float):
        super().__init__(env)
        self._gate, self._timeout_s, self._arrived = gate, timeout_s, False

    def step(self, action):
        if not self._arrived:
            import ray

            self._arrived = True
            ray.get(self._gate.arrive.remote())
            if not _wait_until_open(self._gate, self._timeout_s):
                ray.get(self._gate.waited_alone.remote())
        return self.env.step(action)


def _meeting_cartpole(gate, timeout_s, env_config):
    return MeetAtFirstStep(_cartpole(env_config), gate, timeout_s)


def check_parallel_training_step(parallel_training_step) -> None:
    """Exercise 8.1: sample on every remote worker, concat, learn on the local policy, broadcast
    weights."""
    require_callable(
        "check_parallel_training_step", "parallel_training_step", parallel_training_step
    )
    require_ray("check_parallel_training_step")
    import ray

    from course_lib.evaluation import WorkerSet
    from course_lib.policy import PGTorchPolicy

    timeout_s = ray_tasks.RENDEZVOUS_TIMEOUT_S
    gate = ray.remote(num_cpus=0)(SamplingRendezvous).remote(2)
    config = {
        "num_envs_per_worker": 1,
        "rollout_fragment_length": 25,
        "seed": 0,
        "model": {"fcnet_hiddens": [16]},
        "num_cpus_per_worker": 0.5,
    }
    workers = WorkerSet(
        env_creator=functools.partial(_meeting_cartpole, gate, timeout_s),
        policy_class=PGTorchPolicy,
        trainer_config=config,
        num_workers=2,
    )
    try:
        policy = workers.local_worker().get_policy()
        seen = []
        learn = policy.learn_on_batch

        def recording_learn(batch):
            seen.append(batch)
            return learn(batch)

        policy.learn_on_batch = recording_learn
        before = policy.get_weights()
        result = call_learner(
            "8.1",
            "parallel_training_step(workers)",
            parallel_training_step,
            workers,
            seconds=TIME_LIMIT_S + timeout_s,
            hint="a ray.get on a task or an actor call that never finishes, or a loop that never "
            "ends",
        )
        if len(seen) != 1:
            raise CheckFailed(
                "8.1",
                f"the local policy learned {len(seen)} times; call "
                "learn_on_batch once, on the concatenated batch.",
            )
        batch = seen[0]
        if batch.count != 50:
            raise CheckFailed(
                "8.1",
                f"the policy learned on {batch.count} rows; 2 workers x 25 steps = 50. "
                "Gather sample.remote() from every remote worker and concat them.",
            )
        if len({int(e) for e in batch["eps_id"]}) < 2:
            raise CheckFailed(
                "8.1",
                "all rows came from one episode stream; sample "
                "from each worker in workers.remote_workers().",
            )
        if ray.get(gate.times_alone.remote()):
            raise CheckFailed(
                "8.1",
                "the workers sampled one after the other, never both at once. This is the "
                "ray.get-in-a-loop anti-pattern: ray.get(w.sample.remote()) inside the loop waits "
                "for each worker before the next one starts. Call sample.remote() on every worker "
                "first, then ray.get the list of refs once.",
            )
        after = policy.get_weights()
        if all(np.array_equal(before[k], after[k]) for k in before):
            raise CheckFailed(
                "8.1",
                "the local policy's weights did not change: call "
                "learn_on_batch on the local worker's policy.",
            )
        for index, remote in enumerate(workers.remote_workers(), start=1):
            remote_weights = ray.get(remote.get_weights.remote())["default_policy"]
            if not all(np.array_equal(after[k], remote_weights[k]) for k in after):
                raise CheckFailed(
                    "8.1",
                    f"remote worker {index} still has the old weights. Broadcast: "
                    "weights = ray.put({'default_policy': policy.get_weights()}), then "
                    "w.set_weights.remote(weights) for every remote worker (and wait for it).",
                )
        example = "what learn_on_batch returned (a dict with 'learner_stats')"
        result = expect_type("8.1", "parallel_training_step", result, dict, example)
        if "learner_stats" not in result:
            raise CheckFailed("8.1", f"return {example}; got a dict with keys {list(result)[:6]}.")
    finally:
        workers.stop()
        ray.kill(gate)
    passed(
        "8.1",
        "2 workers sampled 50 steps in parallel, the policy "
        "learned once, and both workers got the new weights.",
    )


def check_pole_angle_callbacks(PoleAngleCallbacks) -> None:
    """Exercise 10.1: the 2021 RLlib tutorial's pole-angle metric: mean ``|angle|`` per episode,
    and the angles as hist data."""
    from course_lib.callbacks import DefaultCallbacks
    from course_lib.evaluation import RolloutWorker, collect_episodes
    from course_lib.policy import PGTorchPolicy

    if not (
        isinstance(PoleAngleCallbacks, type) and issubclass(PoleAngleCallbacks, DefaultCallbacks)
    ):
        raise CheckFailed(
            "10.1",
            "PoleAngleCallbacks should be a class that subclasses "
            f"DefaultCallbacks; got {PoleAngleCallbacks!r:.60}.",
        )
    config = {
        "num_envs_per_worker": 2,
        "rollout_fragment_length": 60,
        "seed": 1,
        "model": {"fcnet_hiddens": [8]},
        "callbacks": PoleAngleCallbacks,
        "batch_mode": "complete_episodes",
    }

    def sample_with_your_callbacks():
        worker = RolloutWorker(env_creator=_cartpole, policy_class=PGTorchPolicy, config=config)
        return worker, worker.sample()

    worker, batch = call_learner(
        "10.1",
        "sampling with your PoleAngleCallbacks",
        sample_with_your_callbacks,
        seconds=TIME_LIMIT_S,
        hint="a loop in one of your callbacks that never ends",
    )
    episodes = collect_episodes(worker)
    pieces = {int(p["eps_id"][0]): p for p in batch.split_by_episode()}
    if len(episodes) < 3:
        raise CheckFailed(
            "10.1", "fewer episodes finished than expected; do your callbacks end episodes early?"
        )
    expected = sorted(float(np.mean(np.abs(p["new_obs"][:, 2]))) for p in pieces.values())
    got = [e.custom_metrics.get("pole_angle") for e in episodes]
    if any(g is None for g in got):
        raise CheckFailed(
            "10.1",
            "an episode ended without custom_metrics['pole_angle']; set it in on_episode_end.",
        )
    got = sorted(float(g) for g in got)
    if np.allclose(got, expected, atol=1e-6):
        hist = [len(e.hist_data.get("pole_angles", [])) for e in episodes]
        if sorted(hist) != sorted(p.count for p in pieces.values()):
            raise CheckFailed(
                "10.1",
                "hist_data['pole_angles'] should hold one angle per step of the episode; "
                f"lengths {sorted(hist)}, steps {sorted(p.count for p in pieces.values())}.",
            )
        passed(
            "10.1",
            f"{len(episodes)} episodes report their "
            "mean |pole angle| and every angle as hist data.",
        )
        return
    signed = sorted(float(np.mean(p["new_obs"][:, 2])) for p in pieces.values())
    if np.allclose(got, signed, atol=1e-6):
        raise CheckFailed(
            "10.1", "take the absolute value of the angle: left and right tilts would cancel out."
        )
    before_step = sorted(float(np.mean(np.abs(p["obs"][:, 2]))) for p in pieces.values())
    if np.allclose(got, before_step, atol=1e-6):
        raise CheckFailed(
            "10.1",
            "you recorded the angle before each step; in on_episode_step, "
            "episode.last_observation_for() is the observation after the step.",
        )
    raise CheckFailed(
        "10.1",
        f"per-episode mean |angle| should be {[round(x, 4) for x in expected[:3]]}..., got "
        f"{[round(x, 4) for x in got[:3]]}.... Start a fresh list in on_episode_start "
        "(episode.user_data['pole_angles'] = []), append abs(obs[2]) "
        "in on_episode_step, and average in on_episode_end.",
    )
