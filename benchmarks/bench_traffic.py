"""Lesson 17's benchmark: the learned traffic-signal controller against fixed-time and max-pressure.

The capstone's setup: a 2x2 TrafficGrid, demand 0.3 (north-south) / 0.1 (east-west) vehicles per
entry lane per step, 200-step episodes, one PPO policy per row of intersections trained for
20 iterations of 4,000 agent steps with the lesson's plan (train batch counted in agent steps).
Each training seed's policies are evaluated greedily on episodes with seeds 100-104, like the
baselines. Usage: ``python benchmarks/bench_traffic.py [--seeds 0 1 2 3 4] [--iterations 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from course_lib.agents.ppo import DEFAULT_CONFIG, PPOTorchPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.envs import (
    FixedTimeController,
    LongestQueueController,
    MaxPressureController,
    TrafficGridEnv,
    intersection_groups,
    run_controller,
)
from course_lib.execution import (
    ConcatBatches,
    ParallelRollouts,
    StandardizeFields,
    StandardMetricsReporting,
    TrainOneStep,
)
from course_lib.sample_batch import SampleBatch

ENV_CONFIG = {"rows": 2, "cols": 2, "arrival_rate": {"ns": 0.3, "ew": 0.1}, "episode_length": 200}
EVAL_SEEDS = range(100, 105)
GROUPS = intersection_groups(2, 2, "rows")


def traffic_plan(workers, config):
    """The capstone's plan: train batches counted in agent steps; only policies_to_train learn."""
    train_op = (
        ParallelRollouts(workers, mode="bulk_sync")
        .combine(
            ConcatBatches(min_batch_size=config["train_batch_size"], count_steps_by="agent_steps")
        )
        .for_each(StandardizeFields([SampleBatch.ADVANTAGES]))
        .for_each(
            TrainOneStep(
                workers,
                policies=config["multiagent"]["policies_to_train"],
                num_sgd_iter=config["num_sgd_iter"],
                sgd_minibatch_size=config["sgd_minibatch_size"],
            )
        )
    )
    return StandardMetricsReporting(train_op, workers, config)


def map_by_row(agent_id, episode, **kwargs):
    return GROUPS[agent_id]


TrafficTrainer = build_trainer(
    "TrafficTrainer",
    default_policy=PPOTorchPolicy,
    execution_plan=traffic_plan,
    default_config={
        **DEFAULT_CONFIG,
        "env": "TrafficGrid",
        "env_config": ENV_CONFIG,
        "num_workers": 0,
        "num_envs_per_worker": 4,
        "rollout_fragment_length": 250,
        "train_batch_size": 4000,
        "sgd_minibatch_size": 500,
        "num_sgd_iter": 8,
        "model": {"fcnet_hiddens": [64, 64]},
        "lr": 5e-4,
        "vf_clip_param": 1000.0,
        "multiagent": {
            "policies": {"row_0": (None, None, None, {}), "row_1": (None, None, None, {})},
            "policy_mapping_fn": map_by_row,
            "policies_to_train": ["row_0", "row_1"],
            "count_steps_by": "agent_steps",
        },
    },
)


def evaluate(controller) -> float:
    env = TrafficGridEnv(ENV_CONFIG)
    return float(
        np.mean([run_controller(env, controller, seed=s)["mean_waiting_time"] for s in EVAL_SEEDS])
    )


def learned_wait(seed: int, iterations: int) -> tuple[float, float]:
    start = time.perf_counter()
    trainer = TrafficTrainer(config={"seed": seed, "logger_config": {"logdir": tempfile.mkdtemp()}})
    for _ in range(iterations):
        trainer.train()
    seconds = time.perf_counter() - start

    def controller(obs, env):
        return {
            aid: int(trainer.compute_single_action(o, policy_id=GROUPS[aid], explore=False))
            for aid, o in obs.items()
        }

    wait = evaluate(controller)
    trainer.stop()
    return wait, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    baselines = {
        "fixed-time (cycle 20)": FixedTimeController(),
        "max-pressure": MaxPressureController(),
        "longest queue first": LongestQueueController(),
    }
    rows = {name: evaluate(ctl) for name, ctl in baselines.items()}
    runs = [learned_wait(seed, args.iterations) for seed in args.seeds]
    waits = [w for w, _ in runs]
    print("| controller | mean waiting time (steps per vehicle) | vs fixed-time |\n|---|---:|---:|")
    fixed = rows["fixed-time (cycle 20)"]
    for name, wait in rows.items():
        print(f"| {name} | {wait:.2f} | {wait / fixed:.2f}x |")
    print(
        f"| learned, one PPO policy per row (median of {len(runs)} training "
        f"seeds) | {statistics.median(waits):.2f} | {statistics.median(waits) / fixed:.2f}x |"
    )
    print(
        f"\nper training seed: {', '.join(f'{w:.2f}' for w in waits)}; "
        f"training time median {statistics.median(s for _, s in runs):.1f} s"
    )


if __name__ == "__main__":
    main()
