"""Grader for notebooks/03_environments.ipynb: a custom env that follows gymnasium's contract."""

from __future__ import annotations

from ._common import CheckFailed, passed

FEEDBACK_START, FEEDBACK_LOW, FEEDBACK_HIGH = 0, 1, 2


def _binary_search_episode(env, seed):
    """Play one episode with binary search; returns (guesses, total reward, terminated,
    truncated)."""
    obs, _ = env.reset(seed=seed)
    low, high = 0, env.action_space.n - 1
    guesses, total = [], 0.0
    while True:
        guess = (low + high) // 2
        guesses.append(guess)
        obs, reward, terminated, truncated, _ = env.step(guess)
        total += float(reward)
        if terminated or truncated:
            return guesses, total, terminated, truncated
        if obs == FEEDBACK_LOW:
            low = guess + 1
        elif obs == FEEDBACK_HIGH:
            high = guess - 1
        else:
            raise CheckFailed(
                "3.1",
                f"after the wrong guess {guess} the observation was "
                f"{obs!r}; expected 1 (too low) or 2 (too high).",
            )


def check_guess_number(GuessNumber) -> None:
    """Exercise 3.1: ``GuessNumber(env_config)`` passes ``check_env`` and plays by the rules."""
    import gymnasium as gym

    from course_lib.envs import EnvCheckError, check_env

    if not (isinstance(GuessNumber, type) and issubclass(GuessNumber, gym.Env)):
        raise CheckFailed(
            "3.1",
            "GuessNumber should be a class that subclasses "
            f"gymnasium.Env; got {GuessNumber!r:.60}.",
        )
    try:
        check_env(GuessNumber, {"size": 16, "max_guesses": 6}, n_steps=100)
    except EnvCheckError as err:
        raise CheckFailed("3.1", f"check_env found a problem: {err}") from None
    env = GuessNumber({"size": 16, "max_guesses": 6})
    if env.action_space != gym.spaces.Discrete(16) or env.observation_space != gym.spaces.Discrete(
        3
    ):
        raise CheckFailed(
            "3.1",
            f"with size=16 expected action_space Discrete(16) and observation_space Discrete(3), "
            f"got {env.action_space} and {env.observation_space}. Read both sizes from env_config.",
        )
    first_obs, _ = env.reset(seed=0)
    if first_obs != FEEDBACK_START:
        raise CheckFailed(
            "3.1", f"reset() should return observation 0 (no feedback yet), got {first_obs!r}."
        )
    targets = set()
    for seed in range(40):
        guesses, total, terminated, truncated = _binary_search_episode(env, seed)
        if not terminated or truncated:
            raise CheckFailed(
                "3.1",
                f"binary search (guesses {guesses}) should find any target in range(16) within 6 "
                "guesses and end the episode with terminated=True, truncated=False; "
                f"got terminated={terminated}, truncated={truncated}.",
            )
        if total != 1.0 - 0.1 * (len(guesses) - 1):
            raise CheckFailed(
                "3.1",
                f"guesses {guesses} earned {total}; expected -0.1 "
                "per wrong guess and +1 for the right one.",
            )
        targets.add(guesses[-1])
    if len(targets) < 8:
        raise CheckFailed(
            "3.1",
            f"over 40 seeds the target took only {sorted(targets)}; "
            "draw it with self.np_random.integers(size) in reset().",
        )
    # Five seeds, each reset twice: an unseeded target matches itself by chance only (1/16)^5 of the
    # time.
    first = [_binary_search_episode(env, seed)[0] for seed in range(3, 8)]
    if first != [_binary_search_episode(env, seed)[0] for seed in range(3, 8)]:
        raise CheckFailed(
            "3.1",
            "reset(seed=s) twice gave different targets for the same s; "
            "call super().reset(seed=seed) first and use self.np_random.",
        )
    env = GuessNumber({"size": 16, "max_guesses": 2})
    env.reset(seed=0)
    target = _binary_search_episode(GuessNumber({"size": 16, "max_guesses": 99}), 0)[0][-1]
    wrong = (target + 8) % 16
    outcomes = [env.step(wrong)[2:4] for _ in range(2)]
    if outcomes != [(False, False), (False, True)]:
        raise CheckFailed(
            "3.1",
            "with max_guesses=2, two wrong guesses should give (terminated, truncated) = (False, "
            "False) then (False, True): running out of guesses is "
            f"a time limit, not the end of the task. Got {outcomes}.",
        )
    passed("3.1", "GuessNumber passes check_env, is seeded, and tells terminated from truncated.")
