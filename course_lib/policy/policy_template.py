"""``build_policy``: make a Policy class from a loss function and a few optional hooks.

The 2021 RLlib tutorial's recipe: ``MyPolicy = build_policy("MyPolicy", loss_fn=my_loss)``, then
``MyPolicy.with_updates(name=..., loss_fn=...)`` for a variant. Each hook becomes one method of
the new ``TorchPolicy`` subclass; ``show(TorchPolicy)`` shows where that method is called, and
``show(MyPolicy)`` shows the ``build_policy`` call and the functions the class was built from.
Introduced in notebooks/07_policies.ipynb.

Hook signatures (every one optional but ``loss_fn``), and the method each one becomes:

- ``loss_fn(policy, model, dist_class, train_batch) -> scalar tensor``: ``loss``
- ``get_default_config() -> dict``, merged under the user's config: ``__init__``
- ``postprocess_fn(policy, sample_batch, other_agent_batches=None, episode=None) -> SampleBatch``:
  ``postprocess_trajectory``
- ``stats_fn(policy, train_batch) -> dict`` of numbers for ``learn_on_batch``'s result: ``stats``
- ``optimizer_fn(policy, config) -> torch.optim.Optimizer``: ``make_optimizer``
- ``make_model(policy, obs_space, action_space, config) -> TorchModelV2``: ``make_model``
- ``action_sampler_fn(policy, model, input_dict, state, explore, timestep)
  -> (actions, logp, state_out)``: ``_action_sampler_fn``
- ``action_distribution_fn(policy, model, input_dict, state, seq_lens, explore, timestep)
  -> (dist_inputs, dist_class, state_out)``: ``_action_distribution_fn``
- ``extra_action_out_fn(policy, input_dict, state, model, action_dist) -> dict`` of per-row
  tensors: ``extra_action_out``
- ``before_init(policy, obs_space, action_space, config)`` / ``after_init(...)``: at the start
  and the end of ``__init__``
- ``mixins``: classes placed before ``TorchPolicy`` in the new class's bases
"""

from __future__ import annotations

import sys
from typing import Callable

from course_lib.policy.policy import POLICY_DEFAULTS
from course_lib.policy.torch_policy import TorchPolicy
from course_lib.validation import did_you_mean

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


def adopt_caller_module(cls: type, depth: int = 2) -> type:
    """Move a built class into the module of the code that asked for it; returns ``cls``.

    Why: pickle (and cloudpickle, which Ray and Tune use) stores a class as "module + name" and
    finds it again by importing that module. A class made inside ``build_policy`` would name
    ``course_lib.policy.policy_template``, where no ``PPOTorchPolicy`` exists, so sending it to a
    rollout worker or a Tune trial would fail or copy the whole class. Naming the module where
    the user wrote ``PPOTorchPolicy = build_policy("PPOTorchPolicy", ...)`` lets it be found.

    ``depth`` counts frames up from here: 2 is whoever called the function that calls this one.
    Also records that caller's place as ``cls.built_at = (filename, line)``, which ``show(cls)``
    uses to display the builder call. Part of build_policy, introduced in
    notebooks/07_policies.ipynb.
    """
    caller = sys._getframe(depth)
    cls.__module__ = caller.f_globals.get("__name__", cls.__module__)
    cls.built_at = (caller.f_code.co_filename, caller.f_lineno)
    return cls


