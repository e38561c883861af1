"""SAC (Haarnoja et al., 2018): soft actor-critic with a tanh-squashed Gaussian policy, twin
critics and automatic entropy tuning, for continuous (Box) actions.

The dataflow is DDPG's (``ddpg.execution_plan``): store each sampled step, replay a minibatch,
take one learning step (critics, actor, alpha, then the target critics by ``tau``).
Exploration is the policy's own randomness (``StochasticSampling``), after
``random_timesteps`` uniformly random steps. Introduced in notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.ddpg.ddpg import execution_plan, validate_actor_critic_config
from course_lib.agents.sac.sac_torch_policy import SACTorchPolicy
from course_lib.agents.trainer_template import build_trainer

# SAC's settings, in one place: SACTorchPolicy reads its defaults from this dict too.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "gamma": 0.99,
    "actor_lr": 3e-4,
    "critic_lr": 3e-4,
    # Learning rate of log(alpha), the entropy weight.
    "entropy_lr": 3e-4,
    "actor_hiddens": [256, 256],
    "critic_hiddens": [256, 256],
    "twin_q": True,
    # After each learning step: target critics <- tau * online + (1 - tau) * target.
    "tau": 0.005,
    "initial_alpha": 1.0,
    # Entropy alpha aims for; None: -|A| (minus the number of action dimensions).
    "target_entropy": None,
    # Actor (and target) steps every this many critic steps; SAC moves all each step.
    "policy_delay": 1,
    "exploration_config": {"type": "StochasticSampling", "random_timesteps": 1000},
    # === The trainer's settings ===
    "num_workers": 0,
    # One env step, then one replayed minibatch: the usual one update per step.
    "rollout_fragment_length": 1,
    "train_batch_size": 256,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    # Replayed rows per sampled env step; None: one replayed batch per sampled fragment.
    "training_intensity": None,
    "timesteps_per_iteration": 1000,
}


def validate_sac_config(config: dict) -> None:
    """DDPG's shared checks (``validate_actor_critic_config``) and a positive ``initial_alpha``."""
    validate_actor_critic_config(config)
    if not config["initial_alpha"] > 0:
        raise ValueError(
            f'"initial_alpha" is the starting entropy weight: > 0, got {config["initial_alpha"]!r}.'
        )


SACTrainer = build_trainer(
    "SAC",
    default_config=DEFAULT_CONFIG,
    validate_config=validate_sac_config,
    default_policy=SACTorchPolicy,
    execution_plan=execution_plan,
)
