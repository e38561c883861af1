"""Operators around a replay buffer: ``StoreToReplayBuffer``, ``Replay`` and ``UpdatePriorities``.

DQN's plan stores every fresh batch with ``StoreToReplayBuffer`` in one sub-plan and trains on
``Replay(...)`` in another; ``Concurrently`` runs the two side by side. ``Replay`` yields
``NextValueNotReady`` until the buffer holds enough rows, so the storing sub-plan is never blocked.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

from course_lib.execution.local_iterator import LocalIterator, NextValueNotReady
from course_lib.execution.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from course_lib.sample_batch import MultiAgentBatch, SampleBatch
from course_lib.validation import is_whole_number, require_whole_number


def _single_policy_batch(batch) -> SampleBatch:
    if isinstance(batch, SampleBatch):
        return batch
    if isinstance(batch, MultiAgentBatch) and len(batch.policy_batches) == 1:
        return next(iter(batch.policy_batches.values()))
    policies = list(batch.policy_batches) if isinstance(batch, MultiAgentBatch) else None
    raise TypeError(
        f"A replay buffer stores one policy's SampleBatch; got a {type(batch).__name__}"
        + (
            f" with policies {policies}. Keep one policy with SelectExperiences([policy_id]) first."
            if policies
            else "."
        )
    )


class StoreToReplayBuffer:
    """For ``.for_each``: add the batch's rows to ``local_buffer``; returns the batch unchanged.

    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, *, local_buffer: ReplayBuffer):
        self.local_buffer = local_buffer

    def __call__(self, batch):
        self.local_buffer.add(_single_policy_batch(batch))
        return batch


def Replay(
    *, local_buffer: ReplayBuffer, replay_batch_size: int, learning_starts: int = 0
) -> LocalIterator:
    """An endless stream of SampleBatches of ``replay_batch_size`` rows sampled from
    ``local_buffer``.

    Until the buffer holds ``max(learning_starts, replay_batch_size)`` rows it yields
    ``NextValueNotReady()``. Introduced in notebooks/11_execution_plans.ipynb.
    """
    require_whole_number(replay_batch_size, "replay_batch_size", minimum=1)
    if not is_whole_number(learning_starts) or learning_starts < 0:
        raise ValueError(
            f"learning_starts must be a whole number of rows >= 0, got {learning_starts!r}."
        )
    needed = max(learning_starts, replay_batch_size)

    def replay():
        while True:
            yield (
                local_buffer.sample(replay_batch_size)
                if len(local_buffer) >= needed
                else NextValueNotReady()
            )

    return LocalIterator(
        replay,
        name=f"Replay(replay_batch_size={replay_batch_size}, learning_starts={learning_starts})",
    )


class UpdatePriorities:
    """For ``.for_each`` after ``TrainOneStep``: new priorities from the TD errors of the rows just
    trained on.

    Takes TrainOneStep's ``(batch, info)``; for each policy whose ``info`` has ``"td_error"`` (B,),
    the rows ``batch["batch_indexes"]`` get priority ``(|td_error| + eps) ** alpha`` in
    ``local_buffer``. ``prioritized_replay_eps`` replaces the buffer's ``eps`` when given. Does
    nothing for a uniform ``ReplayBuffer``. Returns the item unchanged.
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, local_buffer: ReplayBuffer, prioritized_replay_eps: float | None = None):
        self.local_buffer, self.eps = local_buffer, prioritized_replay_eps

    def __call__(self, item):
        batch, info = item
        if not isinstance(self.local_buffer, PrioritizedReplayBuffer):
            return item
        for policy_id, result in info.items():
            if "td_error" not in result:
                continue
            rows = batch.policy_batches[policy_id] if isinstance(batch, MultiAgentBatch) else batch
            if "batch_indexes" not in rows:
                raise KeyError(
                    "The trained batch has no 'batch_indexes' column, so its rows cannot be found "
                    "in the buffer. Train on batches from Replay(local_buffer=...) "
                    f"with a PrioritizedReplayBuffer; columns: {rows.columns}."
                )
            self.local_buffer.update_priorities(
                rows["batch_indexes"], result["td_error"], eps=self.eps
            )
        return item
