"""``Episode``: what a rollout worker knows about one running episode, shared with callbacks.

Introduced in notebooks/08_rollout_workers.ipynb; callbacks (notebooks/10_callbacks.ipynb) read
and write its ``user_data``, ``hist_data`` and ``custom_metrics``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from course_lib.sample_batch import DEFAULT_POLICY_ID

DEFAULT_AGENT_ID = "agent0"


class Episode:
    """One episode in one env of one worker: counters, rewards, the last step, and your data.

    - ``episode_id``: a random integer, unique in practice; the ``eps_id`` column of its rows.
    - ``env_index``: which of the worker's envs runs it.
    - ``length``: env steps so far; ``total_reward``: the sum of all agents' rewards.
    - ``agent_rewards``: ``{(agent_id, policy_id): return}``.
    - ``user_data``: scratch space for callbacks; ``custom_metrics``: ``{name: number}`` averaged
      into results; ``hist_data``: ``{name: list}`` kept whole in ``hist_stats``.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, episode_id: int, env_index: int, policy_for=None):
        self.episode_id = episode_id
        self.env_index = env_index
        self.length = 0
        self.total_reward = 0.0
        self.agent_rewards: dict[tuple, float] = defaultdict(float)
        self.user_data: dict[str, Any] = {}
        self.hist_data: dict[str, list] = {}
        self.custom_metrics: dict[str, float] = {}
        self._policy_for = policy_for or _every_agent_to_default_policy
        # policy_for's answers: an agent keeps its policy for the whole episode.
        self._agent_to_policy: dict = {}
        self._last: dict[str, dict] = defaultdict(dict)

    def policy_for(self, agent_id=DEFAULT_AGENT_ID) -> str:
        """The id of the policy that controls ``agent_id`` in this episode.

        ``policy_mapping_fn`` is asked once per agent and episode; the answer is kept.
        """
        if agent_id not in self._agent_to_policy:
            self._agent_to_policy[agent_id] = self._policy_for(agent_id)
        return self._agent_to_policy[agent_id]

    def last_observation_for(self, agent_id=DEFAULT_AGENT_ID):
        """The last observation the policy saw for ``agent_id`` (after the observation filter)."""
        return self._last[agent_id].get("obs")

    def last_raw_obs_for(self, agent_id=DEFAULT_AGENT_ID):
        """The last observation as the env returned it (before any filter)."""
        return self._last[agent_id].get("raw_obs")

    def last_info_for(self, agent_id=DEFAULT_AGENT_ID) -> dict | None:
        """The info dict of the last step (or of reset)."""
        return self._last[agent_id].get("info")

    def _record(self, agent_id, **values) -> None:
        """Keep the latest ``obs``/``raw_obs``/``info`` of ``agent_id`` for the accessors above."""
        self._last[agent_id].update(values)

    def _add_reward(self, agent_id, reward: float) -> None:
        self.total_reward += reward
        self.agent_rewards[(agent_id, self.policy_for(agent_id))] += reward

    def __repr__(self) -> str:
        return (
            f"Episode(id={self.episode_id}, env_index={self.env_index}, length={self.length}, "
            f"total_reward={self.total_reward:.2f})"
        )


def _every_agent_to_default_policy(agent_id) -> str:
    """A single-agent episode's mapping: its one agent acts with the default policy."""
    return DEFAULT_POLICY_ID
