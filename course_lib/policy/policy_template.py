"""``build_policy``: make a Policy class from a loss function and a few optional hooks.

The 2021 RLlib tutorial's recipe: ``MyPolicy = build_policy("MyPolicy", loss_fn=policy_gradient_loss)``, then
``MyPolicy.with_updates(name=..., loss_fn=...)`` for a variant. Each hook replaces one method of
``TorchPolicy``; ``show(TorchPolicy)`` shows where it is called. Introduced in notebooks/06_policies.ipynb.

Hook signatures (every one optional but ``loss_fn``):

- ``loss_fn(policy, model, dist_class, train_batch) -> scalar tensor``
- ``get_default_config() -> dict`` (merged under the user's config)
- ``postprocess_fn(policy, sample_batch, other_agent_batches=None, episode=None) -> SampleBatch``
- ``stats_fn(policy, train_batch) -> dict`` of numbers for ``learn_on_batch``'s result
- ``optimizer_fn(policy, config) -> torch.optim.Optimizer``
- ``make_model(policy, obs_space, action_space, config) -> TorchModelV2``
- ``action_sampler_fn(policy, model, input_dict, state, explore, timestep) -> (actions, logp, state_out)``
- ``action_distribution_fn(policy, model, input_dict, state, seq_lens, explore, timestep) -> (dist_inputs, dist_class, state_out)``
- ``extra_action_out_fn(policy, input_dict, state, model, action_dist) -> dict`` of per-row tensors
- ``before_init(policy, obs_space, action_space, config)`` / ``after_init(...)``: around ``__init__``
- ``mixins``: classes placed before ``TorchPolicy`` in the new class's bases
"""

from __future__ import annotations

import difflib
import sys
from typing import Callable

from course_lib.policy.policy import POLICY_DEFAULTS
from course_lib.policy.torch_policy import TorchPolicy

HOOKS = (
    "loss_fn",
    "get_default_config",
    "postprocess_fn",
    "stats_fn",
    "optimizer_fn",
    "make_model",
    "action_sampler_fn",
    "action_distribution_fn",
    "extra_action_out_fn",
    "before_init",
    "after_init",
)


def build_policy(
    name: str,
    *,
    loss_fn: Callable | None,
    get_default_config: Callable[[], dict] | None = None,
    postprocess_fn: Callable | None = None,
    stats_fn: Callable | None = None,
    optimizer_fn: Callable | None = None,
    make_model: Callable | None = None,
    action_sampler_fn: Callable | None = None,
    action_distribution_fn: Callable | None = None,
    extra_action_out_fn: Callable | None = None,
    before_init: Callable | None = None,
    after_init: Callable | None = None,
    mixins: list[type] | None = None,
) -> type[TorchPolicy]:
    """A new ``TorchPolicy`` subclass named ``name`` whose methods call the given functions.

    ``loss_fn=None`` makes a policy that acts but cannot learn (e.g. a fixed heuristic).
    The class has ``with_updates(**overrides)``, which builds a new class from the same
    arguments with some replaced; the original class is left unchanged.
    """
    build_args = {k: v for k, v in locals().items() if k != "name"}
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"build_policy needs a class name such as 'MyTorchPolicy', got {name!r}.")
    for hook in HOOKS:
        if build_args[hook] is not None and not callable(build_args[hook]):
            raise TypeError(
                f"build_policy({name!r}, {hook}=...) expects a function, got {type(build_args[hook]).__name__}."
            )
    mixins = list(mixins or [])

    def __init__(self, obs_space, action_space, config=None):
        defaults = get_default_config() if get_default_config else {}
        config = {**POLICY_DEFAULTS, **defaults, **(config or {})}
        # The model config merges one level deeper, so {"fcnet_hiddens": [64]} keeps the default activation.
        config["model"] = {**defaults.get("model", {}), **config["model"]}
        if before_init:
            before_init(self, obs_space, action_space, config)
        TorchPolicy.__init__(self, obs_space, action_space, config)
        if after_init:
            after_init(self, obs_space, action_space, config)

    namespace = {
        "__init__": __init__,
        "__doc__": f"Policy built by build_policy({name!r}, ...); see its hooks with .build_args.",
    }
    if loss_fn:
        namespace["loss"] = lambda self, model, dist_class, train_batch: loss_fn(
            self, model, dist_class, train_batch
        )
    if postprocess_fn:
        namespace["postprocess_trajectory"] = (
            lambda self, batch, other_agent_batches=None, episode=None: postprocess_fn(
                self, batch, other_agent_batches, episode
            )
        )
    if stats_fn:
        namespace["stats"] = lambda self, train_batch: stats_fn(self, train_batch)
    if optimizer_fn:
        namespace["make_optimizer"] = lambda self: optimizer_fn(self, self.config)
    if make_model:
        namespace["make_model"] = lambda self, num_outputs: make_model(
            self, self.observation_space, self.action_space, self.config
        )
    if extra_action_out_fn:
        namespace["extra_action_out"] = lambda self, input_dict, state, model, dist: (
            extra_action_out_fn(self, input_dict, state, model, dist)
        )
    if action_sampler_fn:
        namespace["_action_sampler_fn"] = lambda self, *args, **kwargs: action_sampler_fn(
            self, *args, **kwargs
        )
    if action_distribution_fn:
        namespace["_action_distribution_fn"] = lambda self, *args, **kwargs: action_distribution_fn(
            self, *args, **kwargs
        )

    cls = type(name, (*mixins, TorchPolicy), namespace)
    # Name the class after the module that built it, so pickle (and Ray) can find it there by name.
    cls.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    cls.build_args = {**build_args, "mixins": mixins}
    cls.with_updates = classmethod(_with_updates)
    return cls


def check_update_arguments(cls, overrides: dict) -> None:
    """Refuse a ``with_updates`` argument that the class's builder does not take, naming the closest one."""
    allowed = ("name", *cls.build_args)
    for key in overrides:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{cls.__name__}.with_updates() got an unknown argument {key!r}.{hint} Valid: {', '.join(allowed)}."
            )


def _with_updates(cls, **overrides) -> type[TorchPolicy]:
    """A copy of this policy class with some ``build_policy`` arguments replaced (``name`` too)."""
    check_update_arguments(cls, overrides)
    args = {"name": cls.__name__, **cls.build_args, **overrides}
    new_cls = build_policy(**args)
    new_cls.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    return new_cls


def build_torch_policy(*args, **kwargs) -> type[TorchPolicy]:
    """The 2021 RLlib tutorial's name for ``build_policy`` (the course has only the torch flavour)."""
    kwargs_module = sys._getframe(1).f_globals.get("__name__", __name__)
    cls = build_policy(*args, **kwargs)
    cls.__module__ = kwargs_module
    return cls


def build_tf_policy(*args, **kwargs):
    """Not available: the course is PyTorch-only. The error says what to use instead."""
    raise NotImplementedError(
        "build_tf_policy is not available: course_lib is PyTorch-only. Use build_policy (or its alias "
        "build_torch_policy) with the same arguments, and write loss_fn with torch operations "
        "(torch.mean instead of tf.reduce_mean)."
    )
