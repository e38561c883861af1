"""Find environments by name: a course registry in front of gymnasium's.

An environment can be named four ways, as in RLlib 2021 (``trainer = PPOTrainer(env=...)``):

* a name given to :func:`register_env` (course envs such as ``"Corridor"`` register at import),
* a gymnasium id such as ``"CartPole-v1"``,
* an env class, called with ``env_config``,
* any creator callable ``creator(env_config) -> env``.

Course names are looked up first, so registering a name that is also a gymnasium id shadows the
gymnasium env (with a warning). Re-registering a course name replaces it silently: re-running a
notebook cell that calls ``register_env`` is the common case, not a mistake.

The registry is a plain dict in this process. A Ray actor runs in another process and does not see
names registered in a notebook, so code that builds envs on workers resolves the name here first,
with :func:`get_env_creator`, and ships the creator (a picklable callable) to the workers.
"""

import contextlib
import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium

from course_lib.validation import did_you_mean, is_whole_number

EnvCreator = Callable[[dict], Any]

_REGISTRY: dict[str, EnvCreator] = {}


class EnvContext(dict):
    """The ``env_config`` dict handed to env creators, plus which copy of the env this is.

    Introduced in notebooks/03_environments.ipynb.

    ``worker_index`` is 0 on the local worker and 1..N on remote rollout workers; ``vector_index``
    numbers the envs of one vectorized worker. An env can use them to differ per copy, for example
    to pick a different map or seed on each worker. It behaves as a normal dict everywhere else.
    """

    def __init__(
        self, env_config: dict | None = None, worker_index: int = 0, vector_index: int = 0
    ):
        super().__init__(env_config or {})
        for name, value in (("worker_index", worker_index), ("vector_index", vector_index)):
            if not is_whole_number(value) or value < 0:
                raise TypeError(f"EnvContext {name} must be an int >= 0, got {value!r}.")
        self.worker_index = worker_index
        self.vector_index = vector_index

    def __repr__(self) -> str:
        return (
            f"EnvContext({dict.__repr__(self)}, worker_index={self.worker_index}, "
            f"vector_index={self.vector_index})"
        )


