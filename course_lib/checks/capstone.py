"""Grader of lesson 21's challenge: learn traffic lights for a 3 x 3 grid within a fixed budget.

The grader runs your training function itself, then evaluates the trained policies greedily on
traffic it never showed you (held-out episode seeds), next to the hand-written controllers.
"""

from __future__ import annotations

import numpy as np

from ._common import CheckFailed, passed, require_callable
from ._learner_calls import call_learner

CHALLENGE_ENV = {
    "rows": 3,
    "cols": 3,
    "arrival_rate": {"ns": 0.3, "ew": 0.1},
    "episode_length": 200,
}
CHALLENGE_BUDGET = 100_000  # agent steps sampled, all policies together
CHALLENGE_SEED = 0  # the training seed the grader passes
HELD_OUT_SEEDS = tuple(range(2000, 2010))  # episode seeds of the evaluation traffic
# Come within 5 % of longest-queue: mean waiting time at most 1.05 x its own on the held-out seeds.
TARGET_VS_LONGEST_QUEUE = 1.05
# Hang protection only (a learner's loop that never ends), far above the reference's time.
TRAINING_TIME_LIMIT_S = 900
_HANG_HINT = "a training loop that never reaches max_agent_steps (does it count agent steps?)"


def greedy_controller(trainer, policy_mapping_fn):
    """``controller(obs, env)`` that asks each agent's policy for its most likely action."""
    policy_of = {}

    def controller(obs, env):
        actions = {}
        for agent, agent_obs in obs.items():
            if agent not in policy_of:
                policy_of[agent] = policy_mapping_fn(agent, None)
            action = trainer.compute_single_action(
                agent_obs, policy_id=policy_of[agent], explore=False
            )
            actions[agent] = int(action)
        return actions

    return controller


def _agent_steps(trainer) -> tuple[int, int]:
    """(agent steps sampled, agent steps trained) from the trainer's plan counters."""
    metrics = trainer._shared_metrics()
    if metrics is None:
        raise CheckFailed(
            "21.1",
            "the trainer's execution plan keeps no counters, so the check cannot see how many "
            "agent steps it sampled: end the plan with StandardMetricsReporting(...).",
        )
    return (
        int(metrics.counters["num_agent_steps_sampled"]),
        int(metrics.counters["num_agent_steps_trained"]),
    )


def _evaluate(controller, seeds=HELD_OUT_SEEDS) -> tuple[float, int]:
    """Mean waiting time over ``seeds`` and the number of light switches the controller made."""
    from course_lib.envs.traffic import TrafficGridEnv

    env = TrafficGridEnv(CHALLENGE_ENV)
    waits, switches = [], 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            phase = env.phase.copy()
            obs, _, _, truncateds, _ = env.step(controller(obs, env))
            switches += int((env.phase != phase).sum())
            done = truncateds["__all__"]
        waits.append(env.metrics()["mean_waiting_time"])
    return float(np.mean(waits)), switches


def baseline_waits(seeds=HELD_OUT_SEEDS) -> dict:
    """Mean waiting time of each hand-written controller on the challenge grid."""
    from course_lib.envs.traffic import (
        FixedTimeController,
        LongestQueueController,
        MaxPressureController,
    )

    controllers = {
        "fixed-time": FixedTimeController(cycle=20),
        "max-pressure": MaxPressureController(),
        "longest-queue": LongestQueueController(),
    }
    return {name: _evaluate(controller, seeds)[0] for name, controller in controllers.items()}


