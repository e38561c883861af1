"""PPO: many SGD passes over each batch, kept safe by a clipped objective and a KL penalty.

The execution plan adds three steps to A2C's: standardise the advantages over the whole batch,
run ``num_sgd_iter`` epochs of minibatches of ``sgd_minibatch_size`` rows, then adapt the KL
coefficient from the KL the learner measured. Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.ppo.ppo_torch_policy import PPOTorchPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import (
    ConcatBatches,
    ParallelRollouts,
    StandardizeFields,
    StandardMetricsReporting,
    TrainOneStep,
)
from course_lib.sample_batch import SampleBatch

# PPO's settings, in one place: PPOTorchPolicy reads its defaults from this dict too.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "use_critic": True,
    "use_gae": True,
    # GAE: lambda < 1 trades a little critic bias for much less variance. RLlib 2021's lambda
    # (1.0) and lr (5e-5) learn CartPole-sized problems slowly; 0.95 and 3e-4 are safer starts.
    "lambda": 0.95,
    "lr": 3e-4,
    # Initial weight of the KL penalty, and the KL per update that update_kl steers towards.
    "kl_coeff": 0.2,
    "kl_target": 0.01,
    # The probability ratio is clipped to [1 - clip_param, 1 + clip_param].
    "clip_param": 0.3,
    # V may move at most this far from the value recorded while sampling (in reward units).
    "vf_clip_param": 10.0,
    "vf_loss_coeff": 1.0,
    "entropy_coeff": 0.0,
    "grad_clip": None,
    "model": {"vf_share_layers": False},
    # === The trainer's settings ===
    "num_workers": 0,
    "num_envs_per_worker": 8,
    "rollout_fragment_length": 250,
    "train_batch_size": 2000,
    # SGD: epochs over each train batch, and rows per minibatch.
    "num_sgd_iter": 10,
    "sgd_minibatch_size": 256,
}


def validate_config(config: dict) -> None:
    if config["sgd_minibatch_size"] > config["train_batch_size"]:
        raise ValueError(
            f"sgd_minibatch_size ({config['sgd_minibatch_size']}) is larger than train_batch_size "
            f"({config['train_batch_size']}): every minibatch would be the whole batch. "
            "Lower sgd_minibatch_size."
        )


class UpdateKL:
    """After each SGD round: raise or lower each policy's KL coefficient from the measured KL."""

    def __init__(self, workers):
        self.workers = workers

    def __call__(self, item):
        batch, info = item
        for policy_id, result in info.items():
            policy = self.workers.local_worker().get_policy(policy_id)
            if "kl" in result["learner_stats"] and hasattr(policy, "update_kl"):
                policy.update_kl(result["learner_stats"]["kl"])
        return item


def execution_plan(workers, config):
    """sample -> concat -> standardise advantages -> SGD epochs -> adapt KL -> report."""
    multiagent = config["multiagent"]
    rollouts = ParallelRollouts(workers, mode="bulk_sync")
    train_op = (
        rollouts.combine(
            ConcatBatches(
                min_batch_size=config["train_batch_size"],
                count_steps_by=multiagent["count_steps_by"],
            )
        )
        .for_each(StandardizeFields([SampleBatch.ADVANTAGES]))
        .for_each(
            TrainOneStep(
                workers,
                policies=multiagent["policies_to_train"],
                num_sgd_iter=config["num_sgd_iter"],
                sgd_minibatch_size=config["sgd_minibatch_size"],
            )
        )
        .for_each(UpdateKL(workers))
    )
    return StandardMetricsReporting(train_op, workers, config)


PPOTrainer = build_trainer(
    "PPO",
    default_config=DEFAULT_CONFIG,
    default_policy=PPOTorchPolicy,
    validate_config=validate_config,
    execution_plan=execution_plan,
)
