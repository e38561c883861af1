"""V-trace: value targets and policy-gradient advantages from off-policy experience (IMPALA).

IMPALA's actors sample with the policy they last received, ``mu``; by the time the learner uses
their batch it has moved on to ``pi``. V-trace (Espeholt et al., 2018) corrects for the lag with
truncated importance weights ``rho_t = pi(a_t|x_t) / mu(a_t|x_t)``. With ``V`` the learner's
value estimates, ``gamma_t`` the discount of step ``t`` (0 after a terminal step) and::

    rho_bar_t = min(clip_rho_threshold, rho_t)      c_t = min(clip_c_threshold, rho_t)
    delta_t   = rho_bar_t * (r_t + gamma_t * V(x_{t+1}) - V(x_t))

the V-trace target of step ``s`` is::

    v_s = V(x_s) + sum_{t >= s} (gamma_s ... gamma_{t-1}) (c_s ... c_{t-1}) delta_t

computed backwards as ``v_s = V(x_s) + delta_s + gamma_s * c_s * (v_{s+1} - V(x_{s+1}))`` with
``v_T = V(x_T)``, the bootstrap value after the last step. The critic regresses on ``v_s``; the
actor follows ``min(clip_pg_rho_threshold, rho_s) * (r_s + gamma_s * v_{s+1} - V(x_s))``.

On-policy (``rho = 1``, thresholds at least 1) every ``c_t`` and ``rho_bar_t`` is 1 and ``v_s``
is the discounted return to the end of the fragment, bootstrapped with ``V(x_T)``: the n-step
target of A2C. ``clip_rho_threshold`` trades bias for variance in the fixed point (``rho_bar``
decides which policy's value V-trace learns); ``c`` only decides how fast it gets there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class VTraceReturns(NamedTuple):
    """``vs``: the value targets, ``pg_advantages``: the actor's advantages, both (T, B)."""

    vs: torch.Tensor
    pg_advantages: torch.Tensor


def vtrace_from_importance_weights(
    log_rhos,
    discounts,
    rewards,
    values,
    bootstrap_value,
    clip_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
) -> VTraceReturns:
    """V-trace targets for time-major experience.

    Shapes: ``log_rhos``, ``discounts``, ``rewards`` and ``values`` are (T, B): step ``t`` of
    fragment ``b``, ``log_rhos = log pi(a|x) - log mu(a|x)`` and ``discounts = gamma * (1 -
    terminated)``; ``bootstrap_value`` is (B,), ``V`` of the state after the last step. A
    threshold of None means no truncation. Arrays or tensors; the result is computed without
    gradients, as targets are.
    """
    log_rhos, discounts, rewards, values = (
        torch.as_tensor(x, dtype=torch.float32) for x in (log_rhos, discounts, rewards, values)
    )
    bootstrap_value = torch.as_tensor(bootstrap_value, dtype=torch.float32)
    _check_shapes(log_rhos, discounts, rewards, values, bootstrap_value)
    with torch.no_grad():
        rhos = torch.exp(log_rhos)
        rho_bar = _truncate(rhos, clip_rho_threshold)
        cs = _truncate(rhos, clip_c_threshold)
        next_values = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
        deltas = rho_bar * (rewards + discounts * next_values - values)

        # v_s - V(x_s), backwards from the bootstrap (where it is 0).
        corrections = torch.zeros_like(values)
        running = torch.zeros_like(bootstrap_value)
        for t in reversed(range(values.shape[0])):
            running = deltas[t] + discounts[t] * cs[t] * running
            corrections[t] = running
        vs = values + corrections

        next_vs = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], dim=0)
        pg_rhos = _truncate(rhos, clip_pg_rho_threshold)
        pg_advantages = pg_rhos * (rewards + discounts * next_vs - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)


def _truncate(rhos: torch.Tensor, threshold: float | None) -> torch.Tensor:
    return rhos if threshold is None else torch.clamp(rhos, max=threshold)


def _check_shapes(log_rhos, discounts, rewards, values, bootstrap_value) -> None:
    if values.dim() != 2:
        raise ValueError(
            f"V-trace takes time-major (T, B) arrays: values has shape {tuple(values.shape)}. "
            "Reshape one fragment of T steps to (T, 1)."
        )
    for name, array in (("log_rhos", log_rhos), ("discounts", discounts), ("rewards", rewards)):
        if array.shape != values.shape:
            raise ValueError(
                f"{name} has shape {tuple(array.shape)}, values {tuple(values.shape)}: every "
                "(T, B) input of V-trace needs the same shape."
            )
    if bootstrap_value.shape != values.shape[1:]:
        raise ValueError(
            f"bootstrap_value has shape {tuple(bootstrap_value.shape)}; it is V of the state "
            f"after each fragment's last step, shape ({values.shape[1]},)."
        )
