"""Grader of lesson 21's challenge (course_lib/checks/capstone.py): controllers at the reference's
level pass, the usual wrong answers fail with a message that says what to do.

Training a real trainer takes about 15 s, so these tests hand the grader stand-in trainers whose
policies are rules over the observation; the real reference solution is run by the solution
notebook (solutions/21_custom_multi_agent_trainer.ipynb)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from course_lib import checks
from course_lib.checks import CheckFailed
from course_lib.checks.capstone import CHALLENGE_BUDGET, CHALLENGE_ENV, HELD_OUT_SEEDS


class FakeMetrics:
    def __init__(self, sampled, trained):
        self.counters = defaultdict(
            int, num_agent_steps_sampled=sampled, num_agent_steps_trained=trained
        )


class RuleTrainer:
    """Stands in for a trained trainer: ``compute_single_action`` applies ``rule(obs)``."""

    def __init__(self, rule, sampled=90_000, trained=90_000, policies=("shared",)):
        self.rule, self.policies = rule, policies
        self.metrics = FakeMetrics(sampled, trained)
        self.seen_configs = []

    def compute_single_action(self, obs, *, policy_id, explore):
        assert explore is False
        return self.rule(obs)

    def get_policy(self, policy_id):
        if policy_id not in self.policies:
            raise KeyError(f"no policy {policy_id!r}")
        return object()

    def _shared_metrics(self):
        return self.metrics


# Observation: queues N, S, E, W (scaled), 4 downstream queues, phase one-hot [NS, EW], clock.
def longest_queue_rule(obs):
    ns, ew = obs[0] + obs[1], obs[2] + obs[3]
    return 0 if ns > ew else 1 if ew > ns else int(obs[9])


def never_switch_rule(obs):
    return 0


def local_fixed_time_rule(obs):  # switch after 10 steps of green: a 20-step cycle per light
    return 1 - int(obs[9]) if obs[10] >= 1.0 else int(obs[9])


def random_rule_maker(seed=0):
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(2))


def returning(trainer, mapping=lambda agent_id, episode, **kwargs: "shared"):
    calls = []

    def train_traffic_controller(env_config, max_agent_steps, seed):
        calls.append((env_config, max_agent_steps, seed))
        return trainer, mapping

    train_traffic_controller.calls = calls
    return train_traffic_controller


def test_a_controller_at_the_longest_queue_level_passes(capsys):
    train = returning(RuleTrainer(longest_queue_rule))
    checks.check_traffic_challenge(train)
    out = capsys.readouterr().out
    assert "21.1 passed" in out and "held-out" in out
    # The grader passed the challenge's grid, budget and seed, and never an evaluation seed.
    ((env_config, budget, seed),) = train.calls
    assert env_config == CHALLENGE_ENV and budget == CHALLENGE_BUDGET == 100_000
    assert seed not in HELD_OUT_SEEDS


@pytest.mark.parametrize(
    "rule, hint",
    [
        (never_switch_rule, "never switched a light"),
        (local_fixed_time_rule, "above the target"),
        (random_rule_maker(), "above the target"),
    ],
    ids=["never-switches", "fixed-time", "random"],
)
def test_controllers_below_the_target_fail_with_the_measured_levels(rule, hint):
    with pytest.raises(CheckFailed, match=hint) as failure:
        checks.check_traffic_challenge(returning(RuleTrainer(rule)))
    message = str(failure.value)
    assert "fixed-time 5.67" in message and "longest-queue 4.15" in message


def test_the_budget_is_counted_in_agent_steps_sampled():
    over = RuleTrainer(longest_queue_rule, sampled=CHALLENGE_BUDGET + 3600)
    with pytest.raises(CheckFailed, match=re.escape("over the budget of 100,000")):
        checks.check_traffic_challenge(returning(over))


def test_a_trainer_that_never_trained_fails():
    untrained = RuleTrainer(longest_queue_rule, sampled=0, trained=0)
    with pytest.raises(CheckFailed, match="never trained"):
        checks.check_traffic_challenge(returning(untrained))


@pytest.mark.parametrize(
    "returned, hint",
    [
        (None, "return the pair"),
        ((RuleTrainer(longest_queue_rule),), "return the pair"),
        ((object(), lambda agent_id, episode, **kw: "shared"), "not a trainer"),
    ],
)
def test_wrong_return_values_say_what_to_return(returned, hint):
    with pytest.raises(CheckFailed, match=hint):
        checks.check_traffic_challenge(lambda env_config, max_agent_steps, seed: returned)


def test_a_mapping_to_an_unknown_policy_names_the_agent():
    train = returning(RuleTrainer(longest_queue_rule), lambda agent_id, episode, **kw: agent_id)
    with pytest.raises(CheckFailed, match=re.escape("policy_mapping_fn('i_0_0', None)")):
        checks.check_traffic_challenge(train)


def test_the_stub_raises_its_not_implemented_error():
    def train_traffic_controller(env_config, max_agent_steps, seed):
        raise NotImplementedError("Exercise 21.1: write your solution here.")

    with pytest.raises(NotImplementedError, match="Exercise 21.1"):
        checks.check_traffic_challenge(train_traffic_controller)
