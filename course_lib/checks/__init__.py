"""Graders for the exercise notebooks: each ``check_*`` runs your code and says what is wrong.

A grader checks behaviour (results, order, how tasks overlapped), never wall-clock speed, and a
failure names the likely mistake. Introduced in notebooks/00_welcome.ipynb ("How exercises work").
"""

from ._common import CheckFailed
from .algorithms import check_clipped_surrogate, check_minimal_ppo_loss
from .capstone import check_traffic_challenge
from .continuous import check_sac_critic_target, check_squashed_gaussian_logp
from .environments import check_guess_number
from .execution import check_execution_plan, check_replay_plan
from .exploration import check_decaying_boltzmann
from .models import check_custom_model
from .multi_agent import check_heuristic_policy, check_policy_mapping
from .offline import check_marwil_weights, check_off_policy_estimates
from .policies import check_pg_with_baseline, check_reinforce_loss
from .ray_actors import check_cartpole_actor, check_pool_map, check_scoreboard
from .ray_tasks import check_as_completed, check_batched_map, check_parallel_map
from .rl_primer import check_discounted_returns, check_mc_policy_gradient, check_value_iteration
from .rllib_today import check_a2c_learner, check_cart_drift_callback, check_ppo_config
from .rollouts import check_parallel_training_step, check_pole_angle_callbacks
from .sample_batches import check_discount_cumsum, check_gae
from .scaling import check_es_gradient, check_vtrace_targets
from .serving import check_batched_deployment
from .trainers import check_evaluation_loop, check_resume
from .tune import check_tune_search
from .welcome import check_mul

__all__ = [
    "CheckFailed",
    "check_a2c_learner",
    "check_as_completed",
    "check_batched_deployment",
    "check_batched_map",
    "check_cart_drift_callback",
    "check_cartpole_actor",
    "check_clipped_surrogate",
    "check_custom_model",
    "check_decaying_boltzmann",
    "check_discount_cumsum",
    "check_discounted_returns",
    "check_es_gradient",
    "check_evaluation_loop",
    "check_execution_plan",
    "check_gae",
    "check_guess_number",
    "check_heuristic_policy",
    "check_marwil_weights",
    "check_mc_policy_gradient",
    "check_minimal_ppo_loss",
    "check_mul",
    "check_off_policy_estimates",
    "check_parallel_map",
    "check_parallel_training_step",
    "check_pg_with_baseline",
    "check_pole_angle_callbacks",
    "check_policy_mapping",
    "check_pool_map",
    "check_ppo_config",
    "check_replay_plan",
    "check_reinforce_loss",
    "check_resume",
    "check_sac_critic_target",
    "check_scoreboard",
    "check_squashed_gaussian_logp",
    "check_traffic_challenge",
    "check_tune_search",
    "check_value_iteration",
    "check_vtrace_targets",
]
