"""ModelCatalog: picks the preprocessor, the model and the action distribution for a pair of spaces.

The policy asks the catalog three questions: how to flatten observations (``get_preprocessor``),
which distribution fits the action space and how many model outputs it needs
(``get_action_dist``), and which network to build (``get_model_v2``). Custom models and
distributions are registered under a name and chosen in the ``"model"`` config, as in the 2021 RLlib
tutorial:

    ModelCatalog.register_custom_model("my_torch_model", MyModelClass)
    config = {"model": {"custom_model": "my_torch_model", "custom_model_config": {}}}

Registrations live in the process that made them. Ray workers are other processes, so before a
config travels to them, ``resolve_custom_names`` swaps the names for the registered classes.

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping

import numpy as np
from gymnasium import spaces

from course_lib.models.action_dist import (
    ActionDistribution,
    TorchCategorical,
    TorchDeterministic,
    TorchDiagGaussian,
    TorchMultiCategorical,
    TorchSquashedGaussian,
)
from course_lib.models.fcnet import FullyConnectedNetwork
from course_lib.models.lstm import LSTMWrapper
from course_lib.models.model_config import merge_model_config
from course_lib.models.preprocessors import Preprocessor, get_preprocessor
from course_lib.models.torch_model import TorchModelV2


def check_framework(framework: str) -> None:
    """The course is PyTorch-only; say so clearly instead of failing deep inside."""
    if framework != "torch":
        raise ValueError(
            f"framework={framework!r} is not supported: course_lib "
            'is PyTorch-only. Set "framework": "torch" '
            "in your config; the 2021 RLlib tutorial's TFModelV2 examples "
            "become TorchModelV2 subclasses with the same methods."
        )


def _resolve(value, registry: dict, base_class: type, what: str) -> type:
    """A registered name or a subclass of ``base_class`` -> the class."""
    if isinstance(value, str):
        if value not in registry:
            registered = sorted(registry) or "none yet"
            raise ValueError(
                f"No custom {what} is registered as {value!r}. Registered: {registered}. Register "
                f"it first with ModelCatalog.register_custom_{what.replace(' ', '_')}({value!r}, "
                "YourClass) (in this process)."
            )
        return registry[value]
    if isinstance(value, type) and issubclass(value, base_class):
        return value
    raise TypeError(
        f"custom {what} must be a registered name or a "
        f"{base_class.__name__} subclass, got {value!r}."
    )


def _constructor_kwargs_check(model_class: type, kwargs: dict) -> None:
    """Raises a clear TypeError if ``model_class.__init__`` cannot take ``kwargs``."""
    parameters = inspect.signature(model_class.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unexpected = sorted(set(kwargs) - accepted)
    if unexpected:
        raise TypeError(
            f"{model_class.__name__}.__init__ receives the entries of custom_model_config (and "
            "get_model_v2's extra keyword arguments) as keyword arguments, but it has no "
            f"parameter named {unexpected}. Add them to its signature "
            "(or **kwargs), or remove them from custom_model_config."
        )


class ModelCatalog:
    """Registry and factory of preprocessors, models and action distributions (all class-level).

    Introduced in notebooks/06_models.ipynb.
    """

    _custom_models: dict[str, type] = {}
    _custom_action_dists: dict[str, type] = {}

    @staticmethod
    def get_preprocessor(obs_space: spaces.Space) -> Preprocessor:
        """The preprocessor that flattens observations of ``obs_space`` to ``(size,)`` float32
        vectors."""
        return get_preprocessor(obs_space)

    @classmethod
    def get_action_dist(
        cls,
        action_space: spaces.Space,
        model_config: Mapping | None,
        dist_type=None,
        framework: str = "torch",
    ) -> tuple[type, int]:
        """``(dist_class, num_outputs)`` for ``action_space``: the distribution and the model output
        size it needs.

        Order of choice: ``model_config["custom_action_dist"]`` (registered name or class), then
        ``dist_type`` (an ActionDistribution subclass, or for Box spaces ``"deterministic"`` or
        ``"squashed_gaussian"``, the latter as a ``functools.partial`` with the Box's bounds), then
        by space: Discrete -> TorchCategorical, MultiDiscrete -> TorchMultiCategorical (as a
        ``functools.partial`` with ``input_lens``), Box -> TorchDiagGaussian.
        """
        check_framework(framework)
        config = merge_model_config(model_config)
        if config["custom_action_dist"] is not None:
            dist_class = _resolve(
                config["custom_action_dist"],
                cls._custom_action_dists,
                ActionDistribution,
                "action dist",
            )
            return dist_class, int(dist_class.required_model_output_shape(action_space, config))
        if dist_type == "deterministic":
            dist_class = TorchDeterministic
        elif dist_type == "squashed_gaussian":
            num_outputs = TorchSquashedGaussian.required_model_output_shape(action_space, config)
            low, high = (
                np.asarray(b, np.float32).reshape(-1) for b in (action_space.low, action_space.high)
            )
            return functools.partial(TorchSquashedGaussian, low=low, high=high), num_outputs
        elif isinstance(dist_type, type) and issubclass(dist_type, ActionDistribution):
            dist_class = dist_type
        elif dist_type is not None:
            raise ValueError(
                "dist_type must be None, 'deterministic', 'squashed_gaussian' or an "
                f"ActionDistribution subclass, got {dist_type!r}."
            )
        elif isinstance(action_space, spaces.Discrete):
            dist_class = TorchCategorical
        elif isinstance(action_space, spaces.MultiDiscrete):
            num_outputs = TorchMultiCategorical.required_model_output_shape(action_space, config)
            input_lens = [int(n) for n in np.asarray(action_space.nvec).reshape(-1)]
            return functools.partial(TorchMultiCategorical, input_lens=input_lens), num_outputs
        elif isinstance(action_space, spaces.Box):
            dist_class = TorchDiagGaussian
        else:
            raise NotImplementedError(
                f"No built-in action distribution for {action_space!r}. course_lib supports "
                "Discrete, MultiDiscrete and Box action spaces; "
                "for others register a custom action distribution."
            )
        return dist_class, int(dist_class.required_model_output_shape(action_space, config))

    @classmethod
    def get_model_v2(
        cls,
        obs_space: spaces.Space,
        action_space: spaces.Space,
        num_outputs: int | None,
        model_config: Mapping | None,
        framework: str = "torch",
        name: str = "default_model",
        **model_kwargs,
    ) -> TorchModelV2:
        """Builds the model: ``custom_model`` (name or class) or FullyConnectedNetwork, LSTM-wrapped
        if ``use_lstm``.

        ``obs_space`` is the environment's original space (the model sizes its input from the
        preprocessor). A custom model gets ``custom_model_config`` and ``model_kwargs`` as keyword
        arguments. With ``use_lstm`` the inner model is built with ``num_outputs=None`` (features
        only) and LSTMWrapper adds the logits and value layers.
        """
        check_framework(framework)
        config = merge_model_config(model_config)
        kwargs = dict(model_kwargs)
        if config["custom_model"] is not None:
            model_class = _resolve(
                config["custom_model"], cls._custom_models, TorchModelV2, "model"
            )
            kwargs.update(config["custom_model_config"])
        else:
            model_class = FullyConnectedNetwork
        _constructor_kwargs_check(model_class, kwargs)
        if not config["use_lstm"]:
            return model_class(obs_space, action_space, num_outputs, config, name, **kwargs)
        wrapped = model_class(obs_space, action_space, None, config, f"{name}_wrapped", **kwargs)
        return LSTMWrapper(
            obs_space, action_space, num_outputs, config, name, wrapped_model=wrapped
        )

    @classmethod
    def register_custom_model(cls, name: str, model_class: type) -> None:
        """Makes ``model_class`` (a TorchModelV2 subclass) available as ``"custom_model": name``."""
        _check_registered_name("register_custom_model", name, "MyModel")
        if not (isinstance(model_class, type) and issubclass(model_class, TorchModelV2)):
            raise TypeError(
                f"register_custom_model({name!r}, ...) needs a subclass of "
                "course_lib.models.TorchModelV2 (with __init__(obs_space, action_space, "
                "num_outputs, model_config, name), forward "
                f"and value_function), got {model_class!r}."
            )
        cls._custom_models[name] = model_class

    @classmethod
    def register_custom_action_dist(cls, name: str, dist_class: type) -> None:
        """Makes ``dist_class`` (an ActionDistribution subclass) available as
        ``"custom_action_dist": name``."""
        _check_registered_name("register_custom_action_dist", name, "MyDist")
        if not (isinstance(dist_class, type) and issubclass(dist_class, ActionDistribution)):
            raise TypeError(
                f"register_custom_action_dist({name!r}, ...) needs a subclass of "
                f"course_lib.models.ActionDistribution, got {dist_class!r}."
            )
        cls._custom_action_dists[name] = dist_class

    @classmethod
    def resolve_custom_names(cls, model_config: Mapping | None) -> dict:
        """A copy of ``model_config`` with registered ``custom_model``/``custom_action_dist`` names
        replaced by classes.

        Call it before sending a config to Ray workers: their processes have empty registries,
        but classes travel with the config.
        """
        resolved = dict(model_config or {})
        for key, registry, base_class, what in (
            ("custom_model", cls._custom_models, TorchModelV2, "model"),
            ("custom_action_dist", cls._custom_action_dists, ActionDistribution, "action dist"),
        ):
            if resolved.get(key) is not None:
                resolved[key] = _resolve(resolved[key], registry, base_class, what)
        return resolved


def _check_registered_name(method: str, name, example_class: str) -> None:
    """The name comes first; a class there means the two arguments were swapped."""
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"{method} takes a non-empty string name first, then the class: "
            f"ModelCatalog.{method}('my_name', {example_class}); got name={name!r}."
        )
