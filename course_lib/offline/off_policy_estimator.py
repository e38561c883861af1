"""Off-policy estimation: what return would the policy being trained get, judged from logged data?

The data was collected by a *behaviour* policy ``b`` that logged ``action_prob`` = b(a_t | s_t)
for each action. The *target* policy ``pi`` (the one a trainer is learning) never acted, but
importance sampling reweights the logged rewards by how much more (or less) likely ``pi`` was to
take the same actions. For one episode with rewards ``r_t`` and cumulative ratios

    p_t = prod_{i <= t} pi(a_i | s_i) / b(a_i | s_i)

the estimators report, per episode (``gamma`` is the policy's discount):

- ``V_prev   = sum_t gamma^t r_t``              the behaviour's discounted return;
- IS:  ``V_target = sum_t gamma^t r_t p_t``      (per-decision importance sampling, unbiased);
- WIS: ``V_target = sum_t gamma^t r_t p_t / w_t`` with ``w_t`` the mean of ``p_t`` over the
  episodes of the same batch (self-normalised: biased, but with far less variance; when every
  episode has the same ratios, WIS gives back V_prev exactly).

A trainer's result holds ``result["off_policy_estimator"][name]`` with the means of ``V_prev``
and ``V_target`` over the episodes read in that iteration, and ``V_gain_est = V_target / V_prev``
(of those means: above 1, the target policy is estimated to do better than the data's).
The estimate is for the *stochastic* target policy (its action distribution, no exploration).
Each recorded batch is split into episodes at ``eps_id`` changes; pieces of episodes (data
recorded with ``batch_mode="truncate_episodes"``) count as episodes starting at t = 0, so record
with ``"batch_mode": "complete_episodes"`` for estimates of whole episodes.
Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from course_lib.sample_batch import MultiAgentBatch, SampleBatch

ACTION_PROB = "action_prob"


@dataclass
class OffPolicyEstimate:
    """One episode's estimate: ``metrics`` is ``{"V_prev": ..., "V_target": ...}``.

    Introduced in notebooks/17_offline_rl.ipynb.
    """

    estimator_name: str
    metrics: dict


def behaviour_probs(batch: SampleBatch, estimator_name: str) -> np.ndarray:
    """b(a_t | s_t) for every row, from ``action_prob`` (or ``exp(action_logp)``), shape (B,).

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if ACTION_PROB in batch:
        return batch[ACTION_PROB].astype(np.float64)
    if SampleBatch.ACTION_LOGP in batch:
        return np.exp(batch[SampleBatch.ACTION_LOGP].astype(np.float64))
    raise ValueError(
        f'"input_evaluation": [{estimator_name!r}] needs the behaviour policy\'s probability of '
        f"each logged action, the column {ACTION_PROB!r} (or {SampleBatch.ACTION_LOGP!r}), and "
        f"the data has none (its columns: {batch.columns}). Record data with a course_lib "
        'trainer or rollout worker and "output": its samplers log both columns. For data from '
        f'elsewhere, add {ACTION_PROB!r} yourself, or set "input_evaluation": [] to train '
        "without estimates."
    )


class OffPolicyEstimator:
    """Estimates the target ``policy``'s return from a batch of logged episodes.

    ``estimate(batch)`` returns one ``OffPolicyEstimate`` per episode of the batch. Subclasses
    implement ``_targets(rewards, ratios)``. Introduced in notebooks/17_offline_rl.ipynb.
    """

    name = ""

    def __init__(self, policy, gamma: float | None = None):
        self.policy = policy
        self.gamma = policy.config["gamma"] if gamma is None else gamma

    def estimate(self, batch: SampleBatch | MultiAgentBatch) -> list[OffPolicyEstimate]:
        if isinstance(batch, MultiAgentBatch):
            raise NotImplementedError(
                f'"input_evaluation": [{self.name!r}] estimates single-agent data only; set '
                '"input_evaluation": [] for multi-agent input.'
            )
        for column in (SampleBatch.OBS, SampleBatch.ACTIONS, SampleBatch.REWARDS):
            if column not in batch:
                raise ValueError(
                    f'"input_evaluation": [{self.name!r}] needs the column {column!r}; the data '
                    f"has {batch.columns}."
                )
        old_prob = behaviour_probs(batch, self.name)
        new_prob = np.exp(
            self.policy.compute_log_likelihoods(batch[SampleBatch.ACTIONS], batch[SampleBatch.OBS])
        ).astype(np.float64)
        rewards, ratios, start = [], [], 0
        for piece in batch.split_by_episode():
            end = start + piece.count
            rewards.append(piece[SampleBatch.REWARDS].astype(np.float64))
            ratios.append(np.cumprod(new_prob[start:end] / old_prob[start:end]))
            start = end
        return [
            OffPolicyEstimate(self.name, {"V_prev": self._discounted(r), "V_target": target})
            for r, target in zip(rewards, self._targets(rewards, ratios), strict=True)
        ]

    def _discounted(self, values: np.ndarray) -> float:
        return float(np.sum(self.gamma ** np.arange(len(values)) * values))

    def _targets(self, rewards: list[np.ndarray], ratios: list[np.ndarray]) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} must implement _targets().")


