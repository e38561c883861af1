"""Ape-X DQN: DQN scaled out, with many exploring workers, sharded replay and one learner.

Horgan et al. (2018), "Distributed Prioritized Experience Replay". The policy is DQN's; what
changes is where each job runs:

- every rollout worker explores with its own fixed epsilon (``PerWorkerEpsilonGreedy``: 0.4 for
  the first, nearly greedy for the last) and computes the TD error of each row it samples under
  its copy of the networks, so new rows enter replay with their own priority;
- the replay buffer is split into ``num_replay_buffer_shards`` Ray actors; a worker's batch goes
  to one of them by object reference, never through the learner's process;
- the learner replays from every shard with requests in flight, learns, sends the new priorities
  back to the shard each batch came from, and refreshes its target network;
- a worker gets the learner's weights every ``max_weight_sync_delay`` env steps it sampled, when
  its batch arrives: the others keep acting with the weights they have.

Two sub-plans run side by side. With ``training_intensity: None`` they run in two threads
(``Concurrently(mode="async")``), each as fast as it can, as the paper's actors and learner do;
how much the learner replays per sampled step then depends on the machine and its load (on 2
cores the two sampling workers take most of the CPU and the learner replays only about 3 rows per
sampled step). With a ``training_intensity`` they take turns (``mode="round_robin"``) at that
fixed ratio, while the workers and shards still work in their own processes: the env steps a run
needs no longer depend on the load, only its wall-clock time does. tuned_examples/
apex-cartpole.yaml does that.

What the results report: ``episode_reward_mean`` averages the episodes of all workers, the ones
that explore with epsilon 0.4 included, so it stays well below what the greedy policy scores.
Judge the policy by an evaluation with ``explore: False`` (``evaluation_interval``), as the tuned
example does. Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

from collections import defaultdict

from course_lib.agents.dqn.dqn import DEFAULT_CONFIG as DQN_CONFIG
from course_lib.agents.dqn.dqn import replay_rounds
from course_lib.agents.dqn.dqn_torch_policy import DQNTorchPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import (
    AGENT_STEPS_TRAINED_COUNTER,
    LEARN_ON_BATCH_TIMER,
    LEARNER_INFO,
    STEPS_SAMPLED_COUNTER,
    STEPS_TRAINED_COUNTER,
    WORKER_UPDATE_TIMER,
    Concurrently,
    StandardMetricsReporting,
    UpdateTargetNetwork,
    get_shared_metrics,
)
from course_lib.execution.replay_actor import (
    TD_ERRORS,
    ParallelRolloutRefs,
    ReplayFromActors,
    StoreToReplayActors,
    UpdateReplayActorPriorities,
    create_replay_actors,
    put_batch,
    put_sample,
    stop_actors_on_close,
)

# Samples in flight per worker: while the trainer handles one batch, the worker makes the next.
SAMPLES_IN_FLIGHT_PER_WORKER = 2
# Replay requests in flight per shard: a replayed batch is usually waiting when the learner asks.
REPLAYS_IN_FLIGHT_PER_SHARD = 2
# Counted in the plan's counters: weight sends to single workers.
NUM_WEIGHT_SYNCS = "num_weight_syncs"

DEFAULT_CONFIG = {
    **DQN_CONFIG,
    "num_workers": 2,
    # Worker i of N explores with epsilon 0.4 ** (1 + 7 * (i - 1) / (N - 1)), fixed.
    "exploration_config": {"type": "PerWorkerEpsilonGreedy"},
    "n_step": 3,
    # Shards of the replay buffer, each a Ray actor; buffer_size and learning_starts are totals.
    "num_replay_buffer_shards": 2,
    "buffer_size": 50_000,
    "learning_starts": 1000,
    # True: workers hand over each row's |TD error| as its first priority; False: new rows get
    # the largest priority so far, as in DQN.
    "worker_side_prioritization": True,
    # A worker gets new weights once it has sampled this many env steps since its last ones.
    "max_weight_sync_delay": 400,
    # Counted in trained rows here, not sampled steps (the learner runs at its own pace): every
    # 128 minibatches of 64 rows.
    "target_network_update_freq": 8192,
    "rollout_fragment_length": 16,
    "num_envs_per_worker": 4,
    "train_batch_size": 64,
    # None: the sub-plans run in threads, as fast as each can. A number: replayed rows per sampled
    # env step, kept by taking turns.
    "training_intensity": None,
    "timesteps_per_iteration": 2000,
}


def validate_config(config: dict) -> None:
    """Ape-X needs remote workers, prioritized replay and a single policy; say so up front.

    Introduced in notebooks/15_scaling_out.ipynb.
    """
    if config["num_workers"] < 1:
        raise ValueError(
            "Ape-X samples with remote rollout workers and stores their batches in replay actors; "
            f"num_workers is {config['num_workers']}. Set num_workers >= 1 (e.g. 2), or use DQN "
            "to sample and learn in one process."
        )
    if not config["prioritized_replay"]:
        raise ValueError(
            "Ape-X always replays by priority (that is what its workers' TD errors are for). "
            "Remove 'prioritized_replay': False; for uniform replay set "
            "'prioritized_replay_alpha': 0."
        )
    if config["multiagent"]["policies"]:
        raise ValueError(
            "course_lib's Ape-X replays one policy's experience; remove the 'multiagent' policies "
            "or train them with another algorithm."
        )


def put_sample_with_td_errors(worker) -> tuple:
    """Runs inside a rollout worker: one sample, plus each row's absolute TD error under this
    worker's networks as the ``td_errors`` column (B,), put in the object store (``put_batch``).

    This is Ape-X's worker-side prioritization: the shard turns the column into the rows' first
    priorities. Introduced in notebooks/15_scaling_out.ipynb.
    """
    batch = worker.sample()
    batch[TD_ERRORS] = worker.get_policy().compute_td_error(batch)
    return put_batch(batch)


def learner_networks(local_worker) -> tuple[dict, dict]:
    """``({policy_id: weights}, {policy_id: target weights})`` of the learner.

    Workers need the target network too: their TD errors bootstrap from it.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    return local_worker.get_weights(), {
        pid: policy.get_target_weights() for pid, policy in local_worker.policy_map.items()
    }


