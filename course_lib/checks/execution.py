"""Graders for notebooks/11_execution_plans.ipynb: your execution plan runs inside a real trainer.

Each grader builds a trainer around your plan with ``build_trainer``, records every sampled batch
(``on_sample_end``) and every batch a policy learns on (``on_learn_on_batch``), runs a few
``train()`` calls and compares what happened with what the reference plan does.
"""

from __future__ import annotations

import shutil
import tempfile

import numpy as np

from ._common import CheckFailed, passed, require_callable

RESULT_KEYS = ("episode_reward_mean", "timesteps_total", "timesteps_this_iter", "info", "timers")

# Exercise 11.1: 2 envs x 50 steps = 100 rows per sample; 4 samples make a train batch of 400 rows;
# 3 epochs of 4 minibatches of 100 rows = 12 learn_on_batch calls per train().
PPO_SIZES = {
    "num_envs_per_worker": 2,
    "rollout_fragment_length": 50,
    "train_batch_size": 400,
    "sgd_minibatch_size": 100,
    "num_sgd_iter": 3,
}

# Exercise 11.2: 4 steps per stored fragment; the buffer is ready after 25 fragments (100 rows);
# from then on, each round stores 4 steps and trains once on 32 replayed rows.
REPLAY_SIZES = {
    "rollout_fragment_length": 4,
    "train_batch_size": 32,
    "learning_starts": 100,
    "buffer_size": 1000,
}
# With more sampled steps than this and still nothing learned, the buffer is never going to be
# replayed.
REPLAY_GIVE_UP_STEPS = 1000


class _Recording:
    """What the callbacks saw: sampled batches and learned-on batches, with the sampled-step count
    at each learn."""

    def __init__(self):
        self.sampled: list = []  # SampleBatch per sample() call
        self.learned: list = []  # SampleBatch per learn_on_batch() call
        self.steps_at_learn: list[int] = []
        self.steps_sampled = 0

    def callbacks_class(self, *, give_up_steps: int | None = None, exercise: str = ""):
        from course_lib.callbacks import DefaultCallbacks

        recording = self

        class RecordingCallbacks(DefaultCallbacks):
            def on_sample_end(self, *, samples, **kwargs):
                recording.sampled.append(samples.copy())
                recording.steps_sampled += samples.count
                if (
                    give_up_steps is not None
                    and not recording.learned
                    and recording.steps_sampled > give_up_steps
                ):
                    raise CheckFailed(
                        exercise,
                        f"{recording.steps_sampled} steps were sampled and the policy has not "
                        f"learned once (learning_starts is {REPLAY_SIZES['learning_starts']}). "
                        "Store every sampled batch in the buffer that Replay reads from "
                        "(.for_each(StoreToReplayBuffer(local_buffer=buffer)) on the store op, "
                        "one buffer for both ops), pass learning_starts=config['learning_starts'] "
                        "to Replay, and end the replay op with .for_each(TrainOneStep(workers)).",
                    )

            def on_learn_on_batch(self, *, train_batch, **kwargs):
                recording.learned.append(train_batch.copy())
                recording.steps_at_learn.append(recording.steps_sampled)

        return RecordingCallbacks


def _build(exercise: str, plan, name: str, default_config: dict, policy_class, config: dict):
    """A trainer around ``plan``; a crash while building it becomes a CheckFailed that names the
    likely cause."""
    from course_lib.agents import build_trainer

    trainer_class = build_trainer(
        name, default_config=default_config, default_policy=policy_class, execution_plan=plan
    )
    try:
        return trainer_class(config=config)
    except (
        CheckFailed,
        NotImplementedError,
    ):  # your stub's NotImplementedError is the message to see
        raise
    except Exception as error:
        raise CheckFailed(
            exercise,
            f"building a trainer around your plan raised {type(error).__name__}: {error}. "
            "Your function is called once, as plan(workers, config), and must return the iterator.",
        ) from error


def _stop(trainer) -> None:
    from course_lib.execution import LocalIterator

    if not isinstance(trainer.train_exec_impl, LocalIterator):
        trainer.train_exec_impl = LocalIterator(
            []
        )  # Trainer.cleanup() closes the plan; give it one it can close
    trainer.stop()


