"""Graders for notebooks/20_multi_agent.ipynb: a policy mapping function and a heuristic policy."""

from __future__ import annotations

import numpy as np

from ._common import CheckFailed, passed, require_callable, require_subclass

RPS_POLICY_IDS = ("learned", "always_same", "beat_last")


class _FakeEpisode:
    """Stands in for a worker's Episode: only ``episode_id`` (and a few counters) are set."""

    def __init__(self, episode_id: int):
        self.episode_id = episode_id
        self.length = 0
        self.user_data: dict = {}

    def __repr__(self) -> str:
        return f"Episode(id={self.episode_id})"


def _expected_policy(agent_id, episode) -> str:
    if agent_id == "player1":
        return "learned"
    return "always_same" if episode.episode_id % 2 == 0 else "beat_last"


def _rps_policies(extra: dict | None = None) -> dict:
    from gymnasium import spaces

    from course_lib.policy.heuristics import AlwaysSameHeuristic, BeatLastHeuristic

    moves = spaces.Discrete(3)
    return {
        "always_same": (AlwaysSameHeuristic, moves, moves, {}),
        "beat_last": (BeatLastHeuristic, moves, moves, {}),
        "learned": (None, moves, moves, {}),
        **(extra or {}),
    }


def check_policy_mapping(select_policy) -> None:
    """Exercise 20.1: player1 -> "learned"; player2 -> "always_same" in even episodes, "beat_last"
    in odd ones."""
    require_callable("check_policy_mapping", "select_policy", select_policy)
    episodes = [_FakeEpisode(episode_id) for episode_id in (0, 1, 2, 7, 10, 2**61 + 1)]
    for episode in episodes:
        for agent_id in ("player1", "player2"):
            try:
                pid = select_policy(agent_id, episode, worker=None)
            except TypeError as error:
                raise CheckFailed(
                    "20.1",
                    f"select_policy({agent_id!r}, episode, worker=None) raised TypeError: {error}. "
                    "A worker calls the mapping function with keyword arguments (worker=...); "
                    "accept them with `def select_policy(agent_id, episode, **kwargs)`.",
                ) from error
            if not isinstance(pid, str):
                raise CheckFailed(
                    "20.1",
                    f"select_policy({agent_id!r}, {episode}) returned {pid!r} "
                    f"({type(pid).__name__}); return a policy id, a string that is a key "
                    f"of config['multiagent']['policies']: one of {list(RPS_POLICY_IDS)}.",
                )
            if pid not in RPS_POLICY_IDS:
                raise CheckFailed(
                    "20.1",
                    f"select_policy({agent_id!r}, {episode}) returned {pid!r}, which is not a "
                    "policy of this config; the policies are "
                    f"{list(RPS_POLICY_IDS)} (check the spelling).",
                )
            again = select_policy(agent_id, episode, worker=None)
            if again != pid:
                raise CheckFailed(
                    "20.1",
                    f"two calls for {agent_id!r} in the same episode ({episode}) returned {pid!r} "
                    f"and {again!r}. Do not draw at random: derive the opponent from "
                    "episode.episode_id, so that the choice is the "
                    "same whenever it is asked for the same episode.",
                )
            expected = _expected_policy(agent_id, episode)
            if pid != expected:
                if agent_id == "player1":
                    hint = 'player1 is the learner: return "learned" for it in every episode.'
                elif pid == "learned":
                    hint = "player2 must play a heuristic opponent, never the learned policy."
                else:
                    hint = (
                        f"episode_id {episode.episode_id} is "
                        f"{'even' if episode.episode_id % 2 == 0 else 'odd'}: "
                        'player2 gets "always_same" when episode.episode_id '
                        '% 2 == 0 and "beat_last" otherwise.'
                    )
                raise CheckFailed(
                    "20.1",
                    f"select_policy({agent_id!r}, {episode}) "
                    f"returned {pid!r}, expected {expected!r}. {hint}",
                )

    # The same function inside a real worker: every episode's player2 rows belong to the right
    # heuristic.
    from course_lib.envs import RockPaperScissors
    from course_lib.evaluation import RolloutWorker
    from course_lib.policy import PGTorchPolicy

    worker = RolloutWorker(
        env_creator=RockPaperScissors,
        policy_class=PGTorchPolicy,
        config={
            "num_envs_per_worker": 4,
            "rollout_fragment_length": 40,
            "seed": 0,
            "multiagent": {"policies": _rps_policies(), "policy_mapping_fn": select_policy},
        },
    )
    samples = worker.sample()
    batches = samples.policy_batches
    if batches["learned"].count != samples.env_steps():
        raise CheckFailed("20.1", "in a real worker, not every player1 step went to 'learned'.")
    for pid, parity in (("always_same", 0), ("beat_last", 1)):
        if pid not in batches:
            raise CheckFailed(
                "20.1",
                "in 16 real episodes no agent was mapped to "
                f"{pid!r}; player2 should meet both heuristics.",
            )
        episode_ids = {int(e) for e in batches[pid]["eps_id"]}
        if any(e % 2 != parity for e in episode_ids):
            raise CheckFailed(
                "20.1",
                f"in a real worker, {pid!r} played episodes with the wrong parity of episode_id.",
            )
    passed(
        "20.1",
        "player1 -> learned; player2 -> always_same in "
        f"{len({int(e) for e in batches['always_same']['eps_id']})} even episodes and "
        f"beat_last in {len({int(e) for e in batches['beat_last']['eps_id']})} odd ones",
    )


