"""BC (behaviour cloning): MARWIL with beta = 0, imitating every recorded action alike.

Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

from course_lib.agents.marwil.marwil import DEFAULT_CONFIG as MARWIL_CONFIG
from course_lib.agents.marwil.marwil import MARWILTrainer
from course_lib.agents.marwil.marwil import validate_config as validate_marwil_config

DEFAULT_CONFIG = {**MARWIL_CONFIG, "beta": 0.0}


def validate_config(config: dict) -> None:
    validate_marwil_config(config)
    if config["beta"] != 0.0:
        raise ValueError(
            f'BC is MARWIL with "beta": 0, but this config sets beta to {config["beta"]}. '
            "Use MARWILTrainer for advantage-weighted imitation."
        )


BCTrainer = MARWILTrainer.with_updates(
    name="BC", default_config=DEFAULT_CONFIG, validate_config=validate_config
)
