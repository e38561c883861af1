"""MARWIL (monotonic advantage re-weighted imitation learning) from recorded episodes.

Advantage-weighted imitation (BC when ``beta`` is 0). The trainer reads batches from
``"input"`` (files written by another trainer's ``"output"``), postprocesses them episode by
episode (``"postprocess_inputs"``: discounted returns with this policy's value head), and takes
one gradient step on each ``train_batch_size`` rows: the default execution plan, with recorded
data where sampling would be. Its own rollout workers never step an env; the evaluation workers
do (``evaluation_config`` samples the real env), so ``result["evaluation"]["episode_reward_mean"]``
is the learned policy's return.
Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.marwil.marwil_torch_policy import MARWILTorchPolicy
from course_lib.agents.trainer_template import build_trainer

DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    # Advantage weighting: weight exp(beta * A / c); 0 imitates every recorded action alike (BC).
    "beta": 1.0,
    # Weight of the value head's loss.
    "vf_coeff": 1.0,
    # c**2 starts here and moves towards mean(A**2) by this rate per gradient step. RLlib 2021's
    # values: with rate 1e-8, c stays sqrt(100) = 10, which suits returns of tens to hundreds.
    "moving_average_sqd_adv_norm_start": 100.0,
    "moving_average_sqd_adv_norm_update_rate": 1e-8,
    # One gradient step per train_batch_size recorded rows: a rate well above PPO's lets BC learn
    # CartPole in about 50 steps.
    "lr": 5e-3,
    "model": {"fcnet_hiddens": [64, 64]},
    # === The trainer's settings ===
    # Recorded experience: a folder, file, glob or list of files (required; "sampler" learns from
    # this trainer's own rollouts instead).
    "input": None,
    # The returns MARWIL weighs actions by are computed when the data is read.
    "postprocess_inputs": True,
    "num_workers": 0,
    "train_batch_size": 2000,
    # Report the learned policy's return in the real env after every train() call.
    "evaluation_interval": 1,
    "evaluation_num_episodes": 10,
}


def validate_config(config: dict) -> None:
    if config["input"] is None:
        raise ValueError(
            'MARWIL and BC learn from recorded experience: set "input" to the folder that a '
            'trainer\'s "output" wrote (e.g. {"input": "/tmp/cartpole-out"}), a glob or a list '
            'of its JSON files, or "sampler" to learn from this trainer\'s own rollouts.'
        )
    if config["beta"] < 0:
        raise ValueError(
            f'"beta" is {config["beta"]}: a negative beta would favour the actions that did '
            "worst. Use beta >= 0 (0 is behaviour cloning)."
        )


MARWILTrainer = build_trainer(
    "MARWIL",
    default_config=DEFAULT_CONFIG,
    default_policy=MARWILTorchPolicy,
    validate_config=validate_config,
)
