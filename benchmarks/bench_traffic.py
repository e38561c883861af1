"""Lesson 21's benchmark: the learned traffic-signal controller against fixed-time and max-pressure.

The capstone's setup: a 2x2 TrafficGrid, demand 0.3 (north-south) / 0.1 (east-west) vehicles per
entry lane per step, 200-step episodes, one PPO policy per row of intersections trained for
20 iterations of 4,000 agent steps with the lesson's plan (train batch counted in agent steps).
Each training seed's policies are evaluated greedily on episodes with seeds 100-104, like the
baselines. Usage: ``python benchmarks/bench_traffic.py [--seeds 0 1 2 3 4] [--iterations 20]``.

``--challenge`` measures exercise 21.1's reference solution instead: on the challenge's 3x3 grid,
one PPO policy shared by all nine intersections, rewards x 0.05, gamma 0.9, lr 1e-3, trained
within the grader's budget (100,000 agent steps sampled) and evaluated by the grader's own code on
its held-out seeds; they set the grader's target and margin (course_lib/checks/capstone.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from course_lib.agents.a3c.a3c_torch_policy import compute_gae_for_sample_batch
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


def scaled_gae(policy, batch, other_agent_batches=None, episode=None):
    batch[SampleBatch.REWARDS] = batch[SampleBatch.REWARDS] * 0.05
    return compute_gae_for_sample_batch(policy, batch)


ScaledRewardPPOPolicy = PPOTorchPolicy.with_updates(
    name="ScaledRewardPPOPolicy", postprocess_fn=scaled_gae
)


def map_to_shared(agent_id, episode, **kwargs):
    return "shared"


def challenge_reference(seed: int) -> tuple[float, float, int]:
    """Exercise 21.1's reference: (held-out mean waiting time, training seconds, agent steps)."""
    from course_lib.checks.capstone import (
        CHALLENGE_BUDGET,
        CHALLENGE_ENV,
        _agent_steps,
        _evaluate,
        greedy_controller,
    )

    start = time.perf_counter()
    trainer = TrafficTrainer(
        config={
            "env_config": CHALLENGE_ENV,
            "seed": seed,
            "gamma": 0.9,
            "lr": 1e-3,
            "rollout_fragment_length": 100,
            "logger_config": {"logdir": tempfile.mkdtemp()},
            "multiagent": {
                "policies": {"shared": (ScaledRewardPPOPolicy, None, None, {})},
                "policy_mapping_fn": map_to_shared,
                "policies_to_train": ["shared"],
                "count_steps_by": "agent_steps",
            },
        }
    )
    sampled = per_iteration = 0
    while sampled + per_iteration <= CHALLENGE_BUDGET:
        result = trainer.train()
        per_iteration = result["info"]["num_agent_steps_sampled"] - sampled
        sampled = result["info"]["num_agent_steps_sampled"]
    seconds = time.perf_counter() - start
    wait, _ = _evaluate(greedy_controller(trainer, map_to_shared))
    trainer.stop()
    return wait, seconds, _agent_steps(trainer)[0]


def main_challenge(seeds) -> None:
    from course_lib.checks.capstone import TARGET_VS_LONGEST_QUEUE, baseline_waits

    baselines = baseline_waits()
    for name, wait in baselines.items():
        print(f"{name}: {wait:.2f}")
    print(f"target: {TARGET_VS_LONGEST_QUEUE * baselines['longest-queue']:.2f}")
    for seed in seeds:
        wait, seconds, sampled = challenge_reference(seed)
        print(f"training seed {seed}: {wait:.2f} after {sampled:,} agent steps ({seconds:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--challenge", action="store_true", help="exercise 21.1's reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.challenge:
        main_challenge(args.seeds)
        return
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