def check_traffic_challenge(train_traffic_controller) -> None:
    """Exercise 21.1: learned lights for a 3 x 3 grid, within 5 % of longest-queue on new traffic.

    Calls ``train_traffic_controller(env_config, max_agent_steps, seed)`` with the challenge's
    grid (``CHALLENGE_ENV``), a budget of 100,000 agent steps sampled and seed 0. It must return
    ``(trainer, policy_mapping_fn)``: a course_lib trainer that sampled at most the budget and
    trained, and the mapping from agent id to policy id. Every agent then acts greedily
    (``explore=False``) on 10 held-out episodes (seeds 2000-2009, never passed to you); the
    mean waiting time must be at most 1.05 x longest-queue's on the same traffic.

    Measured there (steps per vehicle): fixed-time 5.67, max-pressure 7.95, longest-queue 4.15,
    so the target is 4.35. A controller that never switches waits 24.97, a random one 12.29.
    The reference solution (one PPO policy shared by all nine intersections, rewards x 0.05,
    gamma 0.9, lr 1e-3; 99,360 agent steps in 23 iterations) measured 4.01, 4.13, 4.05, 4.00
    and 4.13 for training seeds 0-4 (``benchmarks/bench_traffic.py --challenge``): the target
    leaves a margin of 0.22 steps per vehicle (5 %) above its worst seed. The lesson's recipe
    unchanged (one policy per row, unscaled rewards, gamma 0.99) stayed near 20 with this
    budget. Beating longest-queue outright is the stretch goal: the grader says so when you do,
    but does not require it.
    """
    require_callable(
        "check_traffic_challenge", "train_traffic_controller", train_traffic_controller
    )
    returned = call_learner(
        "21.1",
        "train_traffic_controller(env_config, max_agent_steps, seed)",
        train_traffic_controller,
        dict(CHALLENGE_ENV),
        CHALLENGE_BUDGET,
        CHALLENGE_SEED,
        seconds=TRAINING_TIME_LIMIT_S,
        hint=_HANG_HINT,
    )
    if not (isinstance(returned, tuple) and len(returned) == 2 and callable(returned[1])):
        raise CheckFailed(
            "21.1",
            f"train_traffic_controller returned {type(returned).__name__} {returned!r:.80}; "
            "return the pair (trainer, policy_mapping_fn).",
        )
    trainer, policy_mapping_fn = returned
    if not hasattr(trainer, "compute_single_action") or not hasattr(trainer, "_shared_metrics"):
        raise CheckFailed(
            "21.1",
            f"the first item returned is {type(trainer).__name__}, not a trainer: return the "
            "trainer you built with build_trainer(...) and trained.",
        )
    sampled, trained = _agent_steps(trainer)
    if sampled > CHALLENGE_BUDGET:
        raise CheckFailed(
            "21.1",
            f"the trainer sampled {sampled:,} agent steps, over the budget of "
            f"{CHALLENGE_BUDGET:,}: stop calling train() once the next iteration would pass "
            "max_agent_steps (read result['info']['num_agent_steps_sampled']).",
        )
    if trained == 0:
        raise CheckFailed(
            "21.1",
            "the trainer never trained (0 agent steps trained): call trainer.train() in a loop "
            "until the budget is nearly spent.",
        )
    agent_ids = [f"i_{r}_{c}" for r in range(3) for c in range(3)]
    for agent in agent_ids:
        policy_id = policy_mapping_fn(agent, None)
        try:
            trainer.get_policy(policy_id)
        except (KeyError, ValueError) as error:
            raise CheckFailed(
                "21.1",
                f"policy_mapping_fn({agent!r}, None) returned {policy_id!r}, which is not one "
                f"of the trainer's policies ({error}).",
            ) from error
    wait, switches = _evaluate(greedy_controller(trainer, policy_mapping_fn))
    baselines = baseline_waits()
    target = TARGET_VS_LONGEST_QUEUE * baselines["longest-queue"]
    levels = ", ".join(f"{name} {value:.2f}" for name, value in baselines.items())
    if switches == 0:
        raise CheckFailed(
            "21.1",
            f"on the held-out traffic your policies never switched a light (mean waiting time "
            f"{wait:.2f}; {levels}). The greedy policy always asks for the phase it has: it "
            "learned nothing useful yet. Look at the critic first: with returns in the hundreds "
            "it cannot fit them (see the hints).",
        )
    if wait > target:
        raise CheckFailed(
            "21.1",
            f"mean waiting time {wait:.2f} steps per vehicle on the {len(HELD_OUT_SEEDS)} "
            f"held-out episodes, above the target {target:.2f} (1.05 x longest-queue); "
            f"{levels}. Trained on {trained:,} agent steps. Open the hints for what made the "
            "difference in the reference solution.",
        )
    stretch = (
        " You also beat longest-queue: the stretch goal."
        if wait < baselines["longest-queue"]
        else f" Stretch goal: longest-queue's {baselines['longest-queue']:.2f}."
    )
    passed(
        "21.1",
        f"mean waiting time {wait:.2f} on {len(HELD_OUT_SEEDS)} held-out episodes after "
        f"{sampled:,} agent steps, under the target {target:.2f} ({levels}).{stretch}",
    )