def register_env(name: str, creator: EnvCreator) -> None:
    """Register ``creator(env_config) -> env`` under ``name`` so that ``make_env(name)`` finds it.

    Introduced in notebooks/03_environments.ipynb.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"register_env needs a non-empty string name, got {name!r}.")
    if not callable(creator):
        built = ""
        if hasattr(creator, "reset") and hasattr(creator, "step"):
            built = (
                " That is an env already built; register what builds one (each rollout worker "
                "needs its own), e.g. its class."
            )
        elif isinstance(creator, str) and creator in gymnasium.registry:
            built = (
                f" {creator!r} is a gymnasium id: use it directly, env={creator!r}, with no "
                "register_env; to give it another name, register a function that makes it."
            )
        raise TypeError(
            f"register_env({name!r}, creator): creator must be callable, got {creator!r} of type "
            f"{type(creator).__name__}.{built} Pass a function that takes env_config and returns "
            "an env, e.g. register_env('my_env', lambda env_config: MyEnv(env_config))."
        )
    if name in gymnasium.registry:
        warnings.warn(
            f"register_env({name!r}) shadows the gymnasium env with the same id: "
            f"make_env({name!r}) will now build your env instead. Pick another name to keep both.",
            stacklevel=2,
        )
    _REGISTRY[name] = creator
    # Ray Tune runs each trainer in its own process, which does not share this module's registry:
    # Tune's registry (kept by Ray for the whole job) carries the creator there. Importing Tune
    # takes seconds, so this waits until Tune is loaded; course_lib.agents (which loads it) calls
    # share_envs_with_tune() for the envs registered before.
    if "ray.tune.registry" in sys.modules:
        sys.modules["ray.tune.registry"].register_env(name, creator)


def share_envs_with_tune() -> None:
    """Put every env registered so far into Ray Tune's registry, for trainers running in Tune's
    processes."""
    from ray.tune.registry import register_env as register_with_tune

    for name, creator in _REGISTRY.items():
        register_with_tune(name, creator)


def registered_envs() -> list[str]:
    """Return the sorted names registered with :func:`register_env` (gymnasium ids not included).

    Introduced in notebooks/03_environments.ipynb.
    """
    return sorted(_REGISTRY)


def get_env_creator(name_or_class: str | EnvCreator) -> EnvCreator:
    """Turn an env name, gymnasium id, class or creator into ``creator(env_config) -> env``.

    Introduced in notebooks/03_environments.ipynb.

    The creator is a plain picklable callable, so it can be sent to Ray actors, which do not share
    this process's registry.
    """
    if isinstance(name_or_class, str):
        if name_or_class in _REGISTRY:
            return _REGISTRY[name_or_class]
        if name_or_class in gymnasium.registry:
            return functools.partial(_make_gymnasium_env, name_or_class)
        creator = _creator_from_tune(name_or_class)
        if creator is not None:
            return creator
        raise ValueError(_unknown_env_message(name_or_class))
    if callable(name_or_class):
        return name_or_class
    raise TypeError(
        "An environment is named by a registered name or gymnasium id (str), an env class, or a "
        f"creator function env_config -> env; got {name_or_class!r} of type "
        f"{type(name_or_class).__name__}."
    )


def _creator_from_tune(name: str) -> EnvCreator | None:
    """The creator registered under ``name`` in another process of this Ray job (e.g. a
    notebook's)."""
    if "ray" not in sys.modules or not sys.modules["ray"].is_initialized():
        return None
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, name):
        return _global_registry.get(ENV_CREATOR, name)
    return None


def make_env(
    name_or_class: str | EnvCreator,
    env_config: dict | None = None,
    *,
    worker_index: int | None = None,
    vector_index: int | None = None,
) -> Any:
    """Build one environment from a registered name, a gymnasium id, an env class or a creator.

    Introduced in notebooks/03_environments.ipynb.

    Course creators and classes receive ``env_config`` wrapped in an :class:`EnvContext` carrying
    ``worker_index`` and ``vector_index`` (default: those of ``env_config`` if it already is an
    EnvContext, else 0). Gymnasium ids are built with ``gymnasium.make(id, **env_config)``, so
    ``env_config`` holds keyword arguments of that env, e.g. ``{"max_episode_steps": 200}``.
    """
    if env_config is None:
        env_config = {}
    if not isinstance(env_config, dict):
        raise TypeError(
            f"env_config must be a dict of settings for the env, got {env_config!r} of type "
            f"{type(env_config).__name__}. Use {{}} for no settings."
        )
    if worker_index is None:
        worker_index = getattr(env_config, "worker_index", 0)
    if vector_index is None:
        vector_index = getattr(env_config, "vector_index", 0)
    context = EnvContext(env_config, worker_index=worker_index, vector_index=vector_index)

    creator = get_env_creator(name_or_class)
    _check_takes_env_config(creator, name_or_class)
    return env_from_creator(creator, context, name_or_class)


def env_from_creator(creator: EnvCreator, env_config: dict, name_or_class: Any = None) -> Any:
    """``creator(env_config)``, checked to be an environment (it has ``reset`` and ``step``).

    Introduced in notebooks/03_environments.ipynb. Rollout workers build their envs through it
    too, so a creator that forgot ``return env`` is named where it went wrong, not three calls
    later in a ``'NoneType' object has no attribute 'observation_space'``.
    """
    env = creator(env_config)
    # A class has reset and step too, as functions: only an instance is an environment.
    if isinstance(env, type) or not (hasattr(env, "reset") and hasattr(env, "step")):
        raise TypeError(_not_an_env_message(creator, name_or_class, env))
    return env


