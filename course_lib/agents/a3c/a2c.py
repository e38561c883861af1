"""A2C: synchronous advantage actor-critic, the 2021 RLlib tutorial's execution-plan example.

Every round the rollout workers sample in parallel, the batches are concatenated, and the
actor-critic policy takes one gradient step on the whole batch before the new weights go back
to the workers (``default_execution_plan``, shown in notebooks/11_execution_plans.ipynb).
Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

from course_lib.agents.a3c.a3c_torch_policy import A3CTorchPolicy
from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.trainer import default_execution_plan
from course_lib.agents.trainer_template import build_trainer

# A2C's settings, in one place: A3CTorchPolicy reads its defaults from this dict too.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "gamma": 0.99,
    # GAE's lambda: 1.0 gives advantages R_t - V(s_t) (high variance, no critic bias), 0.0 the
    # one-step TD error.
    "lambda": 1.0,
    "use_gae": True,
    "use_critic": True,
    "vf_loss_coeff": 0.5,
    "entropy_coeff": 0.01,
    "grad_clip": 40.0,
    "lr": 1e-3,
    "model": {"fcnet_hiddens": [64, 64]},
    # === The trainer's settings ===
    "num_workers": 0,
    "num_envs_per_worker": 8,
    "rollout_fragment_length": 25,
    "train_batch_size": 200,
}

A2CTrainer = build_trainer(
    "A2C",
    default_config=DEFAULT_CONFIG,
    default_policy=A3CTorchPolicy,
    execution_plan=default_execution_plan,
)
