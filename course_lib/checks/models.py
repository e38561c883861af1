"""Grader for notebooks/06_models.ipynb: a custom model that plugs into the catalog."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ._common import CheckFailed, passed


def check_custom_model(MyModel) -> None:
    """Exercise 6.1: a ``TorchModelV2`` with a ``hidden`` size from ``custom_model_config``, logits
    and a value head."""
    from course_lib.models import ModelCatalog, TorchModelV2

    if not (isinstance(MyModel, type) and issubclass(MyModel, TorchModelV2)):
        raise CheckFailed(
            "6.1", f"MyModel should be a class that subclasses TorchModelV2; got {MyModel!r:.60}."
        )
    ModelCatalog.register_custom_model("exercise_5_1_model", MyModel)
    obs_space, action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32), gym.spaces.Discrete(3)
    config = {"custom_model": "exercise_5_1_model", "custom_model_config": {"hidden": 24}}
    model = ModelCatalog.get_model_v2(obs_space, action_space, 3, config)
    n_params = sum(p.numel() for p in model.parameters())
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (5, 6)), dtype=torch.float32)
    result = model({"obs": obs}, [], None)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(
            "6.1",
            "forward must return a pair (logits, state); "
            "for a feed-forward model: return logits, state.",
        )
    logits, state = result
    if tuple(logits.shape) != (5, 3):
        raise CheckFailed(
            "6.1",
            "for 5 observations and num_outputs=3 the logits should be (5, 3), "
            f"got {tuple(logits.shape)}. Size the last layer with num_outputs.",
        )
    value = model.value_function()
    if tuple(value.shape) == (5, 1):
        raise CheckFailed(
            "6.1",
            "value_function() returned shape (5, 1); return "
            "one value per row, shape (5,): add .squeeze(-1).",
        )
    if tuple(value.shape) != (5,):
        raise CheckFailed(
            "6.1", f"value_function() should have shape (5,), got {tuple(value.shape)}."
        )
    (logits.sum() + value.sum()).backward()
    without_grad = [name for name, p in model.named_parameters() if p.grad is None]
    if without_grad:
        raise CheckFailed(
            "6.1",
            "these parameters got no gradient from the logits or the "
            f"value: {without_grad}. Is every layer used in forward?",
        )
    bigger = ModelCatalog.get_model_v2(
        obs_space, action_space, 3, {**config, "custom_model_config": {"hidden": 48}}
    )
    if sum(p.numel() for p in bigger.parameters()) <= n_params:
        raise CheckFailed(
            "6.1",
            "hidden=48 built a model no bigger than hidden=24: read "
            "the hidden size from the `hidden` keyword argument.",
        )
    passed(
        "6.1",
        f"MyModel builds through the catalog ({n_params} parameters "
        "at hidden=24), with logits (B, 3) and values (B,).",
    )
