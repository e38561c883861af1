"""Episode metrics: what each finished episode reports, and the summary that lands in results.

Introduced in notebooks/08_rollout_workers.ipynb; custom metrics and hist data come from
callbacks (notebooks/10_callbacks.ipynb).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class RolloutMetrics:
    """The numbers of one finished episode, sent from a worker to the trainer.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    episode_length: int
    episode_reward: float
    agent_rewards: dict = field(default_factory=dict)
    custom_metrics: dict = field(default_factory=dict)
    hist_data: dict = field(default_factory=dict)

    @classmethod
    def from_episode(cls, episode) -> RolloutMetrics:
        """The numbers of a finished ``Episode`` (copies: the episode object is not kept)."""
        return cls(
            episode.length,
            episode.total_reward,
            dict(episode.agent_rewards),
            dict(episode.custom_metrics),
            dict(episode.hist_data),
        )


def metrics_to_plain(episode: RolloutMetrics) -> dict:
    """One episode's metrics as plain data for a checkpoint: ``(agent, policy)`` keys as lists.

    Introduced in notebooks/12_trainers.ipynb.
    """
    return {
        **asdict(episode),
        "agent_rewards": [[*key, reward] for key, reward in episode.agent_rewards.items()],
    }


def metrics_from_plain(saved: dict) -> RolloutMetrics:
    """The inverse of ``metrics_to_plain``. Introduced in notebooks/12_trainers.ipynb."""
    return RolloutMetrics(
        **{
            **saved,
            "agent_rewards": {(agent, policy): r for agent, policy, r in saved["agent_rewards"]},
        }
    )


def summarize_episodes(episodes: list[RolloutMetrics]) -> dict:
    """The 2021 RLlib tutorial's result keys: ``episode_reward_mean/min/max``, ``episode_len_mean``.

    Custom metrics become ``custom_metrics/<name>_mean/_min/_max``; per-policy returns become
    ``policy_reward_mean/<policy_id>`` (and min/max); ``hist_stats`` keeps the raw lists.
    With no finished episode, the reward statistics are NaN (nothing to average yet).
    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    rewards = [e.episode_reward for e in episodes]
    lengths = [e.episode_length for e in episodes]
    nan = float("nan")
    result = {
        "episode_reward_mean": float(np.mean(rewards)) if rewards else nan,
        "episode_reward_min": float(np.min(rewards)) if rewards else nan,
        "episode_reward_max": float(np.max(rewards)) if rewards else nan,
        "episode_len_mean": float(np.mean(lengths)) if lengths else nan,
        "episodes_this_iter": len(episodes),
    }
    per_policy, custom, hist = (
        defaultdict(list),
        defaultdict(list),
        {"episode_reward": rewards, "episode_lengths": lengths},
    )
    for episode in episodes:
        for (_agent_id, policy_id), reward in episode.agent_rewards.items():
            per_policy[policy_id].append(reward)
        for name, value in episode.custom_metrics.items():
            custom[name].append(value)
        for name, values in episode.hist_data.items():
            hist.setdefault(name, []).extend(
                values if isinstance(values, (list, tuple, np.ndarray)) else [values]
            )
    for stat, fn in (("mean", np.mean), ("min", np.min), ("max", np.max)):
        result[f"policy_reward_{stat}"] = {pid: float(fn(r)) for pid, r in per_policy.items()}
    result["custom_metrics"] = {
        f"{name}_{stat}": float(fn(v))
        for name, v in custom.items()
        for stat, fn in (("mean", np.mean), ("min", np.min), ("max", np.max))
    }
    result["hist_stats"] = hist
    return result


def collect_episodes(
    local_worker, remote_workers=(), timeout_s: float | None = None
) -> list[RolloutMetrics]:
    """Gather (and clear) the finished-episode metrics of every worker.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    episodes = list(local_worker.get_metrics()) if local_worker is not None else []
    if remote_workers:
        import ray

        for metrics in ray.get([w.get_metrics.remote() for w in remote_workers], timeout=timeout_s):
            episodes.extend(metrics)
    return episodes


def collect_metrics(local_worker, remote_workers=(), timeout_s: float | None = None) -> dict:
    """``summarize_episodes(collect_episodes(...))``: one call for a trainer's result dict.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    return summarize_episodes(collect_episodes(local_worker, remote_workers, timeout_s))
