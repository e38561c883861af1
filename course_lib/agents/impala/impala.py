"""IMPALA: actors that never wait, one learner that never waits, and V-trace in between.

The rollout workers (actors) sample without pause; each batch goes to the driver the moment it
is ready (``ParallelRollouts(mode="async")``), fragments are concatenated into train batches,
and a learner thread in the trainer's process learns on them one after the other
(``LearnerThread``, course_lib/execution/learner_thread.py). The worker that sent a batch gets the
learner's newest weights back, every ``broadcast_interval`` of its batches; meanwhile it samples
with the weights it has, so its experience is a few updates stale. V-trace
(impala_torch_policy.py) corrects for that, up to a point: results report the staleness as
``info["policy_lag"]``, and tuned_examples/impala-cartpole.yaml shows what too much of it does.

Compared with A3C (a3c.py), the workers send experience, not gradients: the learner does all the
gradient work on large batches, which suits one fast learner (a GPU) fed by many cheap actors.
Compared with A2C/PPO, nobody waits for the slowest worker; the price is off-policy data.

``num_workers: 0`` works, synchronously: the trainer's own worker samples and then learns, in
one thread (A2C's plan with IMPALA's loss, on-policy, so V-trace gives n-step returns). A
learner thread would gain nothing there: the one policy would have to take turns between
sampling and learning anyway. Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

from collections import deque

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.impala.impala_torch_policy import IMPALATorchPolicy
from course_lib.agents.trainer import default_execution_plan
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import (
    STEPS_SAMPLED_COUNTER,
    WORKER_UPDATE_TIMER,
    ConcatBatches,
    Enqueue,
    LearnerThread,
    ParallelRollouts,
    RecordLearnerResults,
    StandardMetricsReporting,
    get_shared_metrics,
    run_with_learner_thread,
)
from course_lib.validation import require_whole_number

# IMPALA's settings, in one place: IMPALATorchPolicy reads its defaults from this dict too.
# Most are RLlib 2021's defaults; tuned_examples/impala-cartpole.yaml learns CartPole faster.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "gamma": 0.99,
    # V-trace's truncation of the importance weights: rho_bar (which policy's value V-trace
    # learns; 1.0 is the paper's choice) and the one in the policy gradient's advantages.
    "vtrace_clip_rho_threshold": 1.0,
    "vtrace_clip_pg_rho_threshold": 1.0,
    "vf_loss_coeff": 0.5,
    "entropy_coeff": 0.01,
    "grad_clip": 40.0,
    "lr": 5e-4,
    "model": {"fcnet_hiddens": [64, 64]},
    # === The trainer's settings ===
    "num_workers": 2,
    "num_envs_per_worker": 1,
    "rollout_fragment_length": 50,
    "train_batch_size": 500,
    # Sample requests each worker has in flight: 2 lets it start the next fragment while the
    # driver is still handling the last one, but that fragment samples with older weights.
    "max_sample_requests_in_flight_per_worker": 2,
    # A worker gets new weights once every this many of its batches (1: after each one).
    "broadcast_interval": 1,
    # Train batches waiting for the learner; when full, the driver stops taking samples.
    "learner_queue_size": 16,
    # A training iteration lasts until this many env steps were sampled.
    "timesteps_per_iteration": 5000,
}


def validate_config(config: dict) -> None:
    """Refuse settings whose batches are not fragments of ``rollout_fragment_length`` steps."""
    require_whole_number(config["broadcast_interval"], '"broadcast_interval"', minimum=1)
    problems = []
    if config["batch_mode"] != "truncate_episodes":
        problems.append(f"batch_mode={config['batch_mode']!r} (use 'truncate_episodes')")
    if config["vectorize_envs"]:
        problems.append("vectorize_envs=True (its envs' fragments differ in length; use False)")
    if config["multiagent"]["policies"]:
        problems.append("a multi-agent config (multiagent.policies; use PPO or A2C)")
    if config["model"].get("use_lstm"):
        problems.append("use_lstm=True (feed-forward models only)")
    if problems:
        raise ValueError(
            "IMPALA's loss reads each batch as fragments of rollout_fragment_length consecutive "
            f"steps of one env, which these settings do not give: {'; '.join(problems)}."
        )


class BroadcastUpdateLearnerWeights:
    """For ``.for_each`` on async rollouts: the learner's newest weights go back to the worker
    that sent this batch, once every ``broadcast_interval`` of its batches; records staleness.

    ``policy_lag`` of a batch: learner updates between the weights it was sampled with and the
    learner's weights when it arrives (then it waits in the learner's queue: about
    ``info["learner_queue"]["size_mean"]`` updates more). Exact: a worker runs its calls in
    order, and ``gather_async`` sends its next sample request only after its last batch went
    through here, so each request samples with the last weights sent before it. This operator
    keeps, per worker, the version behind each of its ``num_async`` requests in flight.

    Reported in ``info["policy_lag"]`` (mean and max over the last 100 batches) and
    ``info["weights_version_gap"]`` (how many updates each worker's weights are behind now,
    ``{"worker_1": 2, ...}``); ``info["num_weight_broadcasts"]`` counts the sends. The version is
    read before the weights, so weights are never older than the version recorded for them.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, workers, learner: LearnerThread, *, broadcast_interval: int, num_async: int):
        self.workers, self.learner = workers, learner
        self.broadcast_interval = broadcast_interval
        self.worker_names = {w: f"worker_{i}" for i, w in enumerate(workers.remote_workers(), 1)}
        # The plan starts every worker on the local worker's weights: version 0.
        self.sent_version = dict.fromkeys(self.worker_names, 0)
        self.batches_since_sent = dict.fromkeys(self.worker_names, 0)
        # Per worker, the weights version behind each of its requests in flight, oldest first.
        self.in_flight = {w: deque([0] * num_async) for w in self.worker_names}
        self.lags: deque[int] = deque(maxlen=100)
        self._weights_ref, self._weights_ref_version = None, None

    def __call__(self, batch):
        import ray

        metrics = get_shared_metrics()
        actor = metrics.current_actor
        version = self.learner.weights_version
        self.lags.append(version - self.in_flight[actor].popleft())
        self.batches_since_sent[actor] += 1
        if (
            self.batches_since_sent[actor] >= self.broadcast_interval
            and version > self.sent_version[actor]
        ):
            with metrics.timers[WORKER_UPDATE_TIMER]:
                if self._weights_ref_version != version:  # one ray.put per version, not per send
                    weights = self.workers.local_worker().get_weights()
                    self._weights_ref, self._weights_ref_version = ray.put(weights), version
                global_vars = {"timestep": metrics.counters[STEPS_SAMPLED_COUNTER]}
                # Not waited for: the worker runs calls in order, so its next sample uses them.
                actor.set_weights.remote(self._weights_ref, global_vars)
            self.sent_version[actor], self.batches_since_sent[actor] = version, 0
            metrics.counters["num_weight_broadcasts"] += 1
        # This worker's next request goes out after this batch: it samples with what it has now.
        self.in_flight[actor].append(self.sent_version[actor])
        lags = self.lags
        metrics.info["policy_lag"] = {"mean": sum(lags) / len(lags), "max": max(lags)}
        metrics.info["weights_version_gap"] = {
            name: version - self.sent_version[w] for w, name in self.worker_names.items()
        }
        return batch


def execution_plan(workers, config):
    """async samples -> weights back to their worker -> concat -> learner thread -> report."""
    if not workers.remote_workers():
        return default_execution_plan(workers, config)  # see the module docstring
    workers.sync_weights()  # every worker starts from the learner's weights (version 0)
    learner = LearnerThread(workers.local_worker(), max_queue_size=config["learner_queue_size"])
    rollouts = ParallelRollouts(
        workers, mode="async", num_async=config["max_sample_requests_in_flight_per_worker"]
    )
    train_op = (
        rollouts.for_each(
            BroadcastUpdateLearnerWeights(
                workers,
                learner,
                broadcast_interval=config["broadcast_interval"],
                num_async=config["max_sample_requests_in_flight_per_worker"],
            )
        )
        .combine(ConcatBatches(min_batch_size=config["train_batch_size"]))
        .for_each(Enqueue(learner))
        .for_each(RecordLearnerResults(learner))
    )
    return StandardMetricsReporting(run_with_learner_thread(train_op, learner), workers, config)


IMPALATrainer = build_trainer(
    "IMPALA",
    default_config=DEFAULT_CONFIG,
    default_policy=IMPALATorchPolicy,
    validate_config=validate_config,
    execution_plan=execution_plan,
)