def _pull(exercise: str, what: str, pull, hint: str):
    try:
        return pull()
    except (
        CheckFailed,
        NotImplementedError,
    ):  # your stub's NotImplementedError is the message to see
        raise
    except Exception as error:
        raise CheckFailed(
            exercise, f"{what} raised {type(error).__name__}: {error}. {hint}"
        ) from error


def _check_plan_object(exercise: str, plan) -> None:
    from course_lib.execution import LocalIterator

    if plan is None:
        raise CheckFailed(
            exercise,
            "your plan returned None. Return the end of the chain: "
            "return StandardMetricsReporting(train_op, workers, config).",
        )
    if not isinstance(plan, LocalIterator):
        raise CheckFailed(
            exercise,
            f"your plan returned a {type(plan).__name__}; return the LocalIterator at the end of "
            "your chain of operators: return StandardMetricsReporting(train_op, workers, config).",
        )


def _check_result(exercise: str, result) -> None:
    from course_lib.sample_batch import MultiAgentBatch, SampleBatch

    if isinstance(result, dict) and all(key in result for key in RESULT_KEYS):
        return
    if isinstance(result, tuple) and len(result) == 2:
        found = "(batch, info) pairs, the output of TrainOneStep"
    elif isinstance(result, (SampleBatch, MultiAgentBatch)):
        found = "sample batches"
    elif isinstance(result, dict):
        found = f"dicts without the keys {[key for key in RESULT_KEYS if key not in result]}"
    else:
        found = f"{type(result).__name__} items"
    raise CheckFailed(
        exercise,
        f"your plan yields {found}, but each train() needs a result dict. End the plan with "
        "StandardMetricsReporting(train_op, workers, config): "
        "it turns the training stream into result dicts.",
    )


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as multisets (minibatches are shuffled, so the rows come in another order)."""
    return a.shape == b.shape and np.allclose(np.sort(a), np.sort(b), atol=1e-4)


def check_execution_plan(my_plan) -> None:
    """Exercise 11.1: PPO's plan without the KL update: bulk_sync -> ConcatBatches ->
    StandardizeFields -> TrainOneStep(SGD)."""
    require_callable("check_execution_plan", "my_plan", my_plan)
    from course_lib.agents.ppo import DEFAULT_CONFIG, PPOTorchPolicy

    ex = "11.1"
    sizes = PPO_SIZES
    rows_per_sample = sizes["num_envs_per_worker"] * sizes["rollout_fragment_length"]
    minibatches = sizes["train_batch_size"] // sizes["sgd_minibatch_size"]
    expected_calls = sizes["num_sgd_iter"] * minibatches
    recording = _Recording()
    logdir = tempfile.mkdtemp(prefix="check_10_1_")
    config = {
        "env": "CartPole-v1",
        "num_workers": 0,
        "seed": 0,
        "model": {"fcnet_hiddens": [16]},
        **sizes,
        "callbacks": recording.callbacks_class(),
        "logger_config": {"logdir": logdir},
    }
    trainer = _build(ex, my_plan, "GraderTrainer", DEFAULT_CONFIG, PPOTorchPolicy, config)
    try:
        _check_plan_object(ex, trainer.train_exec_impl)
        hint = (
            "Build it in this order: ParallelRollouts(workers, "
            "mode='bulk_sync').combine(ConcatBatches(min_batch_size=...))"
            ".for_each(StandardizeFields(['advantages'])).for_each(TrainOneStep(...)); "
            "StandardizeFields takes a batch, TrainOneStep returns (batch, info)."
        )
        results, sampled_at, learned_at = [], [0], [0]
        for pull in (lambda: next(trainer.train_exec_impl), trainer.train):
            result = _pull(ex, "pulling one result from your plan", pull, hint)
            _check_result(ex, result)
            results.append(result)
            sampled_at.append(len(recording.sampled))
            learned_at.append(len(recording.learned))

        for i, result in enumerate(results):
            steps = result["timesteps_this_iter"]
            if steps < sizes["train_batch_size"]:
                raise CheckFailed(
                    ex,
                    f"one train() sampled {steps} steps, less than "
                    f"train_batch_size={sizes['train_batch_size']}: the policy trained on single "
                    f"samples of {rows_per_sample} rows. Collect them first with "
                    ".combine(ConcatBatches(min_batch_size=config['train_batch_size'])).",
                )
            if steps > sizes["train_batch_size"]:
                raise CheckFailed(
                    ex,
                    f"one train() sampled {steps} steps; with "
                    f"train_batch_size={sizes['train_batch_size']} it should sample exactly "
                    f"{sizes['train_batch_size']} (samples of {rows_per_sample}). "
                    "Use ConcatBatches(min_batch_size=config['train_batch_size']), "
                    "not a fixed number.",
                )
            learned = recording.learned[learned_at[i] : learned_at[i + 1]]
            counts = [batch.count for batch in learned]
            if counts != [sizes["sgd_minibatch_size"]] * expected_calls:
                if counts == [sizes["train_batch_size"]]:
                    problem = (
                        "one learn_on_batch call on the whole batch: pass "
                        "num_sgd_iter and sgd_minibatch_size to TrainOneStep"
                    )
                elif counts == [sizes["train_batch_size"]] * sizes["num_sgd_iter"]:
                    problem = (
                        "epochs over the whole batch, without minibatches: pass "
                        "sgd_minibatch_size=config['sgd_minibatch_size'] to TrainOneStep"
                    )
                elif counts == [sizes["sgd_minibatch_size"]] * minibatches:
                    problem = (
                        "one epoch of minibatches: pass "
                        "num_sgd_iter=config['num_sgd_iter'] to TrainOneStep"
                    )
                else:
                    problem = (
                        "pass num_sgd_iter=config['num_sgd_iter'] and "
                        "sgd_minibatch_size=config['sgd_minibatch_size'] to TrainOneStep"
                    )
                raise CheckFailed(
                    ex,
                    f"expected {expected_calls} learn_on_batch calls of "
                    f"{sizes['sgd_minibatch_size']} rows per train() ({sizes['num_sgd_iter']} "
                    f"epochs x {minibatches} minibatches); got {len(counts)} "
                    f"calls of {sorted(set(counts))} rows. Looks like {problem}.",
                )

            raw = np.concatenate(
                [b["advantages"] for b in recording.sampled[sampled_at[i] : sampled_at[i + 1]]]
            ).astype(np.float64)
            first_epoch = np.concatenate([b["advantages"] for b in learned[:minibatches]]).astype(
                np.float64
            )
            reference = (raw - raw.mean()) / max(raw.std(), 1e-4)
            if _same_values(first_epoch, reference):
                continue
            if _same_values(first_epoch, raw):
                raise CheckFailed(
                    ex,
                    f"the policy learned on raw advantages (mean {raw.mean():.2f}, std "
                    f"{raw.std():.2f}). Standardize them over the whole batch "
                    "first: .for_each(StandardizeFields(['advantages'])) "
                    "between ConcatBatches and TrainOneStep.",
                )
            if abs(first_epoch.mean()) < 1e-3 and abs(first_epoch.std() - 1) < 1e-2:
                raise CheckFailed(
                    ex,
                    "the advantages have mean 0 and std 1, but not over the whole batch: you "
                    "standardized each sample before concatenating. Put "
                    "StandardizeFields(['advantages']) after ConcatBatches.",
                )
            raise CheckFailed(
                ex,
                f"the advantages the policy learned on (mean {first_epoch.mean():.3f}, std "
                f"{first_epoch.std():.3f}) are not the sampled advantages standardized over the "
                "train batch. Use StandardizeFields(['advantages']) after "
                "ConcatBatches and leave the column otherwise alone.",
            )
    finally:
        _stop(trainer)
        shutil.rmtree(logdir, ignore_errors=True)
    passed(
        ex,
        f"each train() sampled {sizes['train_batch_size']} steps, standardized the advantages over "
        f"the batch and ran {sizes['num_sgd_iter']} epochs of "
        f"{minibatches} minibatches of {sizes['sgd_minibatch_size']} rows.",
    )


def check_replay_plan(replay_plan) -> None:
    """Exercise 11.2: DQN's plan without priorities: store -> buffer; buffer -> replay ->
    TrainOneStep; round-robin."""
    require_callable("check_replay_plan", "replay_plan", replay_plan)
    from course_lib.agents.dqn import DEFAULT_CONFIG, DQNTorchPolicy

    ex = "11.2"
    sizes = REPLAY_SIZES
    fragment, replay_rows, starts = (
        sizes["rollout_fragment_length"],
        sizes["train_batch_size"],
        sizes["learning_starts"],
    )
    recording = _Recording()
    logdir = tempfile.mkdtemp(prefix="check_10_2_")
    config = {
        "env": "CartPole-v1",
        "num_workers": 0,
        "seed": 0,
        "model": {"fcnet_hiddens": [16]},
        "hiddens": [16],
        **sizes,
        "prioritized_replay": False,
        "timesteps_per_iteration": 0,
        "callbacks": recording.callbacks_class(give_up_steps=REPLAY_GIVE_UP_STEPS, exercise=ex),
        "logger_config": {"logdir": logdir},
    }
    trainer = _build(ex, replay_plan, "GraderReplayTrainer", DEFAULT_CONFIG, DQNTorchPolicy, config)
    try:
        plan = trainer.train_exec_impl
        _check_plan_object(ex, plan)
        if "ParallelRollouts" not in plan.name:
            # Without a sampling op the replay op waits for rows forever; say so instead of hanging.
            raise CheckFailed(
                ex,
                f"your plan ({plan.name}) never samples: the store op starts from "
                "ParallelRollouts(workers, mode='bulk_sync'), and both "
                "ops go into Concurrently([store_op, replay_op], ...).",
            )
        hint = (
            "The store op is "
            "ParallelRollouts(...).for_each(StoreToReplayBuffer(local_buffer=buffer)); "
            "the replay op is Replay(local_buffer=buffer, "
            "...).for_each(TrainOneStep(workers)); Concurrently takes the list of both."
        )
        results, learned_at = [], [0]
        for pull in (lambda: next(plan), trainer.train, trainer.train):
            result = _pull(ex, "pulling one result from your plan", pull, hint)
            _check_result(ex, result)
            results.append(result)
            learned_at.append(len(recording.learned))

        per_iteration = [learned_at[i + 1] - learned_at[i] for i in range(len(results))]
        totals = [result["timesteps_total"] for result in results]
        output_hint = (
            "the store op's batches reach StandardMetricsReporting and end a train() too. Pass "
            "output_indexes=[1] to Concurrently, so that only the replay op's results come out."
        )
        if not recording.learned:
            raise CheckFailed(
                ex,
                f"{len(results)} train() calls sampled {totals} "
                f"steps in all and trained nothing: {output_hint}",
            )
        counts = [batch.count for batch in recording.learned]
        if any(count != replay_rows for count in counts):
            raise CheckFailed(
                ex,
                f"the policy learned on batches of {sorted(set(counts))} rows; replayed batches "
                f"have train_batch_size={replay_rows} rows. Train on Replay(local_buffer=buffer, "
                "replay_batch_size=config['train_batch_size'], "
                "...), not on the freshly sampled batches.",
            )
        if recording.steps_at_learn[0] < starts:
            raise CheckFailed(
                ex,
                f"learning started after {recording.steps_at_learn[0]} sampled steps, before "
                f"learning_starts={starts}. Pass "
                "learning_starts=config['learning_starts'] to Replay.",
            )
        stored = {row.tobytes() for batch in recording.sampled for row in np.asarray(batch["obs"])}
        if any(
            row.tobytes() not in stored
            for batch in recording.learned
            for row in np.asarray(batch["obs"])
        ):
            raise CheckFailed(
                ex,
                "the policy learned on rows that were never "
                "sampled; replay from the buffer you store into.",
            )
        expected_totals = [starts + fragment * i for i in range(len(results))]
        if per_iteration != [1] * len(results) or totals != expected_totals:
            if (
                0 in per_iteration and max(per_iteration) == 1
            ):  # round-robin, but every other result is a stored batch
                raise CheckFailed(
                    ex,
                    "some train() calls ended without training (learn "
                    f"calls per train(): {per_iteration}): {output_hint}",
                )
            raise CheckFailed(
                ex,
                f"per train(): {per_iteration} learn calls, {totals} steps sampled in all; with "
                f"the two ops taking turns (one fragment of {fragment} steps stored, one batch "
                f"replayed) it would be one learn call and {expected_totals}. Use "
                "Concurrently([store_op, replay_op], mode='round_robin', output_indexes=[1]) "
                "(with mode='async' each op runs in its own thread and the two race).",
            )
    finally:
        _stop(trainer)
        shutil.rmtree(logdir, ignore_errors=True)
    passed(
        ex,
        f"nothing was trained before {starts} steps were stored; then each train() stored "
        f"{fragment} steps and trained once on {replay_rows} replayed rows.",
    )
