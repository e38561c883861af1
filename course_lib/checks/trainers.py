"""Graders for notebooks/12_trainers.ipynb: the 2021 RLlib tutorial's evaluation loop, and resuming
from a checkpoint."""

from __future__ import annotations

import numbers
import tempfile

from ._common import CheckFailed, LearnerCrashed, passed, require_callable
from ._learner_calls import call_learner

# Episodes of the evaluation check start from these seeds.
EVALUATION_SEEDS = (0, 1, 2)

# How long one call of your code may run before the check stops it. One greedy CartPole episode
# takes well under a second; resuming builds a trainer and trains 2 small iterations (a second or
# two). A slow laptop needs a few times that.
TIME_LIMIT_S = 60.0


class _RecordingTrainer:
    """Passes everything to a trainer, and notes how ``compute_single_action`` is called."""

    def __init__(self, trainer):
        self._trainer = trainer
        self.explore_args = []

    def compute_single_action(self, observation, *args, **kwargs):
        if isinstance(observation, tuple):
            raise CheckFailed(
                "12.1",
                "compute_single_action got a tuple instead of an observation. In gymnasium, "
                "env.reset() returns (obs, info): unpack it with obs, info = env.reset(seed=seed).",
            )
        self.explore_args.append(kwargs.get("explore"))
        return self._trainer.compute_single_action(observation, *args, **kwargs)

    compute_action = compute_single_action

    def __getattr__(self, name):
        return getattr(self._trainer, name)


def _watched_env(max_episode_steps: int):
    """CartPole with a time limit, noting the seeds of its resets and any step taken after an
    episode ended."""
    import gymnasium as gym

    class WatchedEnv(gym.Wrapper):
        def __init__(self, env):
            super().__init__(env)
            self.reset_seeds, self.steps_after_end, self.ended_by = [], 0, None

        def reset(self, *, seed=None, options=None):
            self.reset_seeds.append(seed)
            self.ended_by = None
            return self.env.reset(seed=seed, options=options)

        def step(self, action):
            if self.ended_by is not None:
                self.steps_after_end += 1
            obs, reward, terminated, truncated, info = self.env.step(action)
            if self.ended_by is None and (terminated or truncated):
                self.ended_by = "terminated" if terminated else "truncated"
            return obs, reward, terminated, truncated, info

    return WatchedEnv(gym.make("CartPole-v1", max_episode_steps=max_episode_steps))


def _reference_episode(trainer, env, seed: int) -> float:
    """The 2021 RLlib tutorial's evaluation loop with gymnasium's API."""
    obs, info = env.reset(seed=seed)
    episode_return, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
        episode_return += reward
    return episode_return


def _evaluate_explaining_gym_api(evaluate_episode, trainer, env, seed):
    """Run your loop; the old gym API's 4-tuple unpacking gets its own hint."""
    try:
        return evaluate_episode(trainer, env, seed)
    except ValueError as error:
        if "unpack" in str(error) and "expected 4" in str(error):
            raise CheckFailed(
                "12.1",
                f"{error}: gymnasium's env.step returns 5 values. Use the 5-tuple: "
                "obs, reward, terminated, truncated, info = env.step(action).",
            ) from None
        raise


def check_evaluation_loop(evaluate_episode) -> None:
    """Exercise 12.1: ``evaluate_episode(trainer, env, seed) -> float``, the 2021 RLlib tutorial's
    loop with greedy actions.

    A PPO trainer trained for one iteration plays one episode per seed, in CartPole cut at a time
    limit chosen so that some episodes end terminated and others truncated; the returns must equal
    those of the reference loop.
    """
    require_callable("check_evaluation_loop", "evaluate_episode", evaluate_episode)
    import gymnasium as gym

    from course_lib.agents.ppo import PPOTrainer

    with tempfile.TemporaryDirectory(prefix="check-11-1-") as logdir:
        config = {
            "num_workers": 0,
            "num_envs_per_worker": 4,
            "train_batch_size": 1000,
            "lr": 1e-3,
            "seed": 0,
            "model": {"fcnet_hiddens": [64, 64]},
            "logger_config": {"logdir": logdir},
        }
        trainer = PPOTrainer(config=config, env="CartPole-v1")
        try:
            trainer.train()
            # A time limit below the middle episode's length: the shortest episode terminates, the
            # others are truncated.
            lengths = sorted(
                _reference_episode(trainer, gym.make("CartPole-v1"), seed)
                for seed in EVALUATION_SEEDS
            )
            limit = max(int(lengths[1]) - 1, 10)
            for seed in EVALUATION_SEEDS:
                expected = _reference_episode(
                    trainer, gym.make("CartPole-v1", max_episode_steps=limit), seed
                )
                env, recorder = _watched_env(limit), _RecordingTrainer(trainer)
                got = call_learner(
                    "12.1",
                    f"evaluate_episode(trainer, env, seed={seed})",
                    _evaluate_explaining_gym_api,
                    evaluate_episode,
                    recorder,
                    env,
                    seed,
                    seconds=TIME_LIMIT_S,
                    hint="a while loop over the env that never ends: stop when terminated OR "
                    "truncated (a trained policy can balance the pole for ever, so a loop that "
                    "waits for `terminated` alone may never end)",
                )
                _explain_episode(seed, expected, got, env, recorder)
        finally:
            trainer.stop()
    passed(
        "12.1",
        f"greedy returns for seeds {list(EVALUATION_SEEDS)} match "
        f"the reference loop (episodes cut at {limit} steps).",
    )


