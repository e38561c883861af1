"""Graders for notebooks/02_ray_actors.ipynb: state that lives in an actor, actors that own an
env."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from ._common import (
    CheckFailed,
    expect_type,
    passed,
    require_actor_class,
    require_callable,
    require_ray,
)
from ._learner_calls import call_learner

# How long one call of your code (an actor method, or pool_map) may run before the check stops
# it. A right answer takes a second or two, mostly starting actors; a slow laptop a few more.
TIME_LIMIT_S = 60.0


def _report_returns(board, returns):
    """Task body: a task that holds an actor handle and records episode returns through it."""
    import ray

    ray.get([board.record.remote(r) for r in returns])
    return len(returns)


def _call(exercise: str, name: str, method: str, ref_factory):
    """Call an actor method of yours and fetch the result, within the time limit."""
    try:
        ref = ref_factory()
    except AttributeError as err:  # raised here, by the handle: the class has no such method
        raise CheckFailed(exercise, f"{name} has no method {method}(): {err}") from None
    return _get(exercise, f"{name}.{method}()", ref)


def _get(exercise: str, what: str, refs):
    """``ray.get`` of results your actor computes; a hang or a crash is explained in your terms."""
    import ray

    return call_learner(
        exercise,
        what,
        ray.get,
        refs,
        seconds=TIME_LIMIT_S,
        hint="the method never returns: a loop that never ends, or a ray.get inside the actor "
        "on something that never finishes",
    )


def check_scoreboard(Scoreboard) -> None:
    """Exercise 2.1: an actor that keeps episode returns sent from many tasks through its handle."""
    require_ray("check_scoreboard")
    require_actor_class("check_scoreboard", "2.1", "Scoreboard", Scoreboard)
    import ray

    board = Scoreboard.remote()
    try:
        count, mean, every = _check_scoreboard(board)
    finally:
        ray.kill(board)
    passed(
        "2.1",
        f"one actor kept {count} returns recorded by 3 tasks through its handle; mean {mean:.2f}.",
    )


def _check_scoreboard(board):
    import ray

    empty_mean = _call("2.1", "Scoreboard", "mean", lambda: board.mean.remote())
    if empty_mean != 0.0:
        raise CheckFailed("2.1", f"mean() before any record() should be 0.0, got {empty_mean!r}.")
    batches = [[10.0, 20.0, 30.0], [5.0], [12.5, 7.5, 40.0, 25.0]]
    reporter = ray.remote(num_cpus=0.25)(_report_returns)
    _get(
        "2.1",
        "Scoreboard.record() (called from 3 tasks)",
        [reporter.remote(board, returns) for returns in batches],
    )
    every = [r for returns in batches for r in returns]
    count = _call("2.1", "Scoreboard", "count", lambda: board.count.remote())
    expect_type("2.1", "Scoreboard.count()", count, numbers.Integral, "an int, like 8")
    if count == 0:
        raise CheckFailed(
            "2.1",
            "count() is 0 after 8 record() calls, so record() kept nothing. Store the returns on "
            "self (create self.returns = [] in __init__ and append in record).",
        )
    if count != len(every):
        raise CheckFailed(
            "2.1",
            f"3 tasks recorded {len(every)} returns through the same handle; count() says {count}.",
        )
    mean = _call("2.1", "Scoreboard", "mean", lambda: board.mean.remote())
    if not isinstance(mean, (int, float)) or not math.isclose(mean, sum(every) / len(every)):
        raise CheckFailed(
            "2.1", f"mean() should be {sum(every) / len(every)} for returns {every}, got {mean!r}."
        )
    return count, mean, every


def reference_rollouts(seed: int, steps_per_call: list[int]) -> list[list[float]]:
    """What Exercise 2.2's actor must return: the same rules, run in this process."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    episode_return, out = 0.0, []
    for num_steps in steps_per_call:
        finished = []
        for _ in range(num_steps):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            episode_return += float(reward)
            if terminated or truncated:
                finished.append(episode_return)
                episode_return = 0.0
                env.reset()
        out.append(finished)
    env.close()
    return out


