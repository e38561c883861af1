"""IMPALA's policy: an actor-critic whose targets come from V-trace, so that stale samples count.

A rollout worker samples with the weights it last received (the behaviour policy ``mu``); by the
time the learner trains on its batch, the learner's policy ``pi`` is a few updates ahead.
``impala_loss`` corrects for that with V-trace (vtrace.py): truncated importance weights
``pi / mu`` decide how much each step's TD error counts. Nothing is precomputed by the workers
(no postprocessing): the targets need the learner's current V, so the loss computes them.

The policy is trained in the learner thread while the driver thread reads its weights, so its
methods that touch the model take turns (``PolicyLockMixin``).
Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

import threading

import torch

from course_lib.agents.a3c.a3c_torch_policy import vf_explained_var
from course_lib.agents.impala.vtrace import vtrace_from_importance_weights
from course_lib.policy.policy_template import build_policy
from course_lib.sample_batch import SampleBatch


def get_default_config() -> dict:
    """IMPALA's defaults: ``DEFAULT_CONFIG`` in impala.py, the one dict the trainer uses too.

    Imported when called: impala.py imports this module to build ``IMPALATrainer``.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    from course_lib.agents.impala.impala import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def to_time_major(column: torch.Tensor, fragment_length: int) -> torch.Tensor:
    """``(B * T, ...)`` rows, fragment after fragment, to ``(T, B, ...)``: step t of fragment b.

    Introduced in notebooks/15_scaling_out.ipynb.
    """
    return column.reshape(-1, fragment_length, *column.shape[1:]).transpose(0, 1)


def continues_in_next_row(train_batch: dict, fragment_length: int) -> torch.Tensor:
    """``(B * T,)`` bool: row i's next step is row i + 1 of the same fragment.

    False at a fragment's last row and where an episode ended (terminated or truncated: the next
    row, if any, starts another episode). Checks the layout V-trace relies on: within an episode,
    consecutive rows are consecutive steps (``t`` grows by 1).
    """
    eps_id, step = train_batch[SampleBatch.EPS_ID], train_batch[SampleBatch.T]
    count = len(eps_id)
    if count % fragment_length:
        raise ValueError(
            f"IMPALA's loss reshapes the batch into fragments of rollout_fragment_length="
            f"{fragment_length} steps, but it has {count} rows. Train on whole sample() "
            "batches (ConcatBatches does), with batch_mode='truncate_episodes'."
        )
    same_episode = torch.zeros(count, dtype=torch.bool, device=eps_id.device)
    same_episode[:-1] = eps_id[1:] == eps_id[:-1]
    same_episode[fragment_length - 1 :: fragment_length] = False  # a fragment's last row
    broken = same_episode[:-1] & (step[1:] != step[:-1] + 1)
    if broken.any():
        row = int(torch.nonzero(broken)[0])
        raise ValueError(
            f"Rows {row} and {row + 1} belong to one episode but are not consecutive steps "
            f"(t = {int(step[row])}, then {int(step[row + 1])}), so the batch is not made of "
            f"fragments of {fragment_length} steps in order. Do not shuffle IMPALA's batches, "
            "and sample with one env per fragment (vectorize_envs=False)."
        )
    return same_episode


