"""The graders accept right answers and reject wrong ones with the hint that fits the mistake."""

from __future__ import annotations

import pytest

from course_lib import checks
from course_lib.checks import ray_tasks
from course_lib.parallel import chunked

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture
def short_rendezvous(monkeypatch):
    """Wrong answers make a probe wait alone until the rendezvous gives up; keep that short here."""
    monkeypatch.setattr(ray_tasks, "RENDEZVOUS_TIMEOUT_S", 3.0)


# --- 1.1 parallel_map ---------------------------------------------------------------------------


def parallel_map_right(remote_fn, items):
    import ray

    return ray.get([remote_fn.remote(x) for x in items])


def test_parallel_map_accepts_submit_all_then_get(capsys):
    checks.check_parallel_map(parallel_map_right)
    assert "Exercise 1.1 passed" in capsys.readouterr().out


def test_parallel_map_detects_get_in_loop(short_rendezvous):
    import ray

    def get_in_loop(remote_fn, items):
        return [ray.get(remote_fn.remote(x)) for x in items]

    with pytest.raises(checks.CheckFailed, match="anti-pattern"):
        checks.check_parallel_map(get_in_loop)


def test_parallel_map_detects_returned_refs():
    with pytest.raises(checks.CheckFailed, match="ObjectRefs"):
        checks.check_parallel_map(lambda remote_fn, items: [remote_fn.remote(x) for x in items])


def test_parallel_map_detects_wrong_order():
    with pytest.raises(checks.CheckFailed, match="out of order"):
        checks.check_parallel_map(lambda f, items: list(reversed(parallel_map_right(f, items))))


def test_graders_reject_a_non_function_with_a_clear_message():
    with pytest.raises(TypeError, match=r"checks.check_parallel_map\(parallel_map\)"):
        checks.check_parallel_map(parallel_map_right([], []))


# --- 1.2 batched_map ----------------------------------------------------------------------------


def batched_map_right(fn, items, batch_size):
    import ray

    from course_lib.parallel import apply_to_chunk

    remote_chunk = ray.remote(apply_to_chunk)
    batches = ray.get([remote_chunk.remote(fn, chunk) for chunk in chunked(items, batch_size)])
    return [value for batch in batches for value in batch]


def test_batched_map_accepts_one_task_per_batch(capsys):
    checks.check_batched_map(batched_map_right)
    assert "23 items ran in 5 tasks" in capsys.readouterr().out


def test_batched_map_detects_one_task_per_item():
    import ray

    def per_item(fn, items, batch_size):
        return ray.get([ray.remote(fn).remote(x) for x in items])

    with pytest.raises(checks.CheckFailed, match="one task per item"):
        checks.check_batched_map(per_item)


def test_batched_map_detects_local_execution():
    with pytest.raises(checks.CheckFailed, match="not inside a Ray task"):
        checks.check_batched_map(lambda fn, items, batch_size: [fn(x) for x in items])


def test_batched_map_detects_unflattened_batches():
    import ray

    def unflattened(fn, items, batch_size):
        from course_lib.parallel import apply_to_chunk

        return ray.get(
            [ray.remote(apply_to_chunk).remote(fn, c) for c in chunked(items, batch_size)]
        )

    with pytest.raises(checks.CheckFailed, match="flatten"):
        checks.check_batched_map(unflattened)


# --- 1.3 as_completed ---------------------------------------------------------------------------


def as_completed_right(refs):
    import ray

    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield ray.get(ready[0])


def test_as_completed_accepts_ray_wait_loop(capsys):
    checks.check_as_completed(as_completed_right)
    assert "Exercise 1.3 passed" in capsys.readouterr().out


def test_as_completed_detects_submission_order(short_rendezvous):
    import ray

    def in_order(refs):
        for ref in refs:
            yield ray.get(ref)

    with pytest.raises(checks.CheckFailed, match="submission order"):
        checks.check_as_completed(in_order)


def test_as_completed_detects_missing_results(short_rendezvous):
    def first_only(refs):
        yield from list(as_completed_right(refs))[:1]

    with pytest.raises(checks.CheckFailed, match="exactly once"):
        checks.check_as_completed(first_only)


# --- 2.1 Scoreboard -----------------------------------------------------------------------------


class ScoreboardRight:
    def __init__(self):
        self.returns = []

    def record(self, episode_return):
        self.returns.append(episode_return)

    def count(self):
        return len(self.returns)

    def mean(self):
        return sum(self.returns) / len(self.returns) if self.returns else 0.0


