"""Vanilla policy gradient (REINFORCE). Introduced in notebooks/13_algorithms.ipynb."""

from course_lib.agents.pg.pg import DEFAULT_CONFIG, PGTrainer
from course_lib.policy.pg import PGTorchPolicy

__all__ = ["DEFAULT_CONFIG", "PGTorchPolicy", "PGTrainer"]
