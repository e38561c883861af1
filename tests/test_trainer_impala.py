"""IMPALA (course_lib.agents.impala): the learner thread (queue, stop, failures), the V-trace loss
against a hand computation, the asynchronous plan on two Ray workers, and CartPole learnt."""

from __future__ import annotations

import pathlib
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import ray
import torch
import yaml
from test_vtrace import reference_vtrace

from course_lib.agents import get_trainer_class
from course_lib.agents.impala import DEFAULT_CONFIG, IMPALATorchPolicy, IMPALATrainer
from course_lib.agents.impala.impala import (
    BroadcastUpdateLearnerWeights,
    execution_plan,
    validate_config,
)
from course_lib.execution import (
    LearnerThread,
    LocalIterator,
    get_shared_metrics,
    run_with_learner_thread,
)
from course_lib.sample_batch import SampleBatch

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
LEARNER_THREAD_NAME = "course_lib-learner"


def wait_for(condition, timeout_s=20.0):
    """Poll until ``condition()`` holds; False if it never did (a failure, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def learner_threads_alive():
    return [t for t in threading.enumerate() if t.name == LEARNER_THREAD_NAME and t.is_alive()]


# --- registration and config ------------------------------------------------------------------


def test_impala_is_registered_with_its_plan():
    assert get_trainer_class("IMPALA") is IMPALATrainer
    assert IMPALATrainer.build_args["execution_plan"] is execution_plan
    assert IMPALATrainer.build_args["default_policy"] is IMPALATorchPolicy
    assert DEFAULT_CONFIG["num_workers"] == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"vectorize_envs": True}, "vectorize_envs=True"),
        ({"batch_mode": "complete_episodes"}, "batch_mode='complete_episodes'"),
        ({"model": {"use_lstm": True}}, "use_lstm=True"),
        ({"broadcast_interval": 0}, "broadcast_interval"),
    ],
)
def test_settings_that_break_the_fragment_layout_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        validate_config({**DEFAULT_CONFIG, **change})


# --- the learner thread, with a stand-in worker (no Ray) ----------------------------------------


class RecordingWorker:
    """Learns nothing: records each batch's size and the torch threads it ran with; can fail or
    wait for a gate."""

    def __init__(self, error=None, gate=None):
        self.error, self.gate = error, gate
        self.sizes, self.torch_threads = [], []

    def learn_on_batch(self, batch):
        if self.gate is not None:
            self.gate.wait()
        self.torch_threads.append(torch.get_num_threads())
        if self.error is not None:
            raise self.error
        self.sizes.append(batch.count)
        return {"default_policy": {"learner_stats": {"loss": float(batch.count)}}}


def batch_of(rows):
    return SampleBatch(obs=np.zeros((rows, 4), np.float32))


def test_learner_thread_learns_each_queued_batch_and_reports_it():
    worker = RecordingWorker()
    learner = LearnerThread(worker, max_queue_size=4)
    learner.start()
    try:
        learner.add_batch(batch_of(3))
        learner.add_batch(batch_of(5))
        results = []
        assert wait_for(lambda: results.extend(learner.results()) or len(results) == 2)
        assert results == [
            (3, {"default_policy": {"loss": 3.0}}),
            (5, {"default_policy": {"loss": 5.0}}),
        ]
        assert learner.weights_version == 2
        stats = learner.stats()
        assert stats["learner_queue"]["capacity"] == 4
        assert stats["timing_breakdown"]["learner_learn_time_ms"] >= 0
        # torch in the learner thread uses the process's setting: one intra-op thread.
        assert worker.torch_threads == [1, 1] == [torch.get_num_threads()] * 2
    finally:
        learner.stop()
    assert not learner.is_alive()


def test_stop_ends_the_thread_while_it_waits_for_batches():
    learner = LearnerThread(RecordingWorker())
    learner.start()
    assert wait_for(learner.is_alive)
    learner.stop()
    assert not learner.is_alive() and learner not in threading.enumerate()


def test_an_exception_in_the_learner_is_raised_in_the_driver():
    error = ValueError("the loss is nan")
    learner = LearnerThread(RecordingWorker(error=error))
    learner.start()
    learner.add_batch(batch_of(2))
    learner.join(timeout=20)  # the failure ends the thread...
    assert not learner.is_alive()
    message = "learner thread failed in learn_on_batch with ValueError: the loss is nan"
    with pytest.raises(RuntimeError, match=message) as raised:
        learner.results()  # ... and the driver hears of it, with the original as the cause
    assert raised.value.__cause__ is error
    with pytest.raises(RuntimeError, match=message):
        learner.add_batch(batch_of(2))


def test_add_batch_refuses_a_learner_that_is_not_running():
    learner = LearnerThread(RecordingWorker())
    with pytest.raises(RuntimeError, match="not running"):
        learner.add_batch(batch_of(1))


def test_a_full_queue_makes_the_driver_wait_until_the_learner_takes_a_batch():
    gate = threading.Event()
    worker = RecordingWorker(gate=gate)
    learner = LearnerThread(worker, max_queue_size=1)
    learner.start()
    try:
        learner.add_batch(batch_of(1))  # taken by the learner, which waits at the gate
        assert wait_for(lambda: learner.inqueue.empty())
        learner.add_batch(batch_of(2))  # fills the queue
        third = threading.Thread(target=learner.add_batch, args=(batch_of(3),))
        third.start()
        third.join(timeout=0.3)
        assert third.is_alive(), "add_batch returned although the queue was full"
        gate.set()
        third.join(timeout=20)
        assert not third.is_alive()
        assert wait_for(lambda: worker.sizes == [1, 2, 3])
        assert learner.stats()["learner_queue"]["size_max"] == 1
    finally:
        gate.set()
        learner.stop()


def test_the_plan_starts_the_learner_at_its_first_pull_and_stops_it_when_closed():
    learner = LearnerThread(RecordingWorker())
    items = run_with_learner_thread(LocalIterator([1, 2, 3]), learner)
    assert learner.ident is None  # built, not pulled: no thread
    assert next(items) == 1 and learner.is_alive()
    items.close()
    assert not learner.is_alive()

    never_pulled = LearnerThread(RecordingWorker())
    run_with_learner_thread(LocalIterator([1]), never_pulled).close()
    assert never_pulled.ident is None


# --- weights back to the workers, and how stale they are ---------------------------------------


class StubActor:
    """Records what ``set_weights.remote`` was sent."""

    def __init__(self):
        self.received = []
        self.set_weights = self  # so that actor.set_weights.remote(...) lands in remote()

    def remote(self, weights_ref, global_vars):
        self.received.append(ray.get(weights_ref)["default_policy"]["version"])


class StubLearner:
    weights_version = 0


class StubWorkers:
    """Two remote workers; the local policy's weights name the learner's version."""

    def __init__(self, learner):
        self.actors = [StubActor(), StubActor()]
        self.learner = learner

    def remote_workers(self):
        return list(self.actors)

    def local_worker(self):
        return self

    def get_weights(self):
        return {"default_policy": {"version": self.learner.weights_version}}


def broadcast_run(arrivals, broadcast_interval, num_async):
    """Feed batches from ``arrivals`` ``[(worker index, learner version), ...]`` through the
    operator; returns the workers, each batch's policy lag and the final info."""
    learner = StubLearner()
    workers = StubWorkers(learner)
    broadcast = BroadcastUpdateLearnerWeights(
        workers, learner, broadcast_interval=broadcast_interval, num_async=num_async
    )

    def batches():
        for index, version in arrivals:
            get_shared_metrics().current_actor = workers.actors[index]
            learner.weights_version = version
            yield index

    stream = LocalIterator(batches).for_each(broadcast)
    lags = []
    for _ in arrivals:
        next(stream)
        lags.append(broadcast.lags[-1])
    return workers, lags, stream.shared_metrics.info, stream.shared_metrics.counters


