"""SAC: soft actor-critic (squashed Gaussian actor, twin critics, learned entropy weight).

Introduced in notebooks/16_continuous_control.ipynb.
"""

from course_lib.agents.sac.sac import DEFAULT_CONFIG, SACTrainer
from course_lib.agents.sac.sac_torch_policy import SACTorchModel, SACTorchPolicy

__all__ = ["DEFAULT_CONFIG", "SACTorchModel", "SACTorchPolicy", "SACTrainer"]
