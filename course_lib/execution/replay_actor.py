"""Distributed replay: the replay buffer split into shards, each a Ray actor (Ape-X's replay).

One ``PrioritizedReplayBuffer`` in the trainer's process makes that process do everything: store
every sampled row, sample every minibatch, update every priority. Ape-X splits the buffer into
``num_replay_buffer_shards`` ``ReplayActor`` s, each holding its own part of the experience,
and builds its plan from three operators on them:

- ``ParallelRolloutRefs`` + ``StoreToReplayActors``: a rollout worker puts its batch in Ray's
  object store and hands over only the reference; the trainer passes that reference on to one
  shard (round robin), so the rows go from the worker to the shard without the trainer ever
  holding them;
- ``ReplayFromActors``: replay requests to every shard kept in flight, the batches taken in the
  order they come back, each tagged with the shard it came from;
- ``UpdateReplayActorPriorities``: after learning, the new ``|TD errors|`` go back to that shard.

A sampled row's slot may have been overwritten by newer rows by the time its new priority
arrives: the new row then gets that priority. Ape-X accepts this; with a buffer much larger than
the rows in flight it is rare. Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from course_lib.execution.local_iterator import (
    LocalIterator,
    NextValueNotReady,
    gather_async,
    get_shared_metrics,
)
from course_lib.execution.metric_ops import (
    AGENT_STEPS_SAMPLED_COUNTER,
    SAMPLE_TIMER,
    STEPS_SAMPLED_COUNTER,
)
from course_lib.execution.replay_buffer import PrioritizedReplayBuffer
from course_lib.execution.rollout_ops import agent_steps, env_steps
from course_lib.sample_batch import DEFAULT_POLICY_ID, SampleBatch
from course_lib.validation import require_whole_number

# The column in which a rollout worker may hand over each row's |TD error| (B,): the shard turns
# it into the row's first priority instead of the largest one so far, and does not store it.
TD_ERRORS = "td_errors"
# Shard i of a run with seed s draws with seed s + REPLAY_SHARD_SEED_OFFSET + i: the shards sample
# different rows, and their generators are apart from the workers' (s + 1000 * worker_index).
REPLAY_SHARD_SEED_OFFSET = 200_000


class ReplayActor:
    """One shard of prioritized replay: ``add`` rows, ``replay`` minibatches, ``update_priorities``.

    ``capacity`` and ``learning_starts`` count this shard's rows; ``replay()`` returns None until
    the shard holds ``max(learning_starts, replay_batch_size)`` rows. ``alpha``, ``beta`` and
    ``eps`` are those of ``PrioritizedReplayBuffer``. Runs as a plain object or as a Ray actor
    (``ReplayActor.as_remote().remote(...)``; ``create_replay_actors`` makes a set of them).
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(
        self,
        *,
        capacity: int,
        replay_batch_size: int,
        learning_starts: int = 0,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        seed: int | None = None,
        shard_index: int = 0,
    ):
        require_whole_number(replay_batch_size, "replay_batch_size", minimum=1)
        require_whole_number(learning_starts, "learning_starts", minimum=0)
        self.buffer = PrioritizedReplayBuffer(capacity, alpha=alpha, beta=beta, eps=eps, seed=seed)
        self.replay_batch_size = replay_batch_size
        self.rows_needed = max(learning_starts, replay_batch_size)
        self.seed, self.shard_index = seed, shard_index
        self.replayed_count = 0

    @classmethod
    def as_remote(cls, num_cpus: float = 0):
        """This class as a Ray actor class. No CPU reserved by default: a shard mostly waits, and
        on a small machine the rollout workers hold every CPU."""
        import ray

        return ray.remote(num_cpus=num_cpus)(cls)

    def add(self, batch: SampleBatch) -> None:
        """Store the rows of ``batch``. With a ``td_errors`` column (B,), row i's first priority
        is ``(|td_errors[i]| + eps) ** alpha``; without it, the largest priority so far."""
        td_errors = batch.get(TD_ERRORS)
        if td_errors is not None:  # a priority, not a column to store; the caller's batch keeps it
            batch = SampleBatch({name: c for name, c in batch.items() if name != TD_ERRORS})
        slots = self.buffer.add(batch)
        if td_errors is not None and len(slots):
            # A batch longer than the buffer keeps only its newest rows: so do their TD errors.
            self.buffer.update_priorities(slots, td_errors[-len(slots) :])

    def replay(self) -> SampleBatch | None:
        """``replay_batch_size`` rows drawn by priority, with ``weights`` and ``batch_indexes``
        columns (B,); None while the shard holds fewer rows than it needs to start."""
        if len(self.buffer) < self.rows_needed:
            return None
        self.replayed_count += self.replay_batch_size
        return self.buffer.sample(self.replay_batch_size)

    def update_priorities(self, indexes, td_errors) -> None:
        """Rows ``indexes`` (B,) of this shard get priority ``(|td_errors| + eps) ** alpha``."""
        self.buffer.update_priorities(indexes, td_errors)

    def stats(self) -> dict:
        """The buffer's stats (``num_entries``, ``added_count``...), plus ``shard_index``,
        ``seed`` and ``replayed_count`` (rows sent to the learner)."""
        return {
            **self.buffer.stats(),
            "shard_index": self.shard_index,
            "seed": self.seed,
            "replayed_count": self.replayed_count,
        }