def test_weights_go_back_to_the_sender_and_lag_counts_requests_in_flight(ray_session):
    # Two requests in flight per worker: the one sent before new weights still uses the old.
    workers, lags, info, counters = broadcast_run(
        [(0, 0), (1, 3), (1, 5), (1, 6), (0, 6)], broadcast_interval=1, num_async=2
    )
    assert workers.actors[1].received == [3, 5, 6]  # the newest weights, to the sender only
    assert workers.actors[0].received == [6]  # nothing new at version 0
    assert lags == [0, 3, 5, 3, 6]  # worker 1's second batch was requested before version 3
    assert info["policy_lag"] == {"mean": 17 / 5, "max": 6}
    assert info["weights_version_gap"] == {"worker_1": 0, "worker_2": 0}
    assert counters["num_weight_broadcasts"] == 4


def test_broadcast_interval_sends_every_nth_batch_of_a_worker(ray_session):
    arrivals = [(0, v) for v in (1, 2, 3, 4, 5)]
    workers, lags, info, _ = broadcast_run(arrivals, broadcast_interval=2, num_async=1)
    assert workers.actors[0].received == [2, 4]
    assert lags == [1, 2, 1, 2, 1]
    assert info["weights_version_gap"] == {"worker_1": 1, "worker_2": 5}