def check_cartpole_actor(CartPoleActor) -> None:
    """Exercise 2.2: an actor that owns a CartPole env and keeps its episode going across calls."""
    require_ray("check_cartpole_actor")
    require_actor_class("check_cartpole_actor", "2.2", "CartPoleActor", CartPoleActor)
    import ray

    calls, seeds = [150, 150, 200], [7, 8]
    actors = [CartPoleActor.remote(seed) for seed in seeds]
    try:
        got = [[_rollout(actor, n) for n in calls] for actor in actors]
    finally:
        for actor in actors:
            ray.kill(actor)
    for seed, mine in zip(seeds, got, strict=True):
        want = reference_rollouts(seed, calls)
        if mine == want:
            continue
        mine = [[float(r) for r in call] for call in mine]
        if mine[0] != want[0]:
            raise CheckFailed(
                "2.2",
                f"with seed={seed} the first rollout(150) gave returns {mine[0]}, expected "
                f"{want[0]}. In __init__, call env.reset(seed=seed) and "
                "env.action_space.seed(seed); take actions with env.action_space.sample(); after "
                "an episode ends (terminated or truncated), record "
                "its return and call env.reset() without a seed.",
            )
        if mine != want:
            raise CheckFailed(
                "2.2",
                f"the first call was right but later calls differ (got {mine[1:]}, expected "
                f"{want[1:]}). The episode in progress must carry over to the next rollout() call: "
                "keep the env and the running return on self, "
                "and don't reset at the start of rollout().",
            )
    passed(
        "2.2", f"two actors with seeds {seeds} matched the reference over {len(calls)} calls each."
    )


def _rollout(actor, num_steps: int) -> list:
    finished = _call("2.2", "CartPoleActor", "rollout", lambda: actor.rollout.remote(num_steps))
    example = "a list of the returns of the episodes that ended during the call, like [23.0]"
    return expect_type(
        "2.2", f"CartPoleActor.rollout({num_steps})", finished, (list, tuple), example
    )


class _PoolWorker:
    """The actor the grader hands to pool_map: ``process(x)`` says which actor did the work."""

    def process(self, x):
        import ray

        return x + 100, ray.get_runtime_context().get_actor_id()


def check_pool_map(pool_map) -> None:
    """Exercise 2.3: ``pool_map(actors, items)`` spreads items over actors with ``ActorPool``."""
    require_callable("check_pool_map", "pool_map", pool_map)
    require_ray("check_pool_map")
    import ray

    worker_cls = ray.remote(num_cpus=0.25)(_PoolWorker)
    actors = [worker_cls.remote() for _ in range(3)]
    items = list(range(12))

    def learner_step(fn, *args):
        return call_learner(
            "2.3",
            "pool_map(actors, items)",
            fn,
            *args,
            seconds=TIME_LIMIT_S,
            hint="a loop over the pool that never ends (pool.map and pool.get_next wait for "
            "results: don't wait for more results than you submitted)",
        )

    try:
        result = learner_step(pool_map, actors, items)
        example = "a list with one result per item, like list(pool.map(...))"
        # pool.map is lazy: its results must be fetched while the actors are still alive.
        result = learner_step(list, expect_type("2.3", "pool_map", result, Iterable, example))
    finally:
        for actor in actors:
            ray.kill(actor)
    if len(result) != len(items):
        raise CheckFailed("2.3", f"expected {len(items)} results, got {len(result)}.")
    values = [value for value, _ in result]
    if sorted(values) == [x + 100 for x in items] and values != [x + 100 for x in items]:
        raise CheckFailed(
            "2.3",
            "the results are out of order. ActorPool.map "
            "keeps the input order; map_unordered does not.",
        )
    if values != [x + 100 for x in items]:
        raise CheckFailed(
            "2.3",
            f"expected {[x + 100 for x in items][:4]}..., "
            f"got {values[:4]}... Call a.process.remote(v).",
        )
    used = {actor for _, actor in result}
    if len(used) < 2:
        raise CheckFailed(
            "2.3",
            "every item went to the same actor. Build ActorPool(actors) and use pool.map(lambda a, "
            "v: a.process.remote(v), items) so that items spread over all the actors.",
        )
    passed("2.3", f"{len(items)} items spread over {len(used)} actors; results in input order.")