def impala_loss(policy, model, dist_class, train_batch):
    """IMPALA loss: policy gradient with V-trace advantages, critic on V-trace targets, entropy.

    The batch is ``B`` fragments of ``T = rollout_fragment_length`` steps, concatenated; every
    tensor below is time-major ``(T, B)``, so that V-trace's backward loop is T steps, not B * T.
    ``mu`` is the behaviour policy (its ``action_logp`` came from the worker), ``pi`` and ``V``
    the learner's, ``gamma`` the discount::

        log_rho_t  = log pi(a_t|x_t) - log mu(a_t|x_t)
        gamma_t    = gamma if row t+1 continues the episode in this fragment, else 0
        r_t       += gamma * V(x'_t)   where the next step is elsewhere and the episode goes on
        vs, pg_adv = V-trace(log_rho, gamma_t, r_t, V(x_t), bootstrap 0)     (no gradient)
        pi_loss  = -mean[ log pi(a_t|x_t) * pg_adv_t ]
        vf_loss  = 0.5 * mean[ (vs_t - V(x_t))^2 ]
        entropy  = mean[ H(pi(.|x_t)) ]
        total    = pi_loss + vf_loss_coeff * vf_loss - entropy_coeff * entropy

    Episode ends: ``terminated`` cuts the trace with no future (gamma_t = 0). A row whose next
    step is not the next row (a ``truncated`` time limit, or the fragment's last step, whose
    next state ``x'_t`` begins the next fragment) also cuts the trace, but carries the future
    in its reward: ``gamma * V(new_obs)``. For the last step that is exactly V-trace's bootstrap
    ``v_T = V(x_T)``; inside a fragment it keeps the next episode's first value out of the sum.
    On-policy (rho = 1) ``vs`` is the discounted return to the cut, bootstrapped there: A2C's
    n-step target. Gradient clipping (``grad_clip``) happens in ``TorchPolicy``.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    config = policy.config
    fragment_length, gamma = config["rollout_fragment_length"], config["gamma"]
    logits, _ = model.from_batch(train_batch)
    values = model.value_function()
    action_dist = dist_class(logits, model)
    target_logp = action_dist.logp(train_batch[SampleBatch.ACTIONS])
    entropy = action_dist.entropy()

    continues = continues_in_next_row(train_batch, fragment_length)
    terminated = train_batch[SampleBatch.TERMINATEDS].bool()
    bootstrapped = ~continues & ~terminated
    rewards = train_batch[SampleBatch.REWARDS].float().clone()
    with torch.no_grad():  # the second forward pass replaces the model's features: values first
        model({SampleBatch.OBS: train_batch[SampleBatch.NEXT_OBS][bootstrapped]})
        rewards[bootstrapped] += gamma * model.value_function()

    def time_major(column):
        return to_time_major(column, fragment_length)

    log_rhos = target_logp.detach() - train_batch[SampleBatch.ACTION_LOGP]
    vtrace = vtrace_from_importance_weights(
        log_rhos=time_major(log_rhos),
        discounts=time_major(gamma * continues.float()),
        rewards=time_major(rewards),
        values=time_major(values.detach()),
        bootstrap_value=torch.zeros(len(values) // fragment_length),
        clip_rho_threshold=config["vtrace_clip_rho_threshold"],
        clip_pg_rho_threshold=config["vtrace_clip_pg_rho_threshold"],
    )
    pi_loss = -torch.mean(time_major(target_logp) * vtrace.pg_advantages)
    vf_loss = 0.5 * torch.mean((vtrace.vs - time_major(values)) ** 2)
    mean_entropy = entropy.mean()
    rhos = torch.exp(log_rhos)
    policy.loss_stats = {
        "policy_loss": pi_loss.item(),
        "vf_loss": vf_loss.item(),
        "entropy": mean_entropy.item(),
        "vf_explained_var": vf_explained_var(
            time_major(values.detach()).reshape(-1),
            {SampleBatch.VALUE_TARGETS: vtrace.vs.reshape(-1)},
        ).item(),
        "mean_rho": rhos.mean().item(),
        "max_rho": rhos.max().item(),
    }
    return pi_loss + config["vf_loss_coeff"] * vf_loss - config["entropy_coeff"] * mean_entropy


def impala_stats(policy, train_batch):
    """Learner statistics of the last loss: its pieces, how well V explains the V-trace targets,
    and how far ``pi`` had moved from ``mu`` (``mean_rho`` and ``max_rho``: 1 on-policy)."""
    return dict(policy.loss_stats)


class PolicyLockMixin:
    """One lock around every method that runs or changes the model, so two threads take turns.

    The learner thread runs ``learn_on_batch`` while the driver thread reads the weights to send
    them to the workers, and a notebook may call ``trainer.compute_single_action`` or
    ``trainer.save()`` while queued batches are still being learned. Without the lock, weights
    could be read half-updated, and a forward pass in one thread could replace the features that
    ``value_function()`` reads in the other. Reentrant: ``get_state`` calls ``get_weights``.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def learn_on_batch(self, samples):
        with self.model_lock:
            return super().learn_on_batch(samples)

    def compute_actions(self, *args, **kwargs):
        with self.model_lock:
            return super().compute_actions(*args, **kwargs)

    def compute_values(self, *args, **kwargs):
        with self.model_lock:
            return super().compute_values(*args, **kwargs)

    def get_weights(self):
        with self.model_lock:
            return super().get_weights()

    def set_weights(self, weights):
        with self.model_lock:
            super().set_weights(weights)

    def get_state(self):
        with self.model_lock:
            return super().get_state()

    def set_state(self, state):
        with self.model_lock:
            super().set_state(state)


def setup_lock_and_check_model(policy, observation_space, action_space, config):
    """Give the policy its ``model_lock``; refuse recurrent models, which V-trace's time-major
    layout here does not handle (their batches are cut into padded sequences)."""
    if policy.is_recurrent():
        raise ValueError(
            "IMPALA's policy supports feed-forward models only; this one is recurrent "
            '(use_lstm or a custom RNN). Set "model": {"use_lstm": False}.'
        )
    policy.model_lock = threading.RLock()


IMPALATorchPolicy = build_policy(
    "IMPALATorchPolicy",
    loss_fn=impala_loss,
    get_default_config=get_default_config,
    stats_fn=impala_stats,
    after_init=setup_lock_and_check_model,
    mixins=[PolicyLockMixin],
)