def _explain_episode(seed, expected, got, env, recorder) -> None:
    if not env.reset_seeds:
        raise CheckFailed(
            "12.1",
            "the env passed in was never reset. Play in "
            "that env: obs, info = env.reset(seed=seed).",
        )
    if env.reset_seeds[0] != seed:
        raise CheckFailed(
            "12.1",
            f"the env was reset with seed={env.reset_seeds[0]!r}, not {seed}. Reset with "
            "env.reset(seed=seed), so that the same seed always plays the same episode.",
        )
    if not recorder.explore_args:
        raise CheckFailed(
            "12.1",
            "choose each action with trainer.compute_single_action(obs, explore=False): it applies "
            "the trainer's observation filter before asking the policy.",
        )
    if any(explore is not False for explore in recorder.explore_args):
        raise CheckFailed(
            "12.1",
            "pass explore=False to compute_single_action: without it the trainer samples actions "
            "as in training, so the same seed gives different "
            "returns. explore=False: the greedy action.",
        )
    if env.steps_after_end:
        ended_by = env.ended_by or "terminated or truncated"
        raise CheckFailed(
            "12.1",
            f"your loop kept stepping after the episode was {ended_by} (seed {seed}). Stop when "
            "terminated OR truncated: while not (terminated or truncated).",
        )
    if env.ended_by is None:
        raise CheckFailed(
            "12.1",
            "your loop stopped before the episode ended (seed "
            f"{seed}). Play until terminated or truncated.",
        )
    if not isinstance(got, numbers.Real):
        raise CheckFailed(
            "12.1",
            "return the episode's return as one number (a "
            f"float), got {type(got).__name__} {got!r:.60}.",
        )
    if float(got) != float(expected):
        raise CheckFailed(
            "12.1",
            f"seed {seed}: the episode's return should be {expected}, got {got}. Add up every "
            "reward of the episode (episode_reward += reward after each step) and return the sum.",
        )


def check_resume(resume) -> None:
    """Exercise 12.2: ``resume(trainer_cls, config, checkpoint, iterations) -> list of results``,
    trainer stopped.

    A seeded PG run is trained 2 iterations, saved, and trained 2 more; the learner's resumed run
    must reproduce those 2 results exactly.
    """
    require_callable("check_resume", "resume", resume)
    from course_lib.agents.pg import PGTrainer

    built, stopped = [], []

    class WatchedPG(PGTrainer):
        def setup(self, config):
            built.append(self)
            super().setup(config)

        def cleanup(self):
            stopped.append(self)
            super().cleanup()

    with tempfile.TemporaryDirectory(prefix="check-11-2-") as logdir:
        config = {
            "env": "CartPole-v1",
            "num_workers": 0,
            "num_envs_per_worker": 2,
            "rollout_fragment_length": 100,
            "train_batch_size": 200,
            "seed": 3,
            "logger_config": {"logdir": logdir},
        }
        straight = PGTrainer(config=config)
        try:
            for _ in range(2):
                straight.train()
            checkpoint = straight.save(f"{logdir}/midway")
            expected = [straight.train() for _ in range(2)]
        finally:
            straight.stop()

        try:
            results = call_learner(
                "12.2",
                "resume(trainer_cls, config, checkpoint, iterations)",
                resume,
                WatchedPG,
                dict(config),
                checkpoint,
                2,
                seconds=TIME_LIMIT_S,
                hint="a loop of trainer.train() that never ends: call it `iterations` times",
            )
        except LearnerCrashed:
            _require_given_config(built, config)
            raise
        finally:
            leftover = [trainer for trainer in built if trainer not in stopped]
            for trainer in leftover:
                trainer.stop()
        _require_given_config(built, config)
        _explain_resume(results, expected, built, leftover)
    passed(
        "12.2",
        "the restored run continued at iteration 3 and "
        "repeated the uninterrupted run's results exactly.",
    )


def _require_given_config(built, config) -> None:
    for trainer in built:
        changed = sorted(
            key
            for key, value in config.items()
            if key != "logger_config" and trainer.config.get(key) != value
        )
        if changed:
            raise CheckFailed(
                "12.2",
                f"your trainer's config differs from the one you were given in {changed}. A "
                "checkpoint continues the run it came from: build the trainer with that run's "
                "config, trainer_cls(config=config), then restore.",
            )


def _explain_resume(results, expected, built, leftover) -> None:
    if not built:
        raise CheckFailed(
            "12.2",
            "no trainer was built. Build a fresh one from the class and config you were given: "
            "trainer = trainer_cls(config=config).",
        )
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise CheckFailed(
            "12.2",
            "return the list of the dicts that trainer.train() "
            f"returned, got {type(results).__name__}.",
        )
    if len(results) != len(expected):
        raise CheckFailed(
            "12.2",
            f"asked for {len(expected)} iterations, got {len(results)} results. Call "
            "trainer.train() `iterations` times and keep each result.",
        )
    iterations = [r.get("training_iteration") for r in results]
    if iterations == [1, 2]:
        raise CheckFailed(
            "12.2",
            "your trainer started again at iteration 1: call trainer.restore(checkpoint) after "
            "building it and before training.",
        )
    if iterations != [r["training_iteration"] for r in expected]:
        raise CheckFailed(
            "12.2",
            f"the resumed iterations should be {[r['training_iteration'] for r in expected]}, got "
            f"{iterations}. Restore once, then train.",
        )
    for want, have in zip(expected, results, strict=True):
        if have.get("hist_stats", {}).get("episode_reward") != want["hist_stats"]["episode_reward"]:
            raise CheckFailed(
                "12.2",
                "the resumed run played other episodes than the uninterrupted one. Build the "
                "trainer with the config you were given (its "
                "seed included), unchanged, then restore.",
            )
    if leftover:
        raise CheckFailed(
            "12.2",
            "the results are right, but the trainer was left running: call trainer.stop() before "
            "returning. It stops the rollout workers and closes the result files.",
        )
