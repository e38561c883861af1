"""MODEL_DEFAULTS and the check that turns a user's ``"model"`` config into a complete one.

Every key below is read by some part of ``course_lib.models`` (or, for ``max_seq_len``, by the
policy when it cuts a batch into sequences); there is no key that nothing reads.

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from course_lib.validation import did_you_mean

MODEL_DEFAULTS: dict = {
    # FullyConnectedNetwork: sizes of the hidden layers and their activation ("tanh", "relu",
    # "linear"/None).
    "fcnet_hiddens": [256, 256],
    "fcnet_activation": "tanh",
    # FullyConnectedNetwork: whether the value head sits on the policy's hidden layers (True)
    # or on a separate MLP of the same shape (False).
    "vf_share_layers": False,
    # Continuous actions: the log-std half of the outputs is a learned vector that does not depend
    # on the obs.
    "free_log_std": False,
    # ModelCatalog: wrap the model (default or custom) in an LSTMWrapper.
    "use_lstm": False,
    # LSTMWrapper: size of the LSTM's hidden and cell state.
    "lstm_cell_size": 256,
    # Policy: the longest sequence a training batch is cut into (see pad_batch_to_sequences).
    "max_seq_len": 20,
    # LSTMWrapper: also feed the previous action / previous reward into the LSTM.
    "lstm_use_prev_action": False,
    "lstm_use_prev_reward": False,
    # ModelCatalog: a registered model name (or a TorchModelV2 subclass) and the keyword arguments
    # for it.
    "custom_model": None,
    "custom_model_config": {},
    # ModelCatalog: a registered action-distribution name (or an ActionDistribution subclass).
    "custom_action_dist": None,
    # Kept so that configs written for RLlib 2021 get a helpful answer; see merge_model_config.
    "custom_preprocessor": None,
}


def merge_model_config(model_config: Mapping | None) -> dict:
    """Returns MODEL_DEFAULTS updated with ``model_config`` (a new dict; the inputs are not
    changed).

    Raises ValueError for an unknown key, naming the closest valid one, and for
    ``custom_preprocessor``, which (as in RLlib since 2021) is replaced by environment wrappers.

    Introduced in notebooks/06_models.ipynb.
    """
    model_config = {} if model_config is None else model_config
    if not isinstance(model_config, Mapping):
        raise TypeError(
            f"The model config must be a dict such as {{'fcnet_hiddens': [64, 64]}}, "
            f"got {type(model_config).__name__}."
        )
    for key in model_config:
        if key not in MODEL_DEFAULTS:
            hint = did_you_mean(key, MODEL_DEFAULTS) or f" Valid keys: {sorted(MODEL_DEFAULTS)}."
            raise ValueError(f"Unknown model config key {key!r}.{hint}")
    if model_config.get("custom_preprocessor") is not None:
        raise ValueError(
            "Custom preprocessors are deprecated (as in RLlib): they clash with the built-in "
            "flattening of Tuple/Dict observations. Preprocess in an environment wrapper instead, "
            "e.g. a gymnasium.ObservationWrapper like the OneHot wrapper of "
            "notebooks/03_environments.ipynb, and remove "
            "'custom_preprocessor' from the model config."
        )
    merged = copy.deepcopy(MODEL_DEFAULTS)
    merged.update(copy.deepcopy(dict(model_config)))
    return merged
