"""A2C (synchronous advantage actor-critic). Introduced in notebooks/13_algorithms.ipynb.

A3C, the asynchronous one, is in ``a3c.py``; notebooks/11_execution_plans.ipynb builds its plan.
"""

from course_lib.agents.a3c.a2c import DEFAULT_CONFIG, A2CTrainer
from course_lib.agents.a3c.a3c import DEFAULT_CONFIG as A3C_DEFAULT_CONFIG
from course_lib.agents.a3c.a3c import A3CTrainer
from course_lib.agents.a3c.a3c_torch_policy import A3CTorchPolicy

__all__ = ["A2CTrainer", "A3CTorchPolicy", "A3CTrainer", "A3C_DEFAULT_CONFIG", "DEFAULT_CONFIG"]
