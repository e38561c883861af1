"""TD3 (Fujimoto et al., 2018): DDPG with twin critics, smoothed targets, delayed actor steps.

The same policy and plan as DDPG; only the defaults differ, to the paper's: ``twin_q``,
``smooth_target_policy`` with noise 0.2 clipped at 0.5, ``policy_delay`` 2, and plain
``GaussianNoise`` exploration with standard deviation 0.1 (in half-ranges of the Box).
Introduced in notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

from course_lib.agents.ddpg.ddpg import DEFAULT_CONFIG as DDPG_CONFIG
from course_lib.agents.ddpg.ddpg import DDPGTrainer

TD3_DEFAULT_CONFIG = {
    **DDPG_CONFIG,
    "twin_q": True,
    "smooth_target_policy": True,
    "target_noise": 0.2,
    "target_noise_clip": 0.5,
    "policy_delay": 2,
    # Independent N(0, 0.1) noise at full scale throughout, after 1000 uniformly random steps.
    "exploration_config": {
        "type": "GaussianNoise",
        "stddev": 0.1,
        "random_timesteps": 1000,
        "initial_scale": 1.0,
        "final_scale": 1.0,
        "scale_timesteps": 1,
    },
}

TD3Trainer = DDPGTrainer.with_updates(name="TD3", default_config=TD3_DEFAULT_CONFIG)