def _not_an_env_message(creator: EnvCreator, name_or_class: Any, returned: Any) -> str:
    if isinstance(returned, type):
        fix = (
            f"It returned the class {returned.__name__} itself: call it, "
            f"`return {returned.__name__}(env_config)`."
        )
    elif isinstance(returned, tuple):
        fix = "A tuple, perhaps env.reset()'s (obs, info)? Return the env itself: `return env`."
    else:
        fix = "Check that it ends with `return env`."
    which = _describe(creator)
    if name_or_class is not None and name_or_class is not creator:
        which = f"{_describe(name_or_class)} ({which})"
    text = " ".join(repr(returned).split())
    return (
        f"The creator for {which} returned an object of type {type(returned).__name__}, not an "
        f"environment (an object with reset() and step()): {text[:80]}. {fix}"
    )


def _check_takes_env_config(creator: EnvCreator, name_or_class: Any) -> None:
    """Fail with a fix when ``creator`` cannot be called with a single env_config argument."""
    try:
        signature = inspect.signature(creator)
    except (TypeError, ValueError):
        return  # No signature to inspect (e.g. a builtin): let the call itself speak.
    try:
        signature.bind({})
    except TypeError:
        raise TypeError(
            f"{_describe(name_or_class)} cannot be called with one argument, env_config: "
            "environments are built as creator(env_config). Give the class an "
            "`__init__(self, env_config)` that reads its settings from the dict, or register a "
            "creator that adapts it, e.g. "
            "register_env('name', lambda env_config: EnvClass(**env_config))."
        ) from None


def _make_gymnasium_env(env_id: str, env_config: dict) -> gymnasium.Env:
    """Build gymnasium env ``env_id`` with ``env_config`` as keyword arguments of gymnasium.make."""
    try:
        return gymnasium.make(env_id, **env_config)
    except TypeError as error:
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        if unexpected is None or unexpected.group(1) not in env_config:
            raise
        known = _gymnasium_keywords(env_id)
        raise TypeError(
            f"env_config key {unexpected.group(1)!r} is not a setting of {env_id!r}."
            f"{did_you_mean(unexpected.group(1), known)} For a gymnasium id, env_config holds "
            f"keyword arguments of gymnasium.make({env_id!r}, ...): {sorted(known)}."
        ) from None


def _gymnasium_keywords(env_id: str) -> set[str]:
    """The keyword arguments gymnasium.make accepts for ``env_id``: its own and the env's."""
    known = {p for p in inspect.signature(gymnasium.make).parameters if p not in ("id", "kwargs")}
    spec = gymnasium.spec(env_id)
    known |= set(spec.kwargs)
    with contextlib.suppress(Exception):  # an entry point that cannot be inspected adds nothing
        entry_point = spec.entry_point
        if isinstance(entry_point, str):
            entry_point = gymnasium.envs.registration.load_env_creator(entry_point)
        known |= {
            name
            for name, parameter in inspect.signature(entry_point).parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        }
    return known


def _unknown_env_message(name: str) -> str:
    """Say that ``name`` is unknown, suggest close matches and list what is registered."""
    candidates = list(_REGISTRY) + list(gymnasium.registry)
    suggestion = did_you_mean(name, candidates, n=3)
    return (
        f"Unknown environment {name!r}.{suggestion} Registered course envs: {registered_envs()}. "
        "Any gymnasium id also works (see gymnasium.pprint_registry()), and so does an env class "
        "or a creator function registered with register_env(name, creator)."
    )


def _describe(name_or_class: Any) -> str:
    """A short human name for an env spec, for error messages."""
    if isinstance(name_or_class, str):
        return repr(name_or_class)
    if isinstance(name_or_class, functools.partial):
        return f"functools.partial({_describe(name_or_class.func)}, ...)"
    return getattr(name_or_class, "__qualname__", repr(name_or_class))