class ImportanceSampling(OffPolicyEstimator):
    """Per-decision importance sampling: ``V_target = sum_t gamma^t r_t p_t`` per episode.

    Introduced in notebooks/17_offline_rl.ipynb.
    """

    name = "is"

    def _targets(self, rewards, ratios):
        return [self._discounted(r * p) for r, p in zip(rewards, ratios, strict=True)]


class WeightedImportanceSampling(OffPolicyEstimator):
    """Weighted (self-normalised) per-decision importance sampling: ``p_t`` over its mean ``w_t``.

    ``w_t`` averages ``p_t`` over all the episodes of the batch; an episode that ended before t
    counts with its last ratio (after the end it sits in an absorbing state where both policies
    act alike and the reward is 0, so its ratio stops changing). RLlib 2021 averaged over the
    episodes still running at t instead; when every reward is 1 (CartPole) that gives back
    ``V_prev`` whatever the target policy does, since then the return is the episode's length.
    Introduced in notebooks/17_offline_rl.ipynb.
    """

    name = "wis"

    def _targets(self, rewards, ratios):
        longest = max(len(p) for p in ratios)
        # Each episode's ratios, held at their last value after the episode ended: (n, longest).
        held = np.stack([np.pad(p, (0, longest - len(p)), mode="edge") for p in ratios])
        mean_ratio = np.maximum(held.mean(axis=0), 1e-300)
        return [
            self._discounted(r * p / mean_ratio[: len(p)])
            for r, p in zip(rewards, ratios, strict=True)
        ]


ESTIMATORS = {"is": ImportanceSampling, "wis": WeightedImportanceSampling}


def make_estimators(names, policy, gamma: float | None = None) -> list[OffPolicyEstimator]:
    """One estimator per name of ``"input_evaluation"`` ("is", "wis") for ``policy``.

    ``gamma`` discounts the returns (None: the policy's ``config["gamma"]``).

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if isinstance(names, str):
        raise TypeError(
            f'"input_evaluation" is a list of names, e.g. ["is", "wis"], not {names!r}.'
        )
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown:
        raise ValueError(
            f'"input_evaluation" names unknown estimators {unknown}; the estimators are '
            f"{list(ESTIMATORS)} (importance sampling, weighted importance sampling)."
        )
    if names and policy is None:
        raise NotImplementedError(
            '"input_evaluation" estimates the return of a single-agent policy ("default_policy"); '
            'set "input_evaluation": [] for multi-agent input.'
        )
    return [ESTIMATORS[name](policy, gamma) for name in names]


def summarize_estimates(estimates: list[OffPolicyEstimate]) -> dict:
    """``{name: {"V_prev", "V_target", "V_gain_est", "num_episodes"}}``: means over episodes.

    ``V_gain_est`` is the ratio of the two means (rather than a mean of per-episode ratios, which
    weighs a short episode like a long one and explodes when a V_prev is near 0).
    Introduced in notebooks/17_offline_rl.ipynb.
    """
    grouped = defaultdict(lambda: defaultdict(list))
    for estimate in estimates:
        for key, value in estimate.metrics.items():
            grouped[estimate.estimator_name][key].append(value)
    summary = {}
    for name, metrics in grouped.items():
        v_prev, v_target = np.mean(metrics["V_prev"]), np.mean(metrics["V_target"])
        summary[name] = {
            "V_prev": float(v_prev),
            "V_target": float(v_target),
            "V_gain_est": float(v_target / v_prev) if v_prev else float("nan"),
            "num_episodes": len(metrics["V_prev"]),
        }
    return summary


def collect_off_policy_estimates(local_worker, remote_workers=(), timeout_s=None) -> list:
    """Gather (and clear) the estimates of every rollout worker, like ``collect_episodes``.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    estimates = list(local_worker.get_off_policy_estimates())
    if remote_workers:
        import ray

        for worker_estimates in ray.get(
            [w.get_off_policy_estimates.remote() for w in remote_workers], timeout=timeout_s
        ):
            estimates.extend(worker_estimates)
    return estimates