def load_learner_networks(worker, networks: tuple[dict, dict], global_vars: dict) -> None:
    """Runs inside a rollout worker: load ``learner_networks()``'s weights and target weights."""
    weights, target_weights = networks
    worker.set_weights(weights, global_vars)
    for pid, target in target_weights.items():
        worker.get_policy(pid).set_target_weights(target)


class LearnOnReplayedBatch:
    """For ``.for_each`` after ``ReplayFromActors``: ``(shard, batch)`` -> ``(shard, batch, info)``.

    The local worker learns on the batch (``info`` is ``{policy_id: learn_on_batch result}``,
    with ``"td_error"`` (B,)); counts the rows as trained and records the learner stats. Unlike
    ``TrainOneStep`` it sends no weights: ``UpdateWorkerWeights`` does, one worker at a time.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, workers):
        self.workers = workers

    def __call__(self, item):
        shard, batch = item
        metrics = get_shared_metrics()
        with metrics.timers[LEARN_ON_BATCH_TIMER]:
            info = self.workers.local_worker().learn_on_batch(batch)
        metrics.info.setdefault(LEARNER_INFO, {}).update(
            {pid: result["learner_stats"] for pid, result in info.items()}
        )
        metrics.counters[STEPS_TRAINED_COUNTER] += batch.count
        metrics.counters[AGENT_STEPS_TRAINED_COUNTER] += batch.count
        return shard, batch, info


class UpdateWorkerWeights:
    """For ``.for_each`` after ``StoreToReplayActors``: ``(worker, batch_ref, env_steps)`` in.

    Once ``worker`` has sampled ``max_weight_sync_delay`` env steps since its last update, it gets
    the learner's weights and target weights (``load_learner_networks``, not waited for; its
    next sample uses them). One ``ray.put`` serves every worker updated before the learner's next
    step. Returns the item unchanged. Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, workers, max_weight_sync_delay: int):
        self.workers, self.max_weight_sync_delay = workers, max_weight_sync_delay
        self.steps_since_update: defaultdict = defaultdict(int)
        self._networks_ref, self._networks_version = None, None

    def __call__(self, item):
        import ray

        worker, _, sampled = item
        self.steps_since_update[worker] += sampled
        if self.steps_since_update[worker] < self.max_weight_sync_delay:
            return item
        metrics = get_shared_metrics()
        with metrics.timers[WORKER_UPDATE_TIMER]:
            # In async mode the learner may be halfway through a step while the weights are
            # copied; the worker then acts with a mix of two consecutive versions, which is
            # as good for acting and for priorities as either one.
            version = metrics.counters[STEPS_TRAINED_COUNTER]
            if version != self._networks_version:
                local = self.workers.local_worker()
                self._networks_ref = ray.put(learner_networks(local))
                self._networks_version = version
            global_vars = {"timestep": metrics.counters[STEPS_SAMPLED_COUNTER]}
            worker.apply.remote(load_learner_networks, self._networks_ref, global_vars)
        self.steps_since_update[worker] = 0
        metrics.counters[NUM_WEIGHT_SYNCS] += 1
        return item


