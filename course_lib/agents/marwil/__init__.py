"""MARWIL and BC: learning a policy from recorded episodes (offline RL).

Introduced in notebooks/17_offline_rl.ipynb.
"""

from course_lib.agents.marwil.bc import DEFAULT_CONFIG as BC_DEFAULT_CONFIG
from course_lib.agents.marwil.bc import BCTrainer
from course_lib.agents.marwil.marwil import DEFAULT_CONFIG, MARWILTrainer
from course_lib.agents.marwil.marwil_torch_policy import MARWILTorchPolicy

__all__ = ["BC_DEFAULT_CONFIG", "DEFAULT_CONFIG", "BCTrainer", "MARWILTorchPolicy", "MARWILTrainer"]
