"""``build_trainer``: a Trainer class from a policy, a default config and an execution plan.

The 2021 RLlib tutorial's recipe: ``MyTrainer = build_trainer(name="MyCustomTrainer", default_policy=MyPolicy)``,
then ``tune.run(MyTrainer, config={"env": "CartPole-v1", "num_workers": 2})``. Every algorithm in
``course_lib.agents`` is built this way, and ``PPOTrainer.with_updates(default_policy=...)`` makes
a variant. Set-up order inside the trainer:

1. config: merge over ``default_config`` and check, then ``validate_config(config)``, ``validate_env``;
2. workers: ``before_init(trainer)``, the WorkerSet with the policy from ``get_policy_class(config)``
   (or ``default_policy``), then ``execution_plan(workers, config)``;
3. ``after_init(trainer)``. ``before_evaluate_fn(trainer)`` runs before each evaluation.

Introduced in notebooks/11_trainers.ipynb.
"""

from __future__ import annotations

import sys
from typing import Callable

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.trainer import Trainer, default_execution_plan
from course_lib.policy.policy_template import check_update_arguments

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
    """
    build_args = {k: v for k, v in locals().items() if k != "name"}
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"build_trainer needs a class name such as 'MyTrainer', got {name!r}.")
    for hook in (*HOOKS, "execution_plan"):
        if build_args[hook] is not None and not callable(build_args[hook]):
            raise TypeError(
                f"build_trainer({name!r}, {hook}=...) expects a function, got {type(build_args[hook]).__name__}."
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
    namespace = {
        "_name": name,
        "_default_config": config,
        "_default_policy": default_policy,
        "_hooks": {hook: build_args[hook] for hook in HOOKS if build_args[hook] is not None},
        "execution_plan": staticmethod(execution_plan),
        "__doc__": f"Trainer built by build_trainer({name!r}, ...); its arguments are in .build_args.",
    }
    cls = type(name, (*(mixins or []), Trainer), namespace)
    # Name the class after the module that built it, so pickle (and Ray, and Tune) find it there.
    cls.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    cls.build_args = {**build_args, "mixins": list(mixins or [])}
    cls.with_updates = classmethod(_with_updates)
    return cls


def _with_updates(cls, **overrides) -> type[Trainer]:
    """A copy of this trainer class with some ``build_trainer`` arguments replaced (``name`` too)."""
    check_update_arguments(cls, overrides)
    new_cls = build_trainer(**{"name": cls._name, **cls.build_args, **overrides})
    new_cls.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    return new_cls
