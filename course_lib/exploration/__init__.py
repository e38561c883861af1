"""Exploration: how a policy turns its action distribution into the actions it takes (lesson 09).

A policy's ``"exploration_config"`` picks the strategy and its arguments::

    "exploration_config": {"type": "EpsilonGreedy", "initial_epsilon": 1.0,
                           "final_epsilon": 0.02, "epsilon_timesteps": 10000}

``"type"`` is a class name below, an ``Exploration`` subclass, or a dotted path
``"my_package.my_module.MyExploration"``; the other keys are the class's constructor arguments.

    StochasticSampling       sample from the distribution (policy-gradient default)
    EpsilonGreedy            argmax, or with prob. epsilon a random action (DQN)
    PerWorkerEpsilonGreedy   a fixed epsilon per rollout worker (Ape-X)
    SoftQ                    sample from softmax(Q / temperature)
    GaussianNoise            deterministic action + Gaussian noise (TD3)
    OrnsteinUhlenbeckNoise   deterministic action + correlated noise (DDPG)
    Random                   uniformly random actions

Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import importlib
import inspect

from gymnasium import spaces

from course_lib.exploration.epsilon_greedy import EpsilonGreedy
from course_lib.exploration.exploration import Exploration
from course_lib.exploration.gaussian_noise import AdditiveNoise, GaussianNoise
from course_lib.exploration.ornstein_uhlenbeck_noise import OrnsteinUhlenbeckNoise
from course_lib.exploration.per_worker_epsilon_greedy import PerWorkerEpsilonGreedy, apex_epsilon
from course_lib.exploration.random import Random, random_actions
from course_lib.exploration.schedules import (
    ConstantSchedule,
    ExponentialSchedule,
    LinearSchedule,
    PiecewiseSchedule,
    Schedule,
    make_schedule,
)
from course_lib.exploration.soft_q import SoftQ
from course_lib.exploration.stochastic_sampling import StochasticSampling
from course_lib.validation import did_you_mean

EXPLORATIONS: dict[str, type[Exploration]] = {
    cls.__name__: cls
    for cls in (
        StochasticSampling,
        EpsilonGreedy,
        PerWorkerEpsilonGreedy,
        SoftQ,
        GaussianNoise,
        OrnsteinUhlenbeckNoise,
        Random,
    )
}

# Arguments every Exploration receives from the policy rather than from exploration_config.
POLICY_PROVIDED = (
    "action_space",
    "policy_config",
    "model",
    "num_workers",
    "worker_index",
    "framework",
)


def from_config(
    exploration_config: dict,
    *,
    action_space: spaces.Space,
    policy_config: dict,
    model,
    num_workers: int = 0,
    worker_index: int = 0,
) -> Exploration:
    """Build the Exploration that ``exploration_config`` describes, for one policy on one worker.

    ``exploration_config["type"]``: a name from ``EXPLORATIONS`` (case-sensitive), an
    ``Exploration`` subclass, or a dotted path ``"package.module.ClassName"``. Other keys are
    constructor arguments; unknown ones raise a TypeError that lists the valid ones.

    Introduced in notebooks/09_exploration.ipynb.
    """
    if not isinstance(exploration_config, dict) or "type" not in exploration_config:
        raise ValueError(
            "exploration_config must be a dict with a 'type' key, e.g. "
            f"{{'type': 'EpsilonGreedy'}}; got {exploration_config!r}."
        )
    kwargs = dict(exploration_config)
    cls = resolve_exploration_class(kwargs.pop("type"))
    check_exploration_kwargs(cls, kwargs)
    return cls(
        action_space,
        policy_config=policy_config,
        model=model,
        num_workers=num_workers,
        worker_index=worker_index,
        framework=policy_config.get("framework", "torch"),
        **kwargs,
    )


def resolve_exploration_class(exploration_type) -> type[Exploration]:
    """The Exploration subclass named by a class, a built-in name, or a dotted import path.

    Introduced in notebooks/09_exploration.ipynb.
    """
    if isinstance(exploration_type, str):
        if "." in exploration_type:
            cls = _import_class(exploration_type)
        elif exploration_type in EXPLORATIONS:
            cls = EXPLORATIONS[exploration_type]
        else:
            raise ValueError(_unknown_type_message(exploration_type))
    else:
        cls = exploration_type
    if not (isinstance(cls, type) and issubclass(cls, Exploration)):
        raise TypeError(
            "exploration_config['type'] must name a subclass of "
            f"course_lib.exploration.Exploration, got {exploration_type!r}. Write `class "
            "MyExploration(Exploration): ...` and implement get_exploration_action()."
        )
    return cls


def _unknown_type_message(name: str) -> str:
    hint = did_you_mean(name, EXPLORATIONS, cutoff=0.5)
    return (
        f"Unknown exploration type {name!r}.{hint} Built-in types (case-sensitive): "
        f"{', '.join(EXPLORATIONS)}; or pass an Exploration subclass, or a dotted path such as "
        "'my_module.MyExploration'."
    )


def _import_class(path: str):
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f"exploration_config['type']={path!r}: cannot import module {module_name!r} ({err})."
        ) from err
    if not hasattr(module, class_name):
        raise ImportError(
            f"exploration_config['type']={path!r}: module "
            f"{module_name!r} has no attribute {class_name!r}."
        )
    return getattr(module, class_name)


def exploration_arguments(cls: type[Exploration]) -> list[str]:
    """The constructor arguments an exploration_config may set for ``cls``, following ``**kwargs``
    up the MRO.

    Introduced in notebooks/09_exploration.ipynb.
    """
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [
            p.name
            for p in parameters
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name not in (*POLICY_PROVIDED, "self")
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))


def check_exploration_kwargs(cls: type[Exploration], kwargs: dict) -> None:
    """Raise a TypeError naming the valid arguments if ``kwargs`` has one ``cls`` does not take.

    Introduced in notebooks/09_exploration.ipynb.
    """
    valid = exploration_arguments(cls)
    for key in kwargs:
        if key in POLICY_PROVIDED:
            raise TypeError(
                f"exploration_config sets {key!r}, but the policy "
                "passes that itself; remove it from exploration_config."
            )
        if key not in valid:
            hint = did_you_mean(key, valid)
            raise TypeError(
                f"{cls.__name__} got an unknown exploration_config key {key!r}.{hint} "
                f"Valid keys for {cls.__name__}: {', '.join(valid) or '(none)'}."
            )


__all__ = [
    "EXPLORATIONS",
    "AdditiveNoise",
    "ConstantSchedule",
    "EpsilonGreedy",
    "Exploration",
    "ExponentialSchedule",
    "GaussianNoise",
    "LinearSchedule",
    "OrnsteinUhlenbeckNoise",
    "PerWorkerEpsilonGreedy",
    "PiecewiseSchedule",
    "Random",
    "Schedule",
    "SoftQ",
    "StochasticSampling",
    "apex_epsilon",
    "from_config",
    "make_schedule",
    "random_actions",
]
