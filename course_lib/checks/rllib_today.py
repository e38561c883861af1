"""Graders for notebooks/19_rllib_today.ipynb: a course_lib config as a PPOConfig, an A2C loss
in a TorchLearner, and a custom metric logged by an RLlibCallback, all on real RLlib 2.60.

RLlib is imported inside the graders, so ``import course_lib.checks`` stays fast for the lessons
that never touch it. Every grader also refuses deprecated RLlib spellings (RLlib logs them
instead of raising; ``course_lib.rllib_today.rllib_deprecations`` collects them).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import CheckFailed, passed, require_callable, require_subclass

# The config of tuned_examples/ppo-cartpole.yaml, and a second one whose values all differ, so
# that an answer that hard-codes the first cannot pass.
COURSE_CONFIGS = (
    {
        "env": "CartPole-v1",
        "num_workers": 0,
        "num_envs_per_worker": 8,
        "rollout_fragment_length": 250,
        "train_batch_size": 2000,
        "sgd_minibatch_size": 256,
        "num_sgd_iter": 10,
        "lr": 0.001,
        "lambda": 0.95,
        "gamma": 0.99,
        "model": {"fcnet_hiddens": [64, 64]},
    },
    {
        "env": "Acrobot-v1",
        "num_workers": 2,
        "num_envs_per_worker": 4,
        "rollout_fragment_length": 50,
        "train_batch_size": 400,
        "sgd_minibatch_size": 100,
        "num_sgd_iter": 3,
        "lr": 0.0003,
        "lambda": 0.9,
        "gamma": 0.97,
        "clip_param": 0.1,
        "vf_loss_coeff": 0.25,
        "entropy_coeff": 0.02,
        "seed": 7,
        "model": {"fcnet_hiddens": [32], "fcnet_activation": "relu"},
    },
)

# course_lib key -> (PPOConfig attribute, the config method that sets it).
CONFIG_MAP = {
    "env": ("env", "environment(env=...)"),
    "num_workers": ("num_env_runners", "env_runners(num_env_runners=...)"),
    "num_envs_per_worker": ("num_envs_per_env_runner", "env_runners(num_envs_per_env_runner=...)"),
    "rollout_fragment_length": (
        "rollout_fragment_length",
        "env_runners(rollout_fragment_length=...)",
    ),
    "train_batch_size": (
        "train_batch_size_per_learner",
        "training(train_batch_size_per_learner=...)",
    ),
    "sgd_minibatch_size": ("minibatch_size", "training(minibatch_size=...)"),
    "num_sgd_iter": ("num_epochs", "training(num_epochs=...)"),
    "lr": ("lr", "training(lr=...)"),
    "lambda": ("lambda_", "training(lambda_=...): `lambda` is a Python keyword"),
    "gamma": ("gamma", "training(gamma=...)"),
    "clip_param": ("clip_param", "training(clip_param=...)"),
    "vf_loss_coeff": ("vf_loss_coeff", "training(vf_loss_coeff=...)"),
    "entropy_coeff": ("entropy_coeff", "training(entropy_coeff=...)"),
    "seed": ("seed", "debugging(seed=...)"),
}
MODEL_MAP = {
    "fcnet_hiddens": "rl_module(model_config=DefaultModelConfig(fcnet_hiddens=...))",
    "fcnet_activation": "rl_module(model_config=DefaultModelConfig(fcnet_activation=...))",
}


def _same(got, want) -> bool:
    if isinstance(want, float):
        try:
            return math.isclose(float(got), want)
        except (TypeError, ValueError):
            return False
    if isinstance(want, list):
        return isinstance(got, (list, tuple)) and list(got) == want
    return got == want


def _refuse_deprecations(exercise: str, messages: list[str]) -> None:
    if messages:
        raise CheckFailed(
            exercise,
            f"RLlib logged a deprecation while running your code: {messages[0][:300]} "
            "Use the current spelling it names; the old one stops working in a later release.",
        )


def check_ppo_config(to_ppo_config) -> None:
    """Exercise 19.1: ``to_ppo_config(course_config) -> PPOConfig`` with the same settings."""
    require_callable("check_ppo_config", "to_ppo_config", to_ppo_config)
    from ray.rllib.algorithms.ppo import PPOConfig

    from course_lib.rllib_today import rllib_deprecations

    for course_config in COURSE_CONFIGS:
        with rllib_deprecations() as messages:
            config = to_ppo_config(dict(course_config, model=dict(course_config["model"])))
        _refuse_deprecations("19.1", messages)
        if not isinstance(config, PPOConfig):
            raise CheckFailed(
                "19.1",
                f"to_ppo_config returned {type(config).__name__}, expected a PPOConfig: start "
                "from `PPOConfig()` and return the object its methods give back.",
            )
        for key, want in course_config.items():
            if key == "model":
                continue
            attribute, method = CONFIG_MAP[key]
            got = getattr(config, attribute)
            if not _same(got, want):
                raise CheckFailed(
                    "19.1",
                    f"for {key}={want!r} the PPOConfig has {attribute}={got!r}. Set it with "
                    f".{method}.",
                )
        model_config = config.model_config
        for key, want in course_config["model"].items():
            got = model_config.get(key) if isinstance(model_config, dict) else None
            if not _same(got, want):
                raise CheckFailed(
                    "19.1",
                    f"for model {key}={want!r} the PPOConfig's model_config has {key}={got!r}. "
                    f"Set it with .{MODEL_MAP[key]}.",
                )
        try:
            config.validate()
        except Exception as error:  # RLlib's own check of the whole config
            raise CheckFailed(
                "19.1",
                f"RLlib's config.validate() refused the result: {type(error).__name__}: "
                f"{str(error)[:300]}",
            ) from error
    passed(
        "19.1",
        "the tuned PPO CartPole config and a 15-key variant became PPOConfigs with the same "
        "settings, validated by RLlib, with no deprecated spelling",
    )


def _cartpole_learner(learner_class, vf_loss_coeff: float, entropy_coeff: float):
    """A PPO learner of ``learner_class`` for CartPole, built in this process (no Ray needed)."""
    import gymnasium as gym
    from ray.rllib.algorithms.ppo import PPOConfig

    env = gym.make("CartPole-v1")
    config = (
        PPOConfig()
        .environment(observation_space=env.observation_space, action_space=env.action_space)
        .training(vf_loss_coeff=vf_loss_coeff, entropy_coeff=entropy_coeff)
        .learners(learner_class=learner_class)
        .debugging(seed=0)
    )
    env.close()
    return config.build_learner()


def _a2c_batch(rows: int = 64):
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.evaluation.postprocessing import Postprocessing

    generator = torch.Generator().manual_seed(14)
    return {
        Columns.OBS: torch.randn(rows, 4, generator=generator) * 0.1,
        Columns.ACTIONS: torch.randint(0, 2, (rows,), generator=generator),
        Postprocessing.ADVANTAGES: torch.randn(rows, generator=generator),
        Postprocessing.VALUE_TARGETS: torch.randn(rows, generator=generator) * 5.0,
        # Columns a PPO batch always carries; an A2C loss must not need them.
        Columns.ACTION_LOGP: torch.zeros(rows),
        Columns.LOSS_MASK: torch.ones(rows, dtype=torch.bool),
    }


def _a2c_reference(module, batch, fwd_out, vf_loss_coeff, entropy_coeff) -> dict:
    """The A2C loss computed here, term by term, to compare the learner's answer with."""
    from ray.rllib.core.columns import Columns
    from ray.rllib.evaluation.postprocessing import Postprocessing

    logits = fwd_out[Columns.ACTION_DIST_INPUTS]
    log_probs = logits.log_softmax(-1)
    logp = log_probs.gather(-1, batch[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    policy_loss = -(logp * batch[Postprocessing.ADVANTAGES]).mean()
    values = module.compute_values(batch)
    vf_loss = ((values - batch[Postprocessing.VALUE_TARGETS]) ** 2).mean()
    total = policy_loss + vf_loss_coeff * vf_loss - entropy_coeff * entropy
    terms = {"total": total, "policy": policy_loss, "vf": vf_loss, "entropy": entropy}
    return {name: float(term.detach()) for name, term in terms.items()}


def _a2c_hint(got: float, ref: dict, vf_loss_coeff: float, entropy_coeff: float) -> str:
    candidates = {
        "the policy term has the wrong sign: minimise -mean(logp * advantages)": (
            -ref["policy"] + vf_loss_coeff * ref["vf"] - entropy_coeff * ref["entropy"]
        ),
        "the value loss is missing vf_loss_coeff (config.vf_loss_coeff)": (
            ref["policy"] + ref["vf"] - entropy_coeff * ref["entropy"]
        ),
        "the value loss is missing: add vf_loss_coeff * mean((V(s) - value_targets)**2)": (
            ref["policy"] - entropy_coeff * ref["entropy"]
        ),
        "the entropy bonus has the wrong sign: subtract entropy_coeff * entropy": (
            ref["policy"] + vf_loss_coeff * ref["vf"] + entropy_coeff * ref["entropy"]
        ),
        "the entropy term is missing: subtract entropy_coeff * mean entropy": (
            ref["policy"] + vf_loss_coeff * ref["vf"]
        ),
        "the value loss uses 0.5 * squared error; use the plain mean squared error": (
            ref["policy"] + 0.5 * vf_loss_coeff * ref["vf"] - entropy_coeff * ref["entropy"]
        ),
    }
    for hint, value in candidates.items():
        if math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-5):
            return f" It looks like {hint}."
    return (
        f" The terms here: policy {ref['policy']:.4f}, value {ref['vf']:.4f}, entropy "
        f"{ref['entropy']:.4f} (means over the batch)."
    )


def check_a2c_learner(learner_class) -> None:
    """Exercise 19.2: A2C's loss in ``compute_loss_for_module`` of a PPOTorchLearner subclass."""
    import torch
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    from course_lib.rllib_today import rllib_deprecations

    require_subclass(
        "check_a2c_learner",
        "19.2",
        "A2CLearner",
        learner_class,
        PPOTorchLearner,
        ", so that PPO's learner connector (GAE) still fills in advantages and value_targets for "
        "your loss.",
    )
    torch.manual_seed(0)
    for vf_loss_coeff, entropy_coeff in ((0.5, 0.01), (1.0, 0.0), (0.25, 0.1)):
        with rllib_deprecations() as messages:
            learner = _cartpole_learner(learner_class, vf_loss_coeff, entropy_coeff)
        _refuse_deprecations("19.2", messages)
        module = learner.module["default_policy"]
        batch = _a2c_batch()
        fwd_out = module.forward_train(batch)
        module_config = learner.config.get_config_for_module("default_policy")
        loss = learner.compute_loss_for_module(
            module_id="default_policy", config=module_config, batch=batch, fwd_out=fwd_out
        )
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise CheckFailed(
                "19.2",
                f"compute_loss_for_module returned {type(loss).__name__}, expected a scalar "
                "torch tensor (the total loss the Learner differentiates).",
            )
        if not loss.requires_grad:
            raise CheckFailed(
                "19.2",
                "the loss has no gradient: compute it from fwd_out and the module's values with "
                "torch operations, without .item(), .detach() or numpy on the way.",
            )
        ref = _a2c_reference(module, batch, fwd_out, vf_loss_coeff, entropy_coeff)
        got = float(loss.detach())
        if not math.isclose(got, ref["total"], rel_tol=1e-4, abs_tol=1e-5):
            raise CheckFailed(
                "19.2",
                f"with vf_loss_coeff={vf_loss_coeff} and entropy_coeff={entropy_coeff} your loss "
                f"is {got:.5f}, expected {ref['total']:.5f}."
                + _a2c_hint(got, ref, vf_loss_coeff, entropy_coeff),
            )
        loss.backward()
        if not any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()):
            raise CheckFailed("19.2", "backward() left every gradient at zero.")
    passed(
        "19.2",
        "compute_loss_for_module gives -mean(logp * A) + vf_loss_coeff * value MSE "
        "- entropy_coeff * entropy for three coefficient settings, with gradients",
    )