def exploration_info(worker) -> dict:
    """Runs inside a rollout worker: its default policy's exploration info (``cur_epsilon``)."""
    return worker.get_policy().get_exploration_info()


class AddApexInfo:
    """For ``.for_each`` on the results: ``info["replay_shards"]`` (each shard's ``stats()``) and
    ``info["exploration_infos"]`` (each remote worker's ``{"cur_epsilon": ...}``).

    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, workers, replay_actors: list):
        self.workers, self.replay_actors = workers, replay_actors

    def __call__(self, result: dict) -> dict:
        import ray

        result["info"]["replay_shards"] = ray.get([a.stats.remote() for a in self.replay_actors])
        result["info"]["exploration_infos"] = self.workers.foreach_worker(exploration_info)[1:]
        return result


def execution_plan(workers, config):
    """store: worker -> object store -> a shard, then new weights to that worker now and then;
    replay: shards -> learn -> priorities back to the shard -> target network. Side by side.

    Introduced in notebooks/15_scaling_out.ipynb.
    """
    replay_actors = create_replay_actors(
        config["num_replay_buffer_shards"],
        buffer_size=config["buffer_size"],
        replay_batch_size=config["train_batch_size"],
        learning_starts=config["learning_starts"],
        alpha=config["prioritized_replay_alpha"],
        beta=config["prioritized_replay_beta"],
        eps=config["prioritized_replay_eps"],
        seed=config["seed"],
    )
    store_op = (
        ParallelRolloutRefs(
            workers,
            sample_fn=(
                put_sample_with_td_errors if config["worker_side_prioritization"] else put_sample
            ),
            num_async=SAMPLES_IN_FLIGHT_PER_WORKER,
        )
        .for_each(StoreToReplayActors(replay_actors))
        .for_each(UpdateWorkerWeights(workers, config["max_weight_sync_delay"]))
    )
    replay_op = (
        ReplayFromActors(replay_actors, num_async=REPLAYS_IN_FLIGHT_PER_SHARD)
        .for_each(LearnOnReplayedBatch(workers))
        .for_each(UpdateReplayActorPriorities())
        .for_each(
            UpdateTargetNetwork(
                workers, config["target_network_update_freq"], by_steps_trained=True
            )
        )
    )
    if config["training_intensity"] is None:
        train_op = Concurrently([store_op, replay_op], mode="async", output_indexes=[1])
    else:
        # Each store item is one worker's sample, as in DQN's plan with a single worker.
        train_op = Concurrently(
            [store_op, replay_op],
            mode="round_robin",
            output_indexes=[1],
            round_robin_weights=replay_rounds({**config, "num_workers": 1}),
        )
    results = StandardMetricsReporting(train_op, workers, config).for_each(
        AddApexInfo(workers, replay_actors)
    )
    return stop_actors_on_close(results, replay_actors)


ApexTrainer = build_trainer(
    "APEX",
    default_config=DEFAULT_CONFIG,
    validate_config=validate_config,
    default_policy=DQNTorchPolicy,
    execution_plan=execution_plan,
)
