"""Hand-written policies for rock paper scissors: opponents with a fixed rule that never learn.

In the 2021 RLlib tutorial's multi-agent example a learned policy plays against
``AlwaysSameHeuristic`` and ``BeatLastHeuristic``; a policy mapping function picks one of them per
episode. They follow the ``Policy`` API, so a rollout worker runs them exactly like a learned
policy, and a trainer leaves them out of ``policies_to_train``. They know the game from its rules
(``course_lib.rock_paper_scissors``) and the number of moves from their action space, not from
the env.

Introduced in notebooks/20_multi_agent.ipynb.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from course_lib.policy.policy import Policy
from course_lib.rock_paper_scissors import BEATS, MOVE_NAMES
from course_lib.sample_batch import SampleBatch


class HeuristicPolicy(Policy):
    """A policy that acts by a fixed rule on ``Discrete`` rock-paper-scissors moves; no weights.

    Introduced in notebooks/20_multi_agent.ipynb.

    ``learn_on_batch`` changes nothing and returns empty stats; ``get_weights()`` is ``{}``.
    """

    def __init__(self, observation_space, action_space, config: dict | None = None):
        super().__init__(observation_space, action_space, config)
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"{type(self).__name__} plays rock-paper-scissors moves and needs a Discrete "
                f"action space, got {action_space}. Use it with RockPaperScissors: Discrete(3), "
                "or Discrete(5) for lizard and Spock."
            )
        self.num_moves = int(action_space.n)

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        return {"learner_stats": {}}

    def compute_gradients(self, samples: SampleBatch):
        return {}, {"learner_stats": {}}

    def apply_gradients(self, gradients) -> None:
        pass

    def get_weights(self) -> dict:
        return {}

    def set_weights(self, weights: dict) -> None:
        pass


class AlwaysSameHeuristic(HeuristicPolicy):
    """Pick one random move at the start of each episode and play it for the whole episode.

    Introduced in notebooks/20_multi_agent.ipynb.

    A policy does not see episode starts, but a worker asks it for ``get_initial_state()`` at each
    one: the chosen move is that recurrent state, a single array of shape ``()``.
    ``compute_actions`` plays ``state_batches[0]`` (B,) and passes it on unchanged as the next
    state. Without a state it picks a fresh random move per row. ``config["seed"]`` makes the picks
    repeatable.
    """

    def __init__(self, observation_space, action_space, config: dict | None = None):
        super().__init__(observation_space, action_space, config)
        self.rng = np.random.default_rng(self.config["seed"])

    def get_initial_state(self) -> list[np.ndarray]:
        return [np.array(self.rng.integers(self.num_moves), dtype=np.int64)]

    def is_recurrent(self) -> bool:
        return True  # without drawing a move, as the base class's get_initial_state() call would

    def num_state_tensors(self) -> int:
        return 1

    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore=None,
        timestep=None,
        **kwargs,
    ):
        """``(actions (B,), [chosen moves (B,)], {})``: each row replays the move in its state."""
        batch_size = len(obs_batch)
        if state_batches:
            chosen = np.asarray(state_batches[0], dtype=np.int64).reshape(batch_size)
        else:
            chosen = self.rng.integers(self.num_moves, size=batch_size)
        self.global_timestep += batch_size
        return chosen, [chosen], {}


class BeatLastHeuristic(HeuristicPolicy):
    """Play the move that beats the opponent's last move, which is this agent's observation.

    Introduced in notebooks/20_multi_agent.ipynb.

    With 3 moves that answer is unique (paper beats rock, ...); with lizard and Spock each move is
    beaten by two, and the lower-numbered one is played. Shapes: ``obs_batch`` (B,) or one-hot
    (B, num_moves) in, actions (B,) out.
    """

    def __init__(self, observation_space, action_space, config: dict | None = None):
        super().__init__(observation_space, action_space, config)
        if self.num_moves not in (3, 5):
            raise ValueError(
                "BeatLastHeuristic knows rock paper scissors (3 moves) and its lizard-Spock "
                f"version (5 moves), got an action space with {self.num_moves} moves: "
                f"{action_space}."
            )
        # answer[m]: the move to play after the opponent played m.
        self.answer = np.array(
            [self.winning_moves(move)[0] for move in range(self.num_moves)], dtype=np.int64
        )

    def winning_moves(self, move: int) -> list[int]:
        """The moves of this game that beat ``move``, lowest first."""
        return [winner for winner in range(self.num_moves) if move in BEATS[winner]]

    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore=None,
        timestep=None,
        **kwargs,
    ):
        """``(actions (B,), [], {})``: the answer to each row's observed move."""
        moves = self._moves_from(obs_batch)
        if moves.size and (moves.min() < 0 or moves.max() >= self.num_moves):
            raise ValueError(
                f"Observed moves must be 0..{self.num_moves - 1} "
                f"({', '.join(MOVE_NAMES[: self.num_moves])}), got {moves}."
            )
        self.global_timestep += len(moves)
        return self.answer[moves], [], {}

    def _moves_from(self, obs_batch) -> np.ndarray:
        """Observed moves as ints ``(B,)``, from move numbers ``(B,)`` or one-hots ``(B, n)``."""
        obs = np.asarray(obs_batch)
        if obs.ndim == 2 and obs.shape[1] == self.num_moves:
            return obs.argmax(axis=1)
        if obs.ndim == 1:
            return obs.astype(np.int64)
        raise ValueError(
            f"{type(self).__name__} expects observations of shape (B,) (move numbers) or "
            f"(B, {self.num_moves}) (one-hot moves), got shape {obs.shape}."
        )