def create_replay_actors(
    num_shards: int,
    *,
    buffer_size: int,
    replay_batch_size: int,
    learning_starts: int = 0,
    alpha: float = 0.6,
    beta: float = 0.4,
    eps: float = 1e-6,
    seed: int | None = None,
) -> list:
    """``num_shards`` ReplayActor actors that share ``buffer_size`` rows and ``learning_starts``.

    Each shard keeps ``ceil(buffer_size / num_shards)`` rows and starts replaying once it holds
    ``ceil(learning_starts / num_shards)``: data is spread evenly, so the whole store holds about
    ``learning_starts`` rows when replay begins. Shard i draws with its own seed
    (``seed + REPLAY_SHARD_SEED_OFFSET + i``). Introduced in notebooks/15_scaling_out.ipynb.
    """
    require_whole_number(num_shards, "num_replay_buffer_shards", minimum=1)
    require_whole_number(buffer_size, "buffer_size", minimum=num_shards)
    require_whole_number(learning_starts, "learning_starts", minimum=0)
    remote_class = ReplayActor.as_remote()
    return [
        remote_class.remote(
            capacity=math.ceil(buffer_size / num_shards),
            replay_batch_size=replay_batch_size,
            learning_starts=math.ceil(learning_starts / num_shards),
            alpha=alpha,
            beta=beta,
            eps=eps,
            seed=None if seed is None else seed + REPLAY_SHARD_SEED_OFFSET + index,
            shard_index=index,
        )
        for index in range(num_shards)
    ]


