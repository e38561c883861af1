"""Models: preprocessors, the networks a policy uses, and the action distributions they feed.

    ModelCatalog.get_preprocessor(obs_space)             obs -> flat float32 vector (B, obs_size)
    ModelCatalog.get_action_dist(action_space, config)   -> (dist_class, num_outputs)
    ModelCatalog.get_model_v2(obs_space, action_space, num_outputs, config)
        -> model; model(input_dict, state, seq_lens) -> (dist inputs (B, num_outputs), state)
    dist_class(dist_inputs, model).sample() / .logp(actions) / .entropy() / .kl(other)

Introduced in notebooks/06_models.ipynb.
"""

from course_lib.models.action_dist import (
    ActionDistribution,
    TorchCategorical,
    TorchDeterministic,
    TorchDiagGaussian,
    TorchDistributionWrapper,
    TorchMultiCategorical,
    TorchSquashedGaussian,
)
from course_lib.models.catalog import ModelCatalog
from course_lib.models.fcnet import FullyConnectedNetwork
from course_lib.models.lstm import LSTMWrapper
from course_lib.models.model_config import MODEL_DEFAULTS, merge_model_config
from course_lib.models.preprocessors import (
    DictFlatteningPreprocessor,
    FlattenPreprocessor,
    MultiDiscretePreprocessor,
    NoPreprocessor,
    OneHotPreprocessor,
    Preprocessor,
    TupleFlatteningPreprocessor,
    get_preprocessor,
)
from course_lib.models.rnn_sequencing import (
    add_time_dimension,
    chop_into_sequences,
    pad_batch_to_sequences,
    sequence_mask,
)
from course_lib.models.torch_model import TorchModelV2

__all__ = [
    "MODEL_DEFAULTS",
    "ActionDistribution",
    "DictFlatteningPreprocessor",
    "FlattenPreprocessor",
    "FullyConnectedNetwork",
    "LSTMWrapper",
    "ModelCatalog",
    "MultiDiscretePreprocessor",
    "NoPreprocessor",
    "OneHotPreprocessor",
    "Preprocessor",
    "TorchCategorical",
    "TorchDeterministic",
    "TorchDiagGaussian",
    "TorchDistributionWrapper",
    "TorchModelV2",
    "TorchMultiCategorical",
    "TorchSquashedGaussian",
    "TupleFlatteningPreprocessor",
    "add_time_dimension",
    "chop_into_sequences",
    "get_preprocessor",
    "merge_model_config",
    "pad_batch_to_sequences",
    "sequence_mask",
]
