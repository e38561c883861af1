"""``PerWorkerEpsilonGreedy``: Ape-X's fixed, different epsilon for each rollout worker.

Instead of annealing one epsilon over time, N workers explore at N fixed levels at once, from
0.4 (explores a lot) down to 0.4**8 ~ 0.00066 (nearly greedy):

    epsilon_i = 0.4 ** (1 + 7 * i / (N - 1)),   i = worker_index - 1 = 0 .. N-1

The local worker (index 0) only evaluates when there are remote workers, so it acts greedily
(epsilon 0). Without remote workers (``num_workers=0``) the local worker samples, and this is
plain ``EpsilonGreedy`` with its annealing schedule. Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

from course_lib.exploration.epsilon_greedy import EpsilonGreedy
from course_lib.exploration.schedules import ConstantSchedule

APEX_BASE_EPSILON = 0.4
APEX_ALPHA = 7.0


def apex_epsilon(worker_index: int, num_workers: int) -> float:
    """Ape-X epsilon of remote worker ``worker_index`` (1..num_workers) out of ``num_workers``.

    Introduced in notebooks/09_exploration.ipynb.
    """
    if not 1 <= worker_index <= num_workers:
        raise ValueError(
            "apex_epsilon: worker_index must be in "
            f"1..num_workers={num_workers}, got {worker_index}."
        )
    fraction = (worker_index - 1) / max(num_workers - 1, 1)
    return APEX_BASE_EPSILON ** (1 + APEX_ALPHA * fraction)


class PerWorkerEpsilonGreedy(EpsilonGreedy):
    """``EpsilonGreedy`` with a constant epsilon per worker:
    ``apex_epsilon(worker_index, num_workers)``.

    Takes ``EpsilonGreedy``'s arguments; they only matter when ``num_workers=0``.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, action_space, **kwargs):
        super().__init__(action_space, **kwargs)
        if self.num_workers > 0:
            if self.worker_index == 0:
                self.epsilon_schedule = ConstantSchedule(0.0)
            else:
                self.epsilon_schedule = ConstantSchedule(
                    apex_epsilon(self.worker_index, self.num_workers)
                )
