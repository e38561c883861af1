"""Graders for notebooks/17_custom_multi_agent_trainer.ipynb: a mapping by intersection group and a
traffic plan.

``check_map_by_row`` calls your mapping function for every intersection of a 3 x 2 grid, the way a
rollout worker does (``fn(agent_id, episode, worker=...)``). ``check_traffic_plan`` builds a PPO
trainer around your execution plan on a 1 x 2 traffic grid where ``i_0_0`` is played by policy
``"learned"`` and ``i_0_1`` by ``"frozen"``, with ``policies_to_train=["learned"]``, runs two
``train()`` calls and checks the result, which weights moved, and how the train batch was counted.
"""

from __future__ import annotations

import shutil
import tempfile

import numpy as np

from ._common import CheckFailed, passed, require_callable

RESULT_KEYS = ("episode_reward_mean", "timesteps_total", "info", "policy_reward_mean")

# 2 envs x 50 env steps x 2 agents = 200 agent steps per sample; a train batch of 400 agent steps
# is 2 samples (200 env steps). Counted in env steps it would take 4 samples: 800 agent steps.
PLAN_SIZES = {
    "num_envs_per_worker": 2,
    "rollout_fragment_length": 50,
    "train_batch_size": 400,
    "sgd_minibatch_size": 100,
    "num_sgd_iter": 2,
}


def check_map_by_row(map_by_row) -> None:
    """Exercise 17.1: ``map_by_row("i_<r>_<c>", episode, **kwargs) -> "row_<r>"``."""
    require_callable("check_map_by_row", "map_by_row", map_by_row)
    from course_lib.envs.traffic import intersection_groups

    expected = intersection_groups(3, 2, "rows")
    for agent_id, want in expected.items():
        try:
            got = map_by_row(agent_id, None, worker=None)
        except TypeError as error:
            raise CheckFailed(
                "17.1",
                f"map_by_row({agent_id!r}, episode, worker=...) raised TypeError: {error}. "
                "A rollout worker passes extra keyword arguments: define it as "
                "def map_by_row(agent_id, episode, **kwargs).",
            ) from error
        if not isinstance(got, str):
            raise CheckFailed(
                "17.1",
                f"map_by_row({agent_id!r}, ...) returned {got!r} ({type(got).__name__}); "
                f"a policy id is a string such as {want!r}.",
            )
        if got == agent_id:
            raise CheckFailed(
                "17.1",
                f"map_by_row({agent_id!r}, ...) returned the agent id itself: that is one policy "
                f"per intersection. Return the group of its row, {want!r}.",
            )
        if got != want:
            row, col = agent_id.split("_")[1:]
            hint = (
                " That is the column: the id is 'i_<row>_<col>', "
                "so the row is agent_id.split('_')[1]."
                if got == f"row_{col}"
                else ""
            )
            raise CheckFailed(
                "17.1", f"map_by_row({agent_id!r}, ...) returned {got!r}, expected {want!r}.{hint}"
            )
    passed("17.1", f"all {len(expected)} intersections of a 3 x 2 grid map to their row's policy")


def _learned_vs_frozen(agent_id, episode, **kwargs):
    return "learned" if agent_id == "i_0_0" else "frozen"


def check_traffic_plan(traffic_plan) -> None:
    """Exercise 17.2: your plan trains only ``policies_to_train`` on batches counted in agent
    steps."""
    require_callable("check_traffic_plan", "traffic_plan", traffic_plan)
    from course_lib.agents.ppo import DEFAULT_CONFIG, PPOTorchPolicy
    from course_lib.agents.trainer_template import build_trainer

    trainer_class = build_trainer(
        "CheckTrafficTrainer",
        default_config=DEFAULT_CONFIG,
        default_policy=PPOTorchPolicy,
        execution_plan=traffic_plan,
    )
    logdir = tempfile.mkdtemp(prefix="check_17_2_")
    config = {
        "env": "TrafficGrid",
        "env_config": {"rows": 1, "cols": 2, "episode_length": 50, "arrival_rate": 0.3},
        "num_workers": 0,
        "seed": 0,
        "lr": 1e-3,
        "vf_clip_param": 1000.0,
        **PLAN_SIZES,
        "logger_config": {"logdir": logdir},
        "multiagent": {
            "policies": {"learned": (None, None, None, {}), "frozen": (None, None, None, {})},
            "policy_mapping_fn": _learned_vs_frozen,
            "policies_to_train": ["learned"],
            "count_steps_by": "agent_steps",
        },
    }
    trainer = None
    try:
        trainer = trainer_class(config=config)
        before = trainer.get_weights()
        results = []
        for _ in range(2):
            try:
                results.append(trainer.train())
            except CheckFailed:
                raise
            except Exception as error:
                raise CheckFailed(
                    "17.2",
                    f"train() failed inside your plan: {type(error).__name__}: {error}. Build "
                    "rollouts -> ConcatBatches -> StandardizeFields -> TrainOneStep and return "
                    "StandardMetricsReporting(train_op, workers, config).",
                ) from error
        after = trainer.get_weights()
    finally:
        if trainer is not None:
            trainer.stop()
        shutil.rmtree(logdir, ignore_errors=True)
    result = results[-1]
    if not isinstance(result, dict) or any(key not in result for key in RESULT_KEYS):
        missing = [key for key in RESULT_KEYS if not isinstance(result, dict) or key not in result]
        raise CheckFailed(
            "17.2",
            f"the result lacks {missing}: return StandardMetricsReporting(train_op, workers, "
            "config), not the train op itself.",
        )
    learner = result["info"].get("learner", {})
    if "frozen" in learner or any(
        not np.array_equal(before["frozen"][k], after["frozen"][k]) for k in before["frozen"]
    ):
        raise CheckFailed(
            "17.2",
            "policy 'frozen' learned although policies_to_train is ['learned']: pass "
            "policies=config['multiagent']['policies_to_train'] to TrainOneStep.",
        )
    if all(np.array_equal(before["learned"][k], after["learned"][k]) for k in before["learned"]):
        raise CheckFailed(
            "17.2",
            "policy 'learned' did not change in two train() calls: end the train op with "
            "TrainOneStep(workers, policies=..., num_sgd_iter=..., sgd_minibatch_size=...).",
        )
    info = result["info"]
    per_iteration = info["num_agent_steps_trained"] / result["training_iteration"]
    batch = PLAN_SIZES["train_batch_size"]
    if per_iteration >= 2 * batch:
        raise CheckFailed(
            "17.2",
            f"each train batch held {per_iteration:.0f} agent steps for train_batch_size={batch}: "
            "ConcatBatches counted env steps (each is 2 agent steps here). Pass "
            "count_steps_by='agent_steps' (or config['multiagent']['count_steps_by']).",
        )
    if per_iteration < batch:
        raise CheckFailed(
            "17.2",
            f"each train batch held only {per_iteration:.0f} agent steps, fewer than "
            f"train_batch_size={batch}: combine the rollouts with "
            "ConcatBatches(min_batch_size=config['train_batch_size'], "
            "count_steps_by='agent_steps').",
        )
    passed(
        "17.2",
        f"only 'learned' trained, on {per_iteration:.0f} agent steps per train batch, and the "
        "result carries the standard metrics",
    )