# --- the V-trace loss against a hand computation -------------------------------------------------

GAMMA = 0.9
POLICY_CONFIG = {
    "model": {"fcnet_hiddens": [16]},
    "seed": 0,
    "gamma": GAMMA,
    "rollout_fragment_length": 4,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 0.5,
}


def model_outputs(policy, obs):
    """log pi(a|obs) for both actions (B, 2), entropy (B,) and V (B,), as float64 numpy."""
    with torch.no_grad():
        logits, _ = policy.model({"obs": torch.as_tensor(obs)})
        values = policy.model.value_function()
        logp = torch.log_softmax(logits, dim=1)
        entropy = -(logp.exp() * logp).sum(dim=1)
    return logp.double().numpy(), entropy.double().numpy(), values.double().numpy()


def two_fragments(policy, eps_ids, steps, terminateds, truncateds, seed=0):
    """Two fragments of four rows (obs, new_obs, actions, rewards, flags) acted by ``policy``.

    Within an episode ``new_obs`` of a row is the next row's ``obs``.
    """
    rng = np.random.default_rng(seed)
    count = len(eps_ids)
    obs = rng.uniform(-1, 1, (count, 4)).astype(np.float32)
    new_obs = rng.uniform(-1, 1, (count, 4)).astype(np.float32)
    for i in range(count - 1):
        if eps_ids[i + 1] == eps_ids[i]:
            new_obs[i] = obs[i + 1]
    actions, _, extra = policy.compute_actions(obs)
    return SampleBatch(
        obs=obs,
        new_obs=new_obs,
        actions=actions,
        rewards=rng.normal(size=count).astype(np.float32),
        terminateds=np.array(terminateds),
        truncateds=np.array(truncateds),
        eps_id=np.array(eps_ids),
        t=np.array(steps),
        action_logp=extra["action_logp"],
    )


def test_on_policy_value_targets_are_returns_cut_at_episode_ends_and_bootstrapped():
    """Rows 0-3: an episode terminates at row 1, the next one runs past the fragment's end.
    Rows 4-7: a time limit truncates an episode at row 5, the next runs past the end."""
    policy = IMPALATorchPolicy(OBS_SPACE, ACT_SPACE, POLICY_CONFIG)
    batch = two_fragments(
        policy,
        eps_ids=[7, 7, 8, 8, 9, 9, 10, 10],
        steps=[3, 4, 0, 1, 7, 8, 0, 1],
        terminateds=[False, True, False, False, False, False, False, False],
        truncateds=[False, False, False, False, False, True, False, False],
    )
    logp_all, entropy, values = model_outputs(policy, batch["obs"])
    _, _, next_values = model_outputs(policy, batch["new_obs"])
    logp = logp_all[np.arange(8), batch["actions"]]
    rewards = batch["rewards"].astype(np.float64)
    # The discounted return from each row to its episode's end or the fragment's end; bootstrap
    # with V(new_obs) wherever the episode goes on (rows 3, 5 and 7), 0 where it terminated.
    returns = np.zeros(8)
    for i in reversed(range(8)):
        if batch["terminateds"][i]:
            returns[i] = rewards[i]
        elif i % 4 == 3 or batch["truncateds"][i]:
            returns[i] = rewards[i] + GAMMA * next_values[i]
        else:
            returns[i] = rewards[i] + GAMMA * returns[i + 1]

    stats = policy.learn_on_batch(batch)["learner_stats"]

    advantages = returns - values
    pi_loss = -np.mean(logp * advantages)
    vf_loss = 0.5 * np.mean(advantages**2)
    assert stats["policy_loss"] == pytest.approx(pi_loss, rel=1e-4, abs=1e-6)
    assert stats["vf_loss"] == pytest.approx(vf_loss, rel=1e-4, abs=1e-6)
    assert stats["entropy"] == pytest.approx(entropy.mean(), rel=1e-5)
    assert stats["total_loss"] == pytest.approx(
        pi_loss + 0.5 * vf_loss - 0.01 * entropy.mean(), rel=1e-4, abs=1e-6
    )
    assert stats["mean_rho"] == pytest.approx(1.0, abs=1e-5)