def check_heuristic_policy(policy_cls) -> None:
    """Exercise 20.2: CopyLastHeuristic plays the opponent's last move (its observation) and never
    learns."""
    from gymnasium import spaces

    from course_lib.policy.heuristics import HeuristicPolicy

    require_subclass(
        "check_heuristic_policy",
        "20.2",
        "CopyLastHeuristic",
        policy_cls,
        HeuristicPolicy,
        f": `class {getattr(policy_cls, '__name__', 'CopyLastHeuristic')}(HeuristicPolicy):`.",
    )

    for num_moves in (3, 5):
        moves = spaces.Discrete(num_moves)
        policy = policy_cls(moves, moves, {})
        obs = np.array([0, 1, 2, 1, num_moves - 1])
        out = policy.compute_actions(obs)
        if not isinstance(out, tuple) or len(out) != 3:
            raise CheckFailed(
                "20.2",
                f"compute_actions returned {type(out).__name__} {out!r:.80}; it must return the "
                "triple (actions, state_outs, extra_fetches): "
                "`return actions, [], {}` for a policy without state.",
            )
        actions, state_outs, extra = out
        actions = np.asarray(actions)
        if actions.shape != (len(obs),):
            raise CheckFailed(
                "20.2",
                f"for {len(obs)} observations of shape {obs.shape} compute_actions returned "
                f"actions of shape {actions.shape}; return one action per row, an "
                "array of shape (B,) (e.g. np.asarray(obs_batch, dtype=np.int64)).",
            )
        if not np.issubdtype(actions.dtype, np.integer):
            raise CheckFailed(
                "20.2",
                f"actions have dtype {actions.dtype}; moves are integers, use dtype=np.int64.",
            )
        if not isinstance(state_outs, (list, tuple)) or len(state_outs) != 0:
            raise CheckFailed(
                "20.2",
                f"state_outs is {state_outs!r:.60}; a policy "
                "without recurrent state returns an empty list [].",
            )
        if not isinstance(extra, dict):
            raise CheckFailed(
                "20.2",
                f"extra_fetches is {extra!r:.60}; return a dict, {{}} when there are no extras.",
            )
        wrong = [(int(o), int(a)) for o, a in zip(obs, actions, strict=True) if o != a]
        if wrong:
            o, a = wrong[0]
            raise CheckFailed(
                "20.2",
                f"with {num_moves} moves, the observation {o} (the opponent's last move) got the "
                f"action {a}; copy the observation: the "
                "action is the move the opponent played last.",
            )
        if not all(moves.contains(int(a)) for a in actions):
            raise CheckFailed(
                "20.2", f"some actions {actions} are not in the action space {moves}."
            )

    before = policy.get_weights()
    from course_lib.sample_batch import SampleBatch

    stats = policy.learn_on_batch(
        SampleBatch({"obs": obs, "actions": actions, "rewards": np.ones(len(obs))})
    )
    if not isinstance(stats, dict) or policy.get_weights() != before:
        raise CheckFailed(
            "20.2",
            "learn_on_batch must change nothing and return {'learner_stats': {}}; "
            "keep HeuristicPolicy's version (do not override it).",
        )

    # In a real game against scripted opponents: every row's action equals its observation.
    from course_lib.envs import RockPaperScissors
    from course_lib.evaluation import RolloutWorker
    from course_lib.policy import PGTorchPolicy

    moves = spaces.Discrete(3)
    worker = RolloutWorker(
        env_creator=RockPaperScissors,
        policy_class=PGTorchPolicy,
        config={
            "num_envs_per_worker": 2,
            "rollout_fragment_length": 20,
            "seed": 0,
            "multiagent": {
                "policies": _rps_policies({"copy": (policy_cls, moves, moves, {})}),
                "policy_mapping_fn": lambda agent_id, episode, **kw: (
                    "copy"
                    if agent_id == "player1"
                    else ("always_same" if episode.episode_id % 2 == 0 else "beat_last")
                ),
            },
        },
    )
    batch = worker.sample().policy_batches["copy"]
    if not np.array_equal(batch["actions"], batch["obs"]):
        raise CheckFailed(
            "20.2", "in a real game some of your policy's actions differ from its observations."
        )
    if "copy" in worker.get_weights() and worker.get_weights()["copy"]:
        raise CheckFailed(
            "20.2",
            "your heuristic has weights; get_weights() should stay {} (keep HeuristicPolicy's).",
        )
    passed(
        "20.2",
        f"{policy_cls.__name__} copies the opponent's last move in {batch.count} "
        "moves of real games, with 3 and 5 moves, and never learns",
    )