def check_cart_drift_callback(callback_class) -> None:
    """Exercise 19.3: an RLlibCallback that logs ``|cart position|`` at each episode's end."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from course_lib.rllib_today import rllib_deprecations

    require_subclass(
        "check_cart_drift_callback",
        "19.3",
        "CartDrift",
        callback_class,
        RLlibCallback,
        " (from ray.rllib.callbacks.callbacks import RLlibCallback).",
    )
    episodes_wanted = 6
    with rllib_deprecations() as messages:
        config = (
            PPOConfig()
            .environment("CartPole-v1")
            .env_runners(num_envs_per_env_runner=1)
            .callbacks(callback_class)
            .debugging(seed=3)
        )
        runner = SingleAgentEnvRunner(config=config)
        try:
            try:
                episodes = runner.sample(num_episodes=episodes_wanted, random_actions=True)
            except AttributeError as error:
                if "custom_metrics" in str(error) or "user_data" in str(error):
                    raise CheckFailed(
                        "19.3",
                        f"{error}. On the new API stack an episode has no custom_metrics or "
                        "user_data: log with metrics_logger.log_value(...), keep scratch data in "
                        "episode.custom_data.",
                    ) from error
                raise
            metrics = runner.get_metrics()
        finally:
            runner.stop()
    _refuse_deprecations("19.3", messages)
    if "cart_drift" not in metrics:
        logged = sorted(k for k in metrics if not k.startswith(("num_", "episode_", "agent_")))
        raise CheckFailed(
            "19.3",
            f"no 'cart_drift' metric was logged (custom keys found: {logged}). In "
            'on_episode_end call metrics_logger.log_value("cart_drift", value, reduce="mean").',
        )
    stat = metrics["cart_drift"]
    got = float(stat.peek()) if hasattr(stat, "peek") else float(stat)
    finals = [abs(float(e.get_observations(-1)[0])) for e in episodes if e.is_done]
    firsts = [abs(float(e.get_observations(0)[0])) for e in episodes if e.is_done]
    want = float(np.mean(finals))
    if not math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-7):
        hint = ""
        if math.isclose(got, float(np.mean(firsts)), rel_tol=1e-5, abs_tol=1e-7):
            hint = " That is the first observation's: take the last, episode.get_observations(-1)."
        elif math.isclose(abs(got), want, rel_tol=1e-5) or got < 0:
            hint = " Log the absolute value, abs(position)."
        raise CheckFailed(
            "19.3",
            f"cart_drift averaged {got:.5f} over {len(finals)} episodes, expected {want:.5f}, the "
            "mean of |cart position| (observation index 0) in each episode's last observation."
            + hint,
        )
    passed(
        "19.3",
        f"cart_drift = {want:.4f}, the mean |cart position| at the end of {len(finals)} real "
        "CartPole episodes sampled by an RLlib EnvRunner",
    )
