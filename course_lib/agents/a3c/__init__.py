"""A2C (synchronous advantage actor-critic). Introduced in notebooks/13_algorithms.ipynb."""

from course_lib.agents.a3c.a2c import DEFAULT_CONFIG, A2CTrainer
from course_lib.agents.a3c.a3c_torch_policy import A3CTorchPolicy

__all__ = ["A2CTrainer", "A3CTorchPolicy", "DEFAULT_CONFIG"]
