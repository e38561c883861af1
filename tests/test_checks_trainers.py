"""Graders of lesson 12 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import pytest

from course_lib import checks

# --- 11.1 evaluate_episode ----------------------------------------------------------------------


def evaluate_right(trainer, env, seed):
    episode_reward, terminated, truncated = 0.0, False, False
    obs, info = env.reset(seed=seed)
    while not (terminated or truncated):
        action = trainer.compute_single_action(obs, explore=False)
        obs, reward, terminated, truncated, info = env.step(action)
        episode_reward += reward
    return episode_reward


def evaluate_with_the_seeds_alias(trainer, env, seed):
    episode_reward, done = 0.0, False
    obs, _ = env.reset(seed=seed)
    while not done:
        obs, reward, terminated, truncated, _ = env.step(trainer.compute_action(obs, explore=False))
        episode_reward += reward
        done = terminated or truncated
    return episode_reward


def evaluate_exploring(trainer, env, seed):
    episode_reward, terminated, truncated = 0.0, False, False
    obs, info = env.reset(seed=seed)
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(trainer.compute_single_action(obs))
        episode_reward += reward
    return episode_reward


def evaluate_until_terminated(trainer, env, seed):
    episode_reward, terminated = 0.0, False
    obs, info = env.reset(seed=seed)
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
        episode_reward += reward
    return episode_reward


def evaluate_old_gym_api(trainer, env, seed):
    episode_reward, done = 0.0, False
    obs, info = env.reset(seed=seed)
    while not done:
        obs, reward, done, info = env.step(trainer.compute_single_action(obs, explore=False))
        episode_reward += reward
    return episode_reward


def evaluate_without_unpacking_reset(trainer, env, seed):
    episode_reward, terminated, truncated = 0.0, False, False
    obs = env.reset(seed=seed)
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
        episode_reward += reward
    return episode_reward


def evaluate_unseeded(trainer, env, seed):
    episode_reward, terminated, truncated = 0.0, False, False
    obs, info = env.reset()
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
        episode_reward += reward
    return episode_reward


def evaluate_last_reward(trainer, env, seed):
    terminated = truncated = False
    obs, info = env.reset(seed=seed)
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
    return reward


def test_evaluation_loop_accepts_the_tutorials_loop(capsys):
    checks.check_evaluation_loop(evaluate_right)
    assert "Exercise 12.1 passed" in capsys.readouterr().out


def test_evaluation_loop_accepts_the_compute_action_alias(capsys):
    checks.check_evaluation_loop(evaluate_with_the_seeds_alias)
    assert "Exercise 12.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "evaluate, hint",
    [
        (evaluate_exploring, "explore=False: the greedy action"),
        (evaluate_until_terminated, "Stop when terminated OR truncated"),
        (evaluate_old_gym_api, "Use the 5-tuple: obs, reward, terminated, truncated, info"),
        (evaluate_without_unpacking_reset, r"returns \(obs, info\)"),
        (evaluate_unseeded, r"Reset with env.reset\(seed=seed\)"),
        (evaluate_last_reward, "Add up every reward"),
    ],
)
def test_evaluation_loop_names_the_mistake(evaluate, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_evaluation_loop(evaluate)


# --- 11.2 resume ----------------------------------------------------------------------------------


def resume_right(trainer_cls, config, checkpoint, iterations):
    trainer = trainer_cls(config=config)
    trainer.restore(checkpoint)
    results = [trainer.train() for _ in range(iterations)]
    trainer.stop()
    return results


def resume_without_restore(trainer_cls, config, checkpoint, iterations):
    trainer = trainer_cls(config=config)
    results = [trainer.train() for _ in range(iterations)]
    trainer.stop()
    return results


def resume_with_defaults(trainer_cls, config, checkpoint, iterations):
    trainer = trainer_cls(config={"env": config["env"], "logger_config": config["logger_config"]})
    trainer.restore(checkpoint)
    results = [trainer.train() for _ in range(iterations)]
    trainer.stop()
    return results


def resume_without_stop(trainer_cls, config, checkpoint, iterations):
    trainer = trainer_cls(config=config)
    trainer.restore(checkpoint)
    return [trainer.train() for _ in range(iterations)]


def test_resume_accepts_restore_then_train(capsys):
    checks.check_resume(resume_right)
    assert "Exercise 12.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "resume, hint",
    [
        (resume_without_restore, r"call trainer.restore\(checkpoint\)"),
        (resume_with_defaults, r"differs from the one you were given in \['num_envs_per_worker'"),
        (resume_without_stop, r"call trainer.stop\(\)"),
    ],
)
def test_resume_names_the_mistake(resume, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_resume(resume)
