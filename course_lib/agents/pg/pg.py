"""PG: REINFORCE with reward-to-go (the policy of lesson 07) in the default execution plan.

Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.trainer_template import build_trainer
from course_lib.policy.pg import PG_DEFAULTS, PGTorchPolicy

DEFAULT_CONFIG = dict(
    COMMON_CONFIG,
    **PG_DEFAULTS,
    # Sample in the trainer's process: CartPole steps are too cheap to be worth shipping between
    # processes.
    num_workers=0,
    # REINFORCE needs whole-episode returns and many of them per step to keep its variance down.
    num_envs_per_worker=8,
    rollout_fragment_length=250,
    train_batch_size=2000,
)

PGTrainer = build_trainer("PG", default_config=DEFAULT_CONFIG, default_policy=PGTorchPolicy)