def test_off_policy_loss_is_the_papers_vtrace_with_the_next_fragment_as_bootstrap():
    """One episode's two consecutive fragments (one env per worker): each is its own trace,
    bootstrapped with V of the state after its last step."""
    policy = IMPALATorchPolicy(OBS_SPACE, ACT_SPACE, POLICY_CONFIG)
    batch = two_fragments(
        policy,
        eps_ids=[1] * 8,
        steps=list(range(10, 18)),
        terminateds=[False] * 8,
        truncateds=[False] * 8,
        seed=1,
    )
    rng = np.random.default_rng(2)
    batch["action_logp"] = (batch["action_logp"] + rng.normal(0, 0.5, 8)).astype(np.float32)
    logp_all, _, values = model_outputs(policy, batch["obs"])
    _, _, next_values = model_outputs(policy, batch["new_obs"])
    logp = logp_all[np.arange(8), batch["actions"]]

    def time_major(x):
        return np.asarray(x, np.float64).reshape(2, 4).T

    vs, advantages = reference_vtrace(
        time_major(logp - batch["action_logp"]),
        np.full((4, 2), GAMMA),
        time_major(batch["rewards"]),
        time_major(values),
        next_values[[3, 7]],  # V of the state after each fragment's last step
        1.0,
        1.0,
        1.0,
    )
    stats = policy.learn_on_batch(batch)["learner_stats"]
    assert stats["policy_loss"] == pytest.approx(
        -np.mean(time_major(logp) * advantages), rel=1e-4, abs=1e-6
    )
    assert stats["vf_loss"] == pytest.approx(
        0.5 * np.mean((vs - time_major(values)) ** 2), rel=1e-4, abs=1e-6
    )
    assert stats["mean_rho"] == pytest.approx(np.exp(logp - batch["action_logp"]).mean(), rel=1e-4)


def test_a_batch_that_is_not_whole_fragments_is_refused():
    policy = IMPALATorchPolicy(OBS_SPACE, ACT_SPACE, POLICY_CONFIG)
    batch = two_fragments(policy, [1] * 8, list(range(8)), [False] * 8, [False] * 8)
    with pytest.raises(ValueError, match="rollout_fragment_length=4 steps, but it has 6 rows"):
        policy.learn_on_batch(batch[:6])
    order = np.array([0, 2, 1, 3, 4, 5, 6, 7])
    shuffled = SampleBatch({name: column[order] for name, column in batch.items()})
    with pytest.raises(ValueError, match="not consecutive steps"):
        policy.learn_on_batch(shuffled)


def test_the_policy_lock_makes_other_threads_wait_for_the_learner():
    policy = IMPALATorchPolicy(OBS_SPACE, ACT_SPACE, POLICY_CONFIG)
    reader = threading.Thread(target=policy.get_weights)
    with policy.model_lock:  # as learn_on_batch holds it
        reader.start()
        reader.join(timeout=0.3)
        assert reader.is_alive(), "get_weights ran while the model was locked"
    reader.join(timeout=20)
    assert not reader.is_alive()


# --- the trainer ---------------------------------------------------------------------------------


def test_without_remote_workers_impala_learns_synchronously_on_policy(tmp_path):
    trainer = IMPALATrainer(
        config={
            "env": "CartPole-v1",
            "num_workers": 0,
            "seed": 0,
            "rollout_fragment_length": 20,
            "train_batch_size": 100,
            "timesteps_per_iteration": 200,
            "logger_config": {"logdir": str(tmp_path)},
        }
    )
    try:
        result = trainer.train()
    finally:
        trainer.stop()
    assert result["info"]["num_steps_trained"] == result["timesteps_total"] == 200
    stats = result["info"]["learner"]["default_policy"]
    assert stats["mean_rho"] == pytest.approx(1.0, abs=1e-5)  # the policy sampled its own batch


