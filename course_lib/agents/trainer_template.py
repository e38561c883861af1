"""``build_trainer``: a Trainer class from a policy, a default config and an execution plan.

The 2021 RLlib tutorial's recipe: ``MyTrainer = build_trainer(name="MyCustomTrainer",
default_policy=MyPolicy)``, then ``tune.run(MyTrainer, config={"env": "CartPole-v1",
"num_workers": 2})``. Every algorithm in ``course_lib.agents`` is built this way,
``PPOTrainer.with_updates(default_policy=...)`` makes a variant, and ``show(PPOTrainer)`` shows the
``build_trainer`` call and the functions the class was built from. Set-up order inside the trainer:

1. config: merge over ``default_config`` and check, then ``validate_config(config)``,
   ``validate_env``;
2. workers: ``before_init(trainer)``, the WorkerSet with the policy from
   ``get_policy_class(config)`` (or ``default_policy``), then ``execution_plan(workers, config)``;
3. ``after_init(trainer)``. ``before_evaluate_fn(trainer)`` runs before each evaluation.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

from typing import Callable

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.trainer import Trainer, default_execution_plan
from course_lib.policy.policy_template import (
    adopt_caller_module,
    check_builder_arguments,
    check_update_arguments,
    name_built_class,
)

HOOKS = (
    "validate_config",
    "get_policy_class",
    "validate_env",
    "before_init",
    "after_init",
    "before_evaluate_fn",
)


def build_trainer(
    name: str,
    *,
    default_config: dict | None = None,
    validate_config: Callable[[dict], None] | None = None,
    default_policy: type | None = None,
    get_policy_class: Callable[[dict], type | None] | None = None,
    validate_env: Callable | None = None,
    before_init: Callable | None = None,
    after_init: Callable | None = None,
    before_evaluate_fn: Callable | None = None,
    mixins: list[type] | None = None,
    execution_plan: Callable = default_execution_plan,
) -> type[Trainer]:
    """A new ``Trainer`` subclass named ``name``; see the module docstring for when each hook runs.

    ``default_config`` must contain every key of ``COMMON_CONFIG`` plus the algorithm's own (start
    from ``dict(COMMON_CONFIG, my_key=...)``); None means ``COMMON_CONFIG``.
    Introduced in notebooks/12_trainers.ipynb.
    """
    build_args = {k: v for k, v in locals().items() if k != "name"}
    check_builder_arguments(
        "build_trainer", name, build_args, (*HOOKS, "execution_plan"), "MyTrainer"
    )
    if default_policy is None and get_policy_class is None:
        raise ValueError(
            f"build_trainer({name!r}) needs default_policy=SomePolicy (or get_policy_class=...)."
        )
    config = default_config if default_config is not None else COMMON_CONFIG
    missing = sorted(set(COMMON_CONFIG) - set(config))
    if missing:
        raise ValueError(
            f"build_trainer({name!r}): default_config lacks the common keys {missing[:5]}. "
            "Build it as dict(COMMON_CONFIG, your_key=...) so every trainer setting has a default."
        )
    mixins = list(mixins or [])
    # The class below sets an attribute called execution_plan, which would hide the argument there.
    plan = execution_plan

    class BuiltTrainer(*mixins, Trainer):
        _name = name
        _default_config = config
        _default_policy = default_policy
        # Trainer.setup calls these at the moments listed in the module docstring.
        _hooks = {hook: build_args[hook] for hook in HOOKS if build_args[hook] is not None}
        # The plan itself, not a wrapper, so show(PPOTrainer.execution_plan) shows the plan.
        execution_plan = staticmethod(plan)

        @classmethod
        def with_updates(cls, **overrides) -> type[Trainer]:
            """A copy of this trainer class with some ``build_trainer`` arguments replaced."""
            check_update_arguments(cls, overrides)
            new_cls = build_trainer(**{"name": cls._name, **cls.build_args, **overrides})
            return adopt_caller_module(new_cls)

    name_built_class(
        BuiltTrainer,
        name,
        f"Trainer built by build_trainer({name!r}, ...); show() it, or read .build_args.",
    )
    BuiltTrainer.build_args = {**build_args, "mixins": mixins}
    return adopt_caller_module(BuiltTrainer)
