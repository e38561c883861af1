"""Graders of lesson 19 (RLlib today) accept right answers and name the mistake in wrong ones; the
deprecation collector of course_lib.rllib_today sees RLlib's logged deprecations."""

from __future__ import annotations

import logging

import pytest
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.evaluation.postprocessing import Postprocessing

from course_lib import checks
from course_lib.rllib_today import quiet_rllib_logs, rllib_deprecations

# --- course_lib.rllib_today -------------------------------------------------------------------


def test_the_old_learner_class_spelling_is_collected_and_the_new_one_is_not():
    with rllib_deprecations() as new:
        PPOConfig().learners(learner_class=PPOTorchLearner)
    with rllib_deprecations() as old:
        PPOConfig().training(learner_class=PPOTorchLearner)
    assert new == []
    assert len(old) == 1 and "config.learners(learner_class=..)" in old[0]


def test_collection_works_under_a_quiet_ray_and_leaves_the_logger_as_it_was():
    logger = logging.getLogger("ray")
    saved = logger.level
    logger.setLevel(logging.ERROR)  # what init_ray(quiet=True) does to Ray's loggers
    try:
        deprecation_logger = logging.getLogger("ray._common.deprecation")
        before = deprecation_logger.level, deprecation_logger.propagate
        with rllib_deprecations() as messages:
            PPOConfig().training(learner_class=PPOTorchLearner)
        assert len(messages) == 1
        assert (deprecation_logger.level, deprecation_logger.propagate) == before
    finally:
        logger.setLevel(saved)


def test_rllibs_own_internal_deprecation_is_not_the_callers():
    from ray._common.deprecation import deprecation_warning

    with rllib_deprecations() as messages:
        deprecation_warning(old="RLModule(config=[RLModuleConfig object])", new="RLModule(...)")
        deprecation_warning(old="my_old_api", new="my_new_api")
    assert len(messages) == 1 and "my_old_api" in messages[0]


def test_quiet_logs_drop_only_the_notices(caplog):
    quiet_rllib_logs()
    quiet_rllib_logs()  # twice: still one filter per logger
    notice_logger = logging.getLogger("ray.rllib.algorithms.algorithm_config")
    assert sum(type(f).__name__ == "_DropLines" for f in notice_logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="ray.rllib.algorithms.algorithm_config"):
        notice_logger.warning("You are running PPO on the new API stack! This is the default.")
        notice_logger.warning("A real warning about your config.")
    texts = [r.getMessage() for r in caplog.records]
    assert texts == ["A real warning about your config."]


# --- 19.1 to_ppo_config -----------------------------------------------------------------------

TRAINING_KEYS = {
    "train_batch_size": "train_batch_size_per_learner",
    "sgd_minibatch_size": "minibatch_size",
    "num_sgd_iter": "num_epochs",
    "lambda": "lambda_",
}


def to_ppo_config_right(course_config, *, skip=(), old_learner_spelling=False):
    c = dict(course_config)
    model = c.pop("model", {})
    runners = {
        new: c.pop(old)
        for old, new in (
            ("num_workers", "num_env_runners"),
            ("num_envs_per_worker", "num_envs_per_env_runner"),
            ("rollout_fragment_length", "rollout_fragment_length"),
        )
        if old in c
    }
    seed = c.pop("seed", None)
    env = c.pop("env")
    training = {TRAINING_KEYS.get(k, k): v for k, v in c.items() if k not in skip}
    config = PPOConfig().environment(env).env_runners(**runners).training(**training)
    if old_learner_spelling:
        config = config.training(learner_class=PPOTorchLearner)
    if seed is not None:
        config = config.debugging(seed=seed)
    return config.rl_module(model_config=DefaultModelConfig(**model))


def test_ppo_config_accepts_the_reference(capsys):
    checks.check_ppo_config(to_ppo_config_right)
    assert "Exercise 19.1 passed" in capsys.readouterr().out


def test_ppo_config_names_the_method_of_a_missing_setting():
    with pytest.raises(checks.CheckFailed, match=r"lambda_=\.\.\.\): `lambda` is a Python keyword"):
        checks.check_ppo_config(lambda c: to_ppo_config_right(c, skip=("lambda",)))


def test_ppo_config_refuses_a_deprecated_spelling():
    with pytest.raises(checks.CheckFailed, match="deprecation.*config.learners"):
        checks.check_ppo_config(lambda c: to_ppo_config_right(c, old_learner_spelling=True))


def test_ppo_config_refuses_a_dict():
    with pytest.raises(checks.CheckFailed, match="expected a PPOConfig"):
        checks.check_ppo_config(lambda c: dict(c))


def test_ppo_config_checks_the_model():
    def no_model(course_config):
        return to_ppo_config_right({k: v for k, v in course_config.items() if k != "model"})

    with pytest.raises(checks.CheckFailed, match="fcnet_hiddens"):
        checks.check_ppo_config(no_model)