def put_batch(batch) -> tuple:
    """``(batch_ref, env_steps, agent_steps)``: ``batch`` put in Ray's object store, and its size.

    Runs inside a rollout worker; the small tuple is all that goes back to the trainer.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    import ray

    return ray.put(batch), env_steps(batch), agent_steps(batch)


def put_sample(worker) -> tuple:
    """Runs inside a rollout worker: ``put_batch(worker.sample())``."""
    return put_batch(worker.sample())


def ParallelRolloutRefs(workers, *, sample_fn=put_sample, num_async: int = 1) -> LocalIterator:
    """``(worker, batch_ref, env_steps)`` for each sample a remote worker finishes, in that order.

    ``sample_fn(worker)`` runs in the worker and returns ``(batch_ref, env_steps, agent_steps)``
    (``put_sample``, or one that adds a column first). ``num_async`` samples are in flight per
    worker. Counts ``num_steps_sampled`` and ``num_agent_steps_sampled``; the time spent waiting
    goes to the ``sample`` timer. Introduced in notebooks/15_scaling_out.ipynb.
    """
    remotes = workers.remote_workers()
    if not remotes:
        raise ValueError(
            "Distributed replay stores what remote rollout workers sample, and there are none: "
            "set num_workers >= 1."
        )
    samples = gather_async(
        remotes,
        "apply",
        sample_fn,
        num_async=num_async,
        wait_timer=SAMPLE_TIMER,
        with_source=True,
    )

    def count(item):
        worker, (batch_ref, sampled_env_steps, sampled_agent_steps) = item
        counters = get_shared_metrics().counters
        counters[STEPS_SAMPLED_COUNTER] += sampled_env_steps
        counters[AGENT_STEPS_SAMPLED_COUNTER] += sampled_agent_steps
        return worker, batch_ref, sampled_env_steps

    counted = samples.for_each(count)
    counted.name = f"ParallelRolloutRefs(num_async={num_async})"
    return counted


class StoreToReplayActors:
    """For ``.for_each`` after ``ParallelRolloutRefs``: each batch to the next shard, round robin.

    Passes the reference on (``shard.add.remote(batch_ref)``, not waited for): Ray moves the rows
    from the worker to the shard. Returns the item unchanged.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, replay_actors: list):
        if not replay_actors:
            raise ValueError("StoreToReplayActors needs at least one replay actor (shard).")
        self._next_shard = itertools.cycle(replay_actors)

    def __call__(self, item):
        _, batch_ref, _ = item
        next(self._next_shard).add.remote(batch_ref)
        return item


def ReplayFromActors(replay_actors: list, *, num_async: int = 2) -> LocalIterator:
    """``(shard, batch)`` items: replayed minibatches in the order the shards answer.

    ``num_async`` ``replay()`` calls are in flight per shard, so a batch is usually waiting when
    the learner asks for one. A shard that is not ready yet (``None``) gives a
    ``NextValueNotReady``. Introduced in notebooks/15_scaling_out.ipynb.
    """
    replays = gather_async(replay_actors, "replay", num_async=num_async, with_source=True)

    def ready(item):
        _, batch = item
        return NextValueNotReady() if batch is None else item

    replayed = replays.for_each(ready)
    replayed.name = f"ReplayFromActors({len(replay_actors)} shards, num_async={num_async})"
    return replayed


class UpdateReplayActorPriorities:
    """For ``.for_each`` after learning: ``(shard, batch, info)`` -> new priorities in ``shard``.

    ``info[policy_id]["td_error"]`` (B,) holds the learner's TD errors of the batch's rows; the
    rows ``batch["batch_indexes"]`` of the shard that replayed them get ``(|td_error| + eps) **
    alpha`` (sent, not waited for). Returns the item unchanged.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, policy_id: str = DEFAULT_POLICY_ID):
        self.policy_id = policy_id

    def __call__(self, item):
        shard, batch, info = item
        td_errors = info[self.policy_id].get("td_error")
        if td_errors is None:
            raise KeyError(
                f"The learner's result for {self.policy_id!r} has no 'td_error', so the replayed "
                "rows get no new priority. Learn with a policy whose learn_on_batch returns it "
                "(DQNTorchPolicy's TDErrorMixin does)."
            )
        shard.update_priorities.remote(batch["batch_indexes"], np.asarray(td_errors))
        return item


def stop_actors_on_close(plan: LocalIterator, actors: list) -> LocalIterator:
    """``plan`` unchanged, except that closing it (``Trainer.stop()`` does) kills ``actors``.

    The replay shards belong to the plan that created them. A plan that never ran leaves them to
    Ray, which ends an actor once nothing refers to it.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def items():
        import ray

        try:
            yield from plan
        finally:
            for actor in actors:
                ray.kill(actor)

    return plan._derive(items, "stop_actors_on_close")
