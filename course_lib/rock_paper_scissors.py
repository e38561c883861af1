"""The rules of rock paper scissors (and its lizard-Spock version): the moves and who beats whom.

The game's env (``course_lib.envs.multi_agent.RockPaperScissors``) and its hand-written opponents
(``course_lib.policy.heuristics``) both follow these rules; keeping them here lets a policy know
the game without importing the example envs. Moves 0-2 alone are the classic game.
Introduced in notebooks/20_multi_agent.ipynb.
"""

from __future__ import annotations

ROCK, PAPER, SCISSORS, LIZARD, SPOCK = range(5)
MOVE_NAMES = ("rock", "paper", "scissors", "lizard", "Spock")
# Each move and the moves it beats ("scissors cuts paper, paper covers rock, rock crushes lizard,
# lizard poisons Spock, Spock smashes scissors, ...").
BEATS = {
    ROCK: (SCISSORS, LIZARD),
    PAPER: (ROCK, SPOCK),
    SCISSORS: (PAPER, LIZARD),
    LIZARD: (SPOCK, PAPER),
    SPOCK: (SCISSORS, ROCK),
}


def beats(move, other_move) -> bool:
    """Whether ``move`` beats ``other_move`` in rock-paper-scissors(-lizard-Spock).

    Introduced in notebooks/20_multi_agent.ipynb.
    """
    return int(other_move) in BEATS[int(move)]