class ScoreboardForgetful(ScoreboardRight):
    def record(self, episode_return):
        pass


def test_scoreboard_accepts_a_stateful_actor(capsys):
    import ray

    checks.check_scoreboard(ray.remote(ScoreboardRight))
    assert "kept 8 returns" in capsys.readouterr().out


def test_scoreboard_explains_a_plain_class():
    with pytest.raises(checks.CheckFailed, match="@ray.remote"):
        checks.check_scoreboard(ScoreboardRight)


def test_scoreboard_detects_lost_state():
    import ray

    with pytest.raises(checks.CheckFailed, match="kept nothing"):
        checks.check_scoreboard(ray.remote(ScoreboardForgetful))


# --- 2.2 CartPoleActor --------------------------------------------------------------------------


class CartPoleActorRight:
    def __init__(self, seed):
        import gymnasium as gym

        self.env = gym.make("CartPole-v1")
        self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        self.episode_return = 0.0

    def rollout(self, num_steps):
        finished = []
        for _ in range(num_steps):
            _, reward, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
            self.episode_return += reward
            if terminated or truncated:
                finished.append(self.episode_return)
                self.episode_return = 0.0
                self.env.reset()
        return finished


class CartPoleActorForgetsRunningReturn(CartPoleActorRight):
    """Keeps the env on self but the running return in a local: episodes split across calls lose
    steps."""

    def rollout(self, num_steps):
        finished, episode_return = [], 0.0
        for _ in range(num_steps):
            _, reward, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
            episode_return += reward
            if terminated or truncated:
                finished.append(episode_return)
                episode_return = 0.0
                self.env.reset()
        return finished


def test_reference_rollouts_carry_episodes_over_calls():
    one_call = checks.ray_actors.reference_rollouts(3, [300])[0]
    two_calls = checks.ray_actors.reference_rollouts(3, [150, 150])
    assert sum(len(c) for c in two_calls) == len(one_call)
    assert two_calls[0] + two_calls[1] == one_call
    assert all(r >= 8 for r in one_call)  # a random CartPole episode lasts at least 8 steps


def test_cartpole_actor_accepts_the_reference_behaviour(capsys):
    import ray

    checks.check_cartpole_actor(ray.remote(CartPoleActorRight))
    assert "matched the reference" in capsys.readouterr().out


def test_cartpole_actor_detects_return_lost_between_calls():
    import ray

    with pytest.raises(checks.CheckFailed, match="carry over"):
        checks.check_cartpole_actor(ray.remote(CartPoleActorForgetsRunningReturn))


# --- 2.3 pool_map -------------------------------------------------------------------------------


def pool_map_right(actors, items):
    from ray.util import ActorPool

    return list(ActorPool(actors).map(lambda a, v: a.process.remote(v), items))


def test_pool_map_accepts_actor_pool(capsys):
    checks.check_pool_map(pool_map_right)
    assert "spread over 3 actors" in capsys.readouterr().out


def test_pool_map_detects_a_single_actor():
    import ray

    with pytest.raises(checks.CheckFailed, match="same actor"):
        checks.check_pool_map(
            lambda actors, items: ray.get([actors[0].process.remote(v) for v in items])
        )


def test_pool_map_detects_unordered_results():
    from ray.util import ActorPool

    def unordered(actors, items):
        return sorted(
            ActorPool(actors).map(lambda a, v: a.process.remote(v), items), key=lambda r: -r[0]
        )

    with pytest.raises(checks.CheckFailed, match="out of order"):
        checks.check_pool_map(unordered)


class ScoreboardStub(ScoreboardRight):
    def record(self, episode_return):
        raise NotImplementedError("Exercise 2.1: keep the return")


class ScoreboardWithoutMean:
    def __init__(self):
        self.returns = []


def test_a_stub_inside_an_actor_method_surfaces_as_not_implemented():
    import ray

    with pytest.raises(NotImplementedError, match="Exercise 2.1") as raised:
        checks.check_scoreboard(ray.remote(ScoreboardStub))
    assert (
        type(raised.value) is NotImplementedError
    )  # not Ray's wrapper: the exercise tests read the type name


def test_a_missing_actor_method_is_named():
    import ray

    with pytest.raises(checks.CheckFailed, match="has no method mean"):
        checks.check_scoreboard(ray.remote(ScoreboardWithoutMean))