def test_ppo_config_lets_rllib_validate_the_result():
    def too_big_minibatch(course_config):
        config = to_ppo_config_right(course_config)
        return config.training(minibatch_size=10 * config.train_batch_size_per_learner)

    with pytest.raises(checks.CheckFailed, match="minibatch_size|validate"):
        checks.check_ppo_config(too_big_minibatch)


# --- 19.2 A2C learner -------------------------------------------------------------------------


def a2c_terms(learner, module_id, batch, fwd_out):
    module = learner.module[module_id].unwrapped()
    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    policy = -(dist.logp(batch[Columns.ACTIONS]) * batch[Postprocessing.ADVANTAGES]).mean()
    vf = ((module.compute_values(batch) - batch[Postprocessing.VALUE_TARGETS]) ** 2).mean()
    return policy, vf, dist.entropy().mean()


class A2CRight(PPOTorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        policy, vf, entropy = a2c_terms(self, module_id, batch, fwd_out)
        return policy + config.vf_loss_coeff * vf - config.entropy_coeff * entropy


class A2CWrongSign(PPOTorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        policy, vf, entropy = a2c_terms(self, module_id, batch, fwd_out)
        return -policy + config.vf_loss_coeff * vf - config.entropy_coeff * entropy


class A2CFixedCoefficients(PPOTorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        policy, vf, entropy = a2c_terms(self, module_id, batch, fwd_out)
        return policy + 0.5 * vf - 0.01 * entropy


class A2CEntropyAdded(PPOTorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        policy, vf, entropy = a2c_terms(self, module_id, batch, fwd_out)
        return policy + config.vf_loss_coeff * vf + config.entropy_coeff * entropy


class A2CDetached(PPOTorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        policy, vf, entropy = a2c_terms(self, module_id, batch, fwd_out)
        return (policy + config.vf_loss_coeff * vf - config.entropy_coeff * entropy).detach()


def test_a2c_learner_accepts_the_reference(capsys):
    checks.check_a2c_learner(A2CRight)
    assert "Exercise 19.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "learner_class, message",
    [
        (A2CWrongSign, "wrong sign: minimise -mean"),
        (A2CFixedCoefficients, "vf_loss_coeff=1.0 and entropy_coeff=0.0"),
        (A2CEntropyAdded, "entropy bonus has the wrong sign"),
        (A2CDetached, "no gradient"),
    ],
)
def test_a2c_learner_names_the_mistake(learner_class, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_a2c_learner(learner_class)


def test_a2c_learner_wants_a_ppo_learner_class():
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner

    class Plain(TorchLearner):
        pass

    with pytest.raises(checks.CheckFailed, match="subclass PPOTorchLearner"):
        checks.check_a2c_learner(Plain)
    with pytest.raises(TypeError, match="expects your class itself"):
        checks.check_a2c_learner(A2CRight.compute_loss_for_module)


# --- 19.3 cart drift callback -----------------------------------------------------------------


class CartDriftRight(RLlibCallback):
    def on_episode_end(self, *, episode, metrics_logger, **kwargs):
        value = abs(float(episode.get_observations(-1)[0]))
        metrics_logger.log_value("cart_drift", value, reduce="mean")


class CartDriftFirst(RLlibCallback):
    def on_episode_end(self, *, episode, metrics_logger, **kwargs):
        value = abs(float(episode.get_observations(0)[0]))
        metrics_logger.log_value("cart_drift", value, reduce="mean")


class CartDriftOldStyle(RLlibCallback):
    def on_episode_end(self, *, episode, **kwargs):
        episode.custom_metrics["cart_drift"] = abs(float(episode.get_observations(-1)[0]))


class CartDriftMisnamed(RLlibCallback):
    def on_episode_end(self, *, episode, metrics_logger, **kwargs):
        value = abs(float(episode.get_observations(-1)[0]))
        metrics_logger.log_value("cart-drift", value, reduce="mean")


class CartDriftEveryStep(RLlibCallback):
    def on_episode_step(self, *, episode, metrics_logger, **kwargs):
        value = abs(float(episode.get_observations(-1)[0]))
        metrics_logger.log_value("cart_drift", value, reduce="mean")


def test_cart_drift_accepts_the_reference(capsys):
    checks.check_cart_drift_callback(CartDriftRight)
    assert "Exercise 19.3 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "callback_class, message",
    [
        (CartDriftFirst, "first observation"),
        (CartDriftOldStyle, "no custom_metrics"),
        (CartDriftMisnamed, r"no 'cart_drift' metric.*cart-drift"),
        (CartDriftEveryStep, "expected"),
    ],
)
def test_cart_drift_names_the_mistake(callback_class, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_cart_drift_callback(callback_class)


def test_cart_drift_wants_an_rllib_callback():
    from course_lib.callbacks import DefaultCallbacks

    class Old(DefaultCallbacks):
        pass

    with pytest.raises(checks.CheckFailed, match="subclass RLlibCallback"):
        checks.check_cart_drift_callback(Old)