def test_impala_runs_its_plan_on_two_workers_and_a_learner_failure_stops_it(ray_session, tmp_path):
    config = {
        "env": "CartPole-v1",
        "seed": 0,
        "rollout_fragment_length": 20,
        "train_batch_size": 100,
        "timesteps_per_iteration": 1000,
        "learner_queue_size": 3,
        "logger_config": {"logdir": str(tmp_path)},
    }
    trainer = IMPALATrainer(config=config)
    try:
        workers = trainer.workers.remote_workers()
        assert len(workers) == 2
        for _ in range(2):
            result = trainer.train()
        info = result["info"]
        assert 0 < info["num_steps_trained"] <= result["timesteps_total"]
        assert info["num_steps_trained"] % 100 == 0  # whole train batches
        assert "vf_loss" in info["learner"]["default_policy"]
        assert info["learner_queue"]["capacity"] == 3
        assert set(info["timing_breakdown"]) >= {"learner_learn_time_ms", "learner_wait_time_ms"}
        assert 0 <= info["policy_lag"]["mean"] <= info["policy_lag"]["max"]
        assert set(info["weights_version_gap"]) == {"worker_1", "worker_2"}
        assert info["num_weight_broadcasts"] >= 1
        # Weights went back with the sampled-step count of the moment.
        timesteps = ray.get(
            [w.apply.remote(lambda w: w.get_policy().global_timestep) for w in workers]
        )
        assert any(0 < t <= result["timesteps_total"] for t in timesteps), timesteps
        assert learner_threads_alive()

        def broken_learn_on_batch(samples):
            raise ValueError("this loss always fails")

        trainer.get_policy().learn_on_batch = broken_learn_on_batch
        with pytest.raises(RuntimeError, match="ValueError: this loss always fails"):
            trainer.train()
        assert not learner_threads_alive()  # the failed plan stopped its thread
    finally:
        trainer.stop()
    assert not learner_threads_alive()


TUNED_EXAMPLE = pathlib.Path(__file__).parents[1] / "tuned_examples" / "impala-cartpole.yaml"
BUDGET = 250_000  # env steps


def train_to_475(experiment: dict, seed: int, logdir: str) -> tuple[dict, list[int]]:
    """Train the tuned example until a 20-episode mean of 475 or BUDGET env steps."""
    config = {**experiment["config"], "seed": seed, "logger_config": {"logdir": logdir}}
    trainer = IMPALATrainer(config=config, env=experiment["env"])
    means = []
    try:
        assert len(trainer.workers.remote_workers()) == 2
        while True:
            result = trainer.train()
            means.append(round(result["episode_reward_mean"]))
            if means[-1] >= 475 or result["timesteps_total"] >= BUDGET:
                return result, means
    finally:
        trainer.stop()


@pytest.mark.slow
def test_impala_learns_cartpole_on_two_workers(ray_session, tmp_path):
    """tuned_examples/impala-cartpole.yaml reaches a 20-episode mean return of 475 within 250k
    env steps on 2 Ray workers. Measured on 2 cores: 36-148k steps (median 68k) over 70 runs;
    seed 0, run three times, 124k, 76k and 148k; seed 1 64k, 56k and 88k. The asynchronous
    order, and so the run, changes from run to run with the machine's load, and a run can still
    collapse onto one action (1 of 6 final checks in the full suite's company): a second seed
    gets one more try, and one of the two must reach 475."""
    [experiment] = yaml.safe_load(TUNED_EXAMPLE.read_text()).values()
    assert experiment["stop"]["timesteps_total"] == BUDGET
    tries = []
    for seed in (0, 1):
        result, means = train_to_475(experiment, seed, str(tmp_path / f"seed{seed}"))
        tries.append(f"seed {seed}: {means}, policy lag {result['info']['policy_lag']}")
        if result["episode_reward_mean"] >= 475:
            break
    assert result["episode_reward_mean"] >= 475, (
        "IMPALA's 20-episode mean returns per 4,000 steps: " + "; ".join(tries)
    )