def check_builder_arguments(builder: str, name, arguments: dict, hooks, example: str) -> None:
    """The checks ``build_policy`` and ``build_trainer`` share: a class name and callable hooks.

    Part of build_policy, introduced in notebooks/07_policies.ipynb.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{builder} needs a class name such as {example!r}, got {name!r}.")
    for hook in hooks:
        if arguments[hook] is not None and not callable(arguments[hook]):
            raise TypeError(
                f"{builder}({name!r}, {hook}=...) expects a function, "
                f"got {type(arguments[hook]).__name__}."
            )


def name_built_class(cls: type, name: str, doc: str) -> None:
    """Give a class made inside a builder the learner's name, on the class and on its methods.

    Tracebacks and ``show`` then say ``PPOTorchPolicy.loss``, not
    ``build_policy.<locals>.BuiltPolicy.loss``, and pickle finds the class under ``name``.
    Functions the class only holds (a user's execution plan) keep their own names.
    Part of build_policy, introduced in notebooks/07_policies.ipynb.
    """
    written_here = cls.__qualname__ + "."
    for attribute, value in vars(cls).items():
        function = getattr(value, "__func__", value)
        if getattr(function, "__qualname__", "").startswith(written_here):
            function.__qualname__ = f"{name}.{attribute}"
    cls.__name__ = cls.__qualname__ = name
    cls.__doc__ = doc


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
    Introduced in notebooks/07_policies.ipynb.
    """
    build_args = {k: v for k, v in locals().items() if k != "name"}
    check_builder_arguments("build_policy", name, build_args, HOOKS, "MyTorchPolicy")
    mixins = list(mixins or [])
    # The class below defines a method called make_model, which would hide the argument there.
    model_fn = make_model

    class BuiltPolicy(*mixins, TorchPolicy):
        def __init__(self, observation_space, action_space, config=None):
            defaults = get_default_config() if get_default_config else {}
            config = {**POLICY_DEFAULTS, **defaults, **(config or {})}
            # The model config merges one level deeper: {"fcnet_hiddens": [64]} keeps the
            # default activation.
            config["model"] = {**defaults.get("model", {}), **config["model"]}
            if before_init:
                before_init(self, observation_space, action_space, config)
            TorchPolicy.__init__(self, observation_space, action_space, config)
            if after_init:
                after_init(self, observation_space, action_space, config)

        if loss_fn:

            def loss(self, model, dist_class, train_batch):
                return loss_fn(self, model, dist_class, train_batch)

        if postprocess_fn:

            def postprocess_trajectory(self, sample_batch, other_agent_batches=None, episode=None):
                return postprocess_fn(self, sample_batch, other_agent_batches, episode)

        if stats_fn:

            def stats(self, train_batch):
                return stats_fn(self, train_batch)

        if optimizer_fn:

            def make_optimizer(self):
                return optimizer_fn(self, self.config)

        if model_fn:

            def make_model(self, num_outputs):
                return model_fn(self, self.observation_space, self.action_space, self.config)

        if extra_action_out_fn:

            def extra_action_out(self, input_dict, state, model, action_dist):
                return extra_action_out_fn(self, input_dict, state, model, action_dist)

        if action_sampler_fn:

            def _action_sampler_fn(self, model, input_dict, state, explore, timestep):
                return action_sampler_fn(
                    self, model, input_dict, state, explore=explore, timestep=timestep
                )

        if action_distribution_fn:

            def _action_distribution_fn(
                self, model, input_dict, state, seq_lens, explore, timestep
            ):
                return action_distribution_fn(
                    self, model, input_dict, state, seq_lens, explore=explore, timestep=timestep
                )

        @classmethod
        def with_updates(cls, **overrides) -> type[TorchPolicy]:
            """A copy of this policy class with some ``build_policy`` arguments replaced."""
            check_update_arguments(cls, overrides)
            new_cls = build_policy(**{"name": cls.__name__, **cls.build_args, **overrides})
            return adopt_caller_module(new_cls)

    name_built_class(
        BuiltPolicy,
        name,
        f"Policy built by build_policy({name!r}, ...); show() it, or read .build_args.",
    )
    BuiltPolicy.build_args = {**build_args, "mixins": mixins}
    return adopt_caller_module(BuiltPolicy)


def check_update_arguments(cls, overrides: dict) -> None:
    """Refuse a ``with_updates`` argument that the class's builder does not take, naming the
    closest one. Introduced in notebooks/07_policies.ipynb."""
    allowed = ("name", *cls.build_args)
    for key in overrides:
        if key not in allowed:
            raise TypeError(
                f"{cls.__name__}.with_updates() got an unknown argument {key!r}."
                f"{did_you_mean(key, allowed)} Valid: {', '.join(allowed)}."
            )


def build_torch_policy(*args, **kwargs) -> type[TorchPolicy]:
    """The 2021 RLlib tutorial's name for ``build_policy`` (the course has only the torch flavour).

    Introduced in notebooks/07_policies.ipynb.
    """
    return adopt_caller_module(build_policy(*args, **kwargs))


def build_tf_policy(*args, **kwargs):
    """Not available: the course is PyTorch-only. The error says what to use instead.

    Introduced in notebooks/07_policies.ipynb.
    """
    raise NotImplementedError(
        "build_tf_policy is not available: course_lib is PyTorch-only. Use build_policy (or its "
        "alias build_torch_policy) with the same arguments, and write loss_fn with torch "
        "operations (torch.mean instead of tf.reduce_mean)."
    )
