"""Turning rewards into learning signals: discounted returns, GAE, and bootstrapping on truncation.

The rule this module exists to teach: when an episode piece ends because the task was over
(``terminated``), the future is worth 0; when it ends for any other reason (a time limit,
``truncated``, or the rollout fragment simply ran out of steps), the future is worth the critic's
estimate V(next observation), so we *bootstrap* from it.

Introduced in notebooks/05_sample_batches.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.sample_batch import SampleBatch


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (a discount factor), got {value!r}.")
    return float(value)


def discount_cumsum(x, gamma: float) -> np.ndarray:
    """Discounted reward-to-go of a sequence.

    ``y[t] = sum_{k >= 0} gamma**k * x[t + k]``, computed backwards as
    ``y[t] = x[t] + gamma * y[t + 1]``.

    Args:
        x: shape ``(T,)``, e.g. the rewards of one trajectory.
        gamma: discount factor in ``[0, 1]``.

    Returns:
        float64 array of shape ``(T,)``.

    Introduced in notebooks/05_sample_batches.ipynb.
    """
    gamma = _check_fraction("gamma", gamma)
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(
            f"discount_cumsum expects a 1-D array (one trajectory), got shape {values.shape}."
        )
    running = 0.0
    backwards = []
    # A loop over Python floats (not numpy scalars) is the clearest form, and fast enough
    # (about 0.1 us a step).
    for reward in reversed(values.tolist()):
        running = reward + gamma * running
        backwards.append(running)
    return np.array(backwards[::-1], dtype=np.float64)


def _as_scalar(last_value) -> float:
    array = np.asarray(last_value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(
            "last_value must be a single number (V of the state "
            f"after the fragment), got shape {array.shape}."
        )
    return float(array.reshape(()))


def compute_advantages(
    batch: SampleBatch,
    last_value: float,
    gamma: float = 0.99,
    lambda_: float = 1.0,
    use_gae: bool = True,
    use_critic: bool = True,
) -> SampleBatch:
    """Adds ``advantages`` and ``value_targets`` (float32, shape ``(T,)``) to ONE trajectory piece.

    ``batch`` holds T consecutive steps of one episode; ``last_value`` is V(s_T), the value of the
    state after its last step: 0 if the episode terminated there, the critic's estimate otherwise.

    - ``use_critic=False``: ``R_t = sum_k gamma^k r_{t+k} + gamma^(T-t) * last_value``;
      advantages = value_targets = R (REINFORCE).
    - ``use_critic=True, use_gae=False``: advantages = ``R - vf_preds``, value_targets = ``R``.
    - ``use_gae=True``: ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` with
      ``V(s_T) = last_value``, advantages = ``discount_cumsum(delta, gamma * lambda_)``,
      value_targets = advantages + vf_preds. ``lambda_=1`` gives ``R - V``; ``lambda_=0`` gives the
      one-step TD error.

    Modifies ``batch`` in place and returns it. Needs ``rewards`` (T,) and, with a critic,
    ``vf_preds`` (T,).

    Introduced in notebooks/05_sample_batches.ipynb.
    """
    lambda_ = _check_fraction("lambda_", lambda_)
    gamma = _check_fraction("gamma", gamma)
    last_value = _as_scalar(last_value)
    if use_gae and not use_critic:
        raise ValueError(
            "use_gae=True needs a critic (V(s) predictions); pass use_critic=True or use_gae=False."
        )
    if SampleBatch.REWARDS not in batch:
        raise KeyError(
            f"compute_advantages needs a {SampleBatch.REWARDS!r} "
            f"column; the batch has {batch.columns}."
        )
    if use_critic and SampleBatch.VF_PREDS not in batch:
        raise KeyError(
            f"use_critic=True needs a {SampleBatch.VF_PREDS!r} column with V(obs) for every row; "
            f"the batch has {batch.columns}. Record the value "
            "predictions while sampling, or pass use_critic=False."
        )
    rewards = batch[SampleBatch.REWARDS].astype(np.float64)

    if use_gae:
        values = batch[SampleBatch.VF_PREDS].astype(np.float64)
        next_values = np.append(values[1:], last_value)
        deltas = rewards + gamma * next_values - values
        advantages = discount_cumsum(deltas, gamma * lambda_)
        value_targets = advantages + values
    else:
        # Appending last_value as a final pseudo-reward discounts it by gamma^(T - t) for every t.
        returns = discount_cumsum(np.append(rewards, last_value), gamma)[:-1]
        value_targets = returns
        advantages = returns - batch[SampleBatch.VF_PREDS] if use_critic else returns

    batch[SampleBatch.ADVANTAGES] = np.asarray(advantages, dtype=np.float32)
    batch[SampleBatch.VALUE_TARGETS] = np.asarray(value_targets, dtype=np.float32)
    return batch


def compute_advantages_by_episode(
    batch: SampleBatch,
    gamma: float = 0.99,
    lambda_: float = 1.0,
    value_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    use_gae: bool = True,
    use_critic: bool = True,
) -> SampleBatch:
    """``compute_advantages`` for a fragment that may hold several episodes, bootstrapping
    correctly.

    The fragment is split with ``batch.split_by_episode()``. For each piece:

    - last row ``terminated``: ``last_value = 0`` (there is no future);
    - last row ``truncated``, or neither flag (the fragment was cut mid-episode):
      ``last_value = V(new_obs of the last row)``, computed by ``value_fn``.

    ``value_fn`` maps observations of shape ``(M, *obs_shape)`` to values of shape ``(M,)`` (or
    ``(M, 1)``); it is called once, with the ``new_obs`` of every piece that needs bootstrapping.
    Without it, only ``use_critic=False`` is allowed, and unfinished pieces bootstrap from 0
    (plain REINFORCE, which cannot know what the cut-off future was worth).

    Needs ``rewards``, ``terminateds`` and, when bootstrapping, ``new_obs``; ``truncateds`` is
    optional (a row with both flags counts as terminated). Adds float32 ``advantages`` and
    ``value_targets`` of shape ``(count,)`` to ``batch`` in place and returns it.

    Introduced in notebooks/05_sample_batches.ipynb.
    """
    if SampleBatch.TERMINATEDS not in batch:
        raise KeyError(
            f"compute_advantages_by_episode needs a {SampleBatch.TERMINATEDS!r} column to tell a "
            "finished episode (no bootstrap) from a truncated "
            f"one (bootstrap); the batch has {batch.columns}."
        )
    pieces = batch.split_by_episode()
    needs_bootstrap = [not bool(piece[SampleBatch.TERMINATEDS][-1]) for piece in pieces]
    last_values = np.zeros(len(pieces))

    if any(needs_bootstrap):
        if value_fn is None and use_critic:
            raise ValueError(
                "Some episode pieces in this batch end without termination (time limit or end of "
                "the fragment), so their returns must be bootstrapped from V(new_obs of their last "
                "row). Pass value_fn, a callable mapping observations "
                "(M, *obs_shape) to values (M,), e.g. the policy's value function."
            )
        if value_fn is not None:
            if SampleBatch.NEXT_OBS not in batch:
                raise KeyError(
                    f"Bootstrapping needs a {SampleBatch.NEXT_OBS!r} column (the observation after "
                    f"each step); the batch has {batch.columns}."
                )
            bootstrap_obs = np.stack(
                [
                    piece[SampleBatch.NEXT_OBS][-1]
                    for piece, needed in zip(pieces, needs_bootstrap, strict=True)
                    if needed
                ]
            )
            values = np.asarray(value_fn(bootstrap_obs), dtype=np.float64).reshape(-1)
            if values.shape != (len(bootstrap_obs),):
                raise ValueError(
                    f"value_fn returned {values.size} values for {len(bootstrap_obs)} observations "
                    f"of shape {bootstrap_obs.shape}; it must return one "
                    f"value per observation, shape ({len(bootstrap_obs)},)."
                )
            last_values[np.flatnonzero(needs_bootstrap)] = values

    advantages = np.empty(batch.count, dtype=np.float32)
    value_targets = np.empty(batch.count, dtype=np.float32)
    start = 0
    for piece, last_value in zip(pieces, last_values, strict=True):
        # Pieces are views of `batch`; the new columns land on the piece, then get copied into
        # place.
        compute_advantages(
            piece, last_value, gamma, lambda_, use_gae=use_gae, use_critic=use_critic
        )
        end = start + piece.count
        advantages[start:end] = piece[SampleBatch.ADVANTAGES]
        value_targets[start:end] = piece[SampleBatch.VALUE_TARGETS]
        start = end
    batch[SampleBatch.ADVANTAGES] = advantages
    batch[SampleBatch.VALUE_TARGETS] = value_targets
    return batch
