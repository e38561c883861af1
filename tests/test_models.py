"""Preprocessors, model config, FullyConnectedNetwork, the catalog's models, LSTMWrapper and
sequence padding."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from gymnasium import spaces

from course_lib.models import (
    MODEL_DEFAULTS,
    DictFlatteningPreprocessor,
    FlattenPreprocessor,
    FullyConnectedNetwork,
    LSTMWrapper,
    ModelCatalog,
    MultiDiscretePreprocessor,
    NoPreprocessor,
    OneHotPreprocessor,
    TorchModelV2,
    TupleFlatteningPreprocessor,
    add_time_dimension,
    chop_into_sequences,
    get_preprocessor,
    merge_model_config,
    pad_batch_to_sequences,
    sequence_mask,
)
from course_lib.sample_batch import SampleBatch

BOX4 = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)


@pytest.fixture(autouse=True)
def empty_registries(monkeypatch):
    monkeypatch.setattr(ModelCatalog, "_custom_models", {})
    monkeypatch.setattr(ModelCatalog, "_custom_action_dists", {})
    torch.manual_seed(0)


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- preprocessors -------------------------------------------------------------------------------


def test_discrete_observations_are_one_hot_encoded():
    preprocessor = get_preprocessor(spaces.Discrete(3))
    assert isinstance(preprocessor, OneHotPreprocessor)
    assert preprocessor.transform(1).tolist() == [0.0, 1.0, 0.0]
    assert preprocessor.transform(1).dtype == np.float32
    assert preprocessor.transform_batch([2, 0]).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_one_hot_respects_the_start_of_the_discrete_space():
    assert get_preprocessor(spaces.Discrete(3, start=-1)).transform(-1).tolist() == [1.0, 0.0, 0.0]


def test_multi_discrete_is_multi_one_hot_encoded():
    preprocessor = get_preprocessor(spaces.MultiDiscrete([3, 4]))
    assert isinstance(preprocessor, MultiDiscretePreprocessor)
    assert preprocessor.shape == (7,)
    assert preprocessor.transform([1, 0]).tolist() == [0, 1, 0, 1, 0, 0, 0]
    assert preprocessor.transform_batch([[1, 0], [2, 3]]).tolist() == [
        [0, 1, 0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 1],
    ]


def test_one_dimensional_box_passes_through_as_float32():
    preprocessor = get_preprocessor(BOX4)
    assert isinstance(preprocessor, NoPreprocessor)
    out = preprocessor.transform(np.array([0.5, -0.5, 1.0, 0.0], dtype=np.float64))
    assert out.dtype == np.float32 and out.tolist() == [0.5, -0.5, 1.0, 0.0]


def test_image_shaped_box_is_flattened():
    space = spaces.Box(0, 255, (2, 3, 3), dtype=np.uint8)
    preprocessor = get_preprocessor(space)
    assert type(preprocessor) is FlattenPreprocessor and preprocessor.size == 18
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    assert preprocessor.transform(image).tolist() == list(range(18))
    assert preprocessor.transform_batch([image, image]).shape == (2, 18)


def test_dict_values_are_concatenated_in_sorted_key_order():
    space = spaces.Dict(
        OrderedDict([("velocity", spaces.Box(-1, 1, (2,))), ("color", spaces.Discrete(3))])
    )
    preprocessor = get_preprocessor(space)
    assert isinstance(preprocessor, DictFlatteningPreprocessor)
    assert preprocessor.keys == ["color", "velocity"]
    obs = {"velocity": np.array([0.25, -0.75], dtype=np.float32), "color": 2}
    assert preprocessor.transform(obs).tolist() == [0, 0, 1, 0.25, -0.75]


def test_tuple_and_nested_spaces_are_flattened_in_order():
    space = spaces.Tuple(
        [spaces.Discrete(2), spaces.Dict({"b": spaces.Discrete(2), "a": spaces.Box(0, 1, (1,))})]
    )
    preprocessor = get_preprocessor(space)
    assert isinstance(preprocessor, TupleFlatteningPreprocessor)
    assert preprocessor.shape == (5,)
    obs = (1, {"a": np.array([0.5], dtype=np.float32), "b": 0})
    assert preprocessor.transform(obs).tolist() == [0, 1, 0.5, 1, 0]
    batch = preprocessor.transform_batch([obs, obs])
    assert batch.shape == (2, 5) and batch.dtype == np.float32


def test_observation_space_is_the_flat_box_of_the_outputs():
    space = spaces.Tuple([spaces.Discrete(2), spaces.Box(-3.0, 5.0, (2,))])
    preprocessor = get_preprocessor(space)
    flat = preprocessor.observation_space
    assert flat.shape == (4,) and flat.dtype == np.float32
    assert flat.low.tolist() == [0, 0, -3, -3] and flat.high.tolist() == [1, 1, 5, 5]
    assert flat.contains(preprocessor.transform(space.sample()))


def test_transform_batch_equals_stacked_transforms():
    space = spaces.Dict({"a": spaces.MultiDiscrete([2, 3]), "b": spaces.Box(-1, 1, (2, 2))})
    space.seed(0)
    observations = [space.sample() for _ in range(5)]
    preprocessor = get_preprocessor(space)
    expected = np.stack([preprocessor.transform(obs) for obs in observations])
    np.testing.assert_array_equal(preprocessor.transform_batch(observations), expected)


def test_unsupported_spaces_and_invalid_observations_are_clear_errors():
    with pytest.raises(TypeError, match="cannot preprocess observations of Text"):
        get_preprocessor(spaces.Text(5))
    with pytest.raises(ValueError, match="3 is not a valid value of Discrete\\(3\\)"):
        get_preprocessor(spaces.Discrete(3)).transform(3)
    with pytest.raises(ValueError, match="Expected observations of shape \\(4,\\)"):
        get_preprocessor(BOX4).transform(np.zeros(3))
    with pytest.raises(ValueError, match="missing keys \\['b'\\]"):
        get_preprocessor(spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Discrete(2)})).transform(
            {"a": 0}
        )


# --- model config ---------------------------------------------------------------------------------


def test_model_defaults_hold_the_documented_values():
    assert MODEL_DEFAULTS == {
        "fcnet_hiddens": [256, 256],
        "fcnet_activation": "tanh",
        "vf_share_layers": False,
        "free_log_std": False,
        "use_lstm": False,
        "lstm_cell_size": 256,
        "max_seq_len": 20,
        "lstm_use_prev_action": False,
        "lstm_use_prev_reward": False,
        "custom_model": None,
        "custom_model_config": {},
        "custom_action_dist": None,
        "custom_preprocessor": None,
    }


def test_merge_model_config_fills_defaults_without_changing_them():
    merged = merge_model_config({"fcnet_hiddens": [8]})
    merged["custom_model_config"]["x"] = 1
    assert merged["fcnet_hiddens"] == [8] and merged["fcnet_activation"] == "tanh"
    assert MODEL_DEFAULTS["custom_model_config"] == {}


def test_unknown_model_config_key_names_the_closest_valid_key():
    with pytest.raises(
        ValueError,
        match=r"^Unknown model config key 'fcnet_hidden'\. Did you mean 'fcnet_hiddens'\?$",
    ):
        ModelCatalog.get_model_v2(BOX4, spaces.Discrete(2), 2, {"fcnet_hidden": [512, 512, 512]})


def test_custom_preprocessor_points_to_environment_wrappers():
    with pytest.raises(ValueError, match="ObservationWrapper"):
        merge_model_config({"custom_preprocessor": "my_prep"})


# --- FullyConnectedNetwork ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obs_space, action_space",
    [
        (BOX4, spaces.Discrete(2)),
        (spaces.Discrete(5), spaces.Discrete(3)),
        (spaces.Box(-1, 1, (3, 2)), spaces.Box(-1, 1, (2,))),
        (spaces.Dict({"a": spaces.Discrete(2), "b": BOX4}), spaces.MultiDiscrete([2, 3])),
    ],
)
def test_default_model_output_and_value_shapes(obs_space, action_space):
    _, num_outputs = ModelCatalog.get_action_dist(action_space, {})
    model = ModelCatalog.get_model_v2(
        obs_space, action_space, num_outputs, {"fcnet_hiddens": [16, 16]}
    )
    assert isinstance(model, FullyConnectedNetwork) and not model.is_recurrent()
    preprocessor = ModelCatalog.get_preprocessor(obs_space)
    obs = preprocessor.transform_batch([obs_space.sample() for _ in range(6)])
    outputs, state = model({"obs": obs}, [], None)
    assert outputs.shape == (6, num_outputs) and state == []
    assert model.value_function().shape == (6,)
    assert model.get_initial_state() == []


def test_separate_value_branch_adds_exactly_one_hidden_mlp_of_parameters():
    config = {"fcnet_hiddens": [32, 16]}
    shared = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), 2, {**config, "vf_share_layers": True}, "shared"
    )
    separate = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), 2, {**config, "vf_share_layers": False}, "separate"
    )
    hidden_mlp = (4 * 32 + 32) + (32 * 16 + 16)
    assert param_count(shared) == hidden_mlp + (16 * 2 + 2) + (16 + 1)
    assert param_count(separate) - param_count(shared) == hidden_mlp


def test_shared_value_head_reads_the_policy_features():
    model = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), 2, {"fcnet_hiddens": [8], "vf_share_layers": True}, "m"
    )
    obs = torch.randn(3, 4)
    model({"obs": obs})
    torch.testing.assert_close(
        model.value_function(), model.value_layer(model.hidden_layers(obs)).squeeze(-1)
    )


def test_free_log_std_outputs_a_learned_state_independent_log_std():
    model = FullyConnectedNetwork(
        BOX4, spaces.Box(-1, 1, (2,)), 4, {"free_log_std": True, "fcnet_hiddens": [8]}, "m"
    )
    with torch.no_grad():
        model.logits_layer.log_std.copy_(torch.tensor([0.5, -1.0]))
    outputs, _ = model({"obs": torch.randn(3, 4)})
    assert outputs.shape == (3, 4)
    assert outputs[:, 2:].tolist() == [[0.5, -1.0]] * 3
    assert outputs[:, 2:].requires_grad
    with pytest.raises(ValueError, match="even num_outputs"):
        FullyConnectedNetwork(BOX4, spaces.Box(-1, 1, (2,)), 3, {"free_log_std": True}, "odd")


def test_initial_policy_is_near_uniform():
    model = FullyConnectedNetwork(BOX4, spaces.Discrete(4), 4, {}, "m")
    logits, _ = model({"obs": torch.rand(100, 4) * 2 - 1})
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.all(entropy > np.log(4) - 1e-3)


def test_activation_choices_and_unknown_activation():
    relu = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), 2, {"fcnet_hiddens": [8], "fcnet_activation": "relu"}, "m"
    )
    linear = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), 2, {"fcnet_hiddens": [8], "fcnet_activation": None}, "m"
    )
    assert isinstance(relu.hidden_layers[1], torch.nn.ReLU)
    assert len(linear.hidden_layers) == 1
    with pytest.raises(
        ValueError, match="Unknown fcnet_activation 'sigmoid'. Expected one of 'tanh', 'relu'"
    ):
        FullyConnectedNetwork(BOX4, spaces.Discrete(2), 2, {"fcnet_activation": "sigmoid"}, "m")


def test_num_outputs_none_gives_features_only():
    model = FullyConnectedNetwork(
        BOX4, spaces.Discrete(2), None, {"fcnet_hiddens": [32, 12]}, "base"
    )
    features, _ = model({"obs": torch.zeros(5, 4)})
    assert model.num_outputs == 12 and features.shape == (5, 12)
    with pytest.raises(RuntimeError, match="no value head"):
        model.value_function()


def test_value_function_before_forward_and_wrong_obs_shape_are_clear_errors():
    model = FullyConnectedNetwork(spaces.Discrete(3), spaces.Discrete(2), 2, {}, "m")
    with pytest.raises(RuntimeError, match="before value_function"):
        model.value_function()
    with pytest.raises(
        ValueError, match=r"expects input_dict\['obs'\] of shape \(B, 3\).*Got shape \(2,\)"
    ):
        model({"obs": np.array([0, 2])})


def test_from_batch_runs_the_model_on_the_batch_observations():
    model = FullyConnectedNetwork(BOX4, spaces.Discrete(2), 2, {"fcnet_hiddens": [8]}, "m")
    batch = SampleBatch(
        obs=np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32), actions=np.zeros(5)
    )
    logits, state = model.from_batch(batch)
    expected, _ = model({"obs": torch.as_tensor(batch["obs"])})
    torch.testing.assert_close(logits, expected)
    assert state == []


# --- custom models through the catalog ------------------------------------------------------------


class ScaledLinearModel(TorchModelV2):
    """A custom model with a constructor option from custom_model_config."""

    def __init__(self, obs_space, action_space, num_outputs, model_config, name, scale=1.0):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        self.scale = scale
        self.linear = torch.nn.Linear(self.obs_size, num_outputs)
        self.value = torch.nn.Linear(self.obs_size, 1)

    def forward(self, input_dict, state, seq_lens):
        self._obs = input_dict["obs"]
        return self.scale * self.linear(self._obs), state

    def value_function(self):
        return self.value(self._obs).squeeze(-1)


def test_custom_model_registered_by_name_gets_its_custom_model_config():
    ModelCatalog.register_custom_model("scaled", ScaledLinearModel)
    config = {"custom_model": "scaled", "custom_model_config": {"scale": 3.0}}
    model = ModelCatalog.get_model_v2(BOX4, spaces.Discrete(2), 2, config, name="policy_model")
    assert (
        isinstance(model, ScaledLinearModel) and model.scale == 3.0 and model.name == "policy_model"
    )
    assert model.model_config["custom_model_config"] == {"scale": 3.0}
    outputs, _ = model({"obs": torch.ones(2, 4)})
    torch.testing.assert_close(outputs, 3.0 * model.linear(torch.ones(2, 4)))


def test_custom_model_can_be_given_as_a_class():
    model = ModelCatalog.get_model_v2(
        BOX4, spaces.Discrete(2), 2, {"custom_model": ScaledLinearModel}
    )
    assert isinstance(model, ScaledLinearModel) and model.scale == 1.0


def test_custom_model_config_entry_the_model_does_not_take_is_a_type_error():
    ModelCatalog.register_custom_model("scaled", ScaledLinearModel)
    with pytest.raises(TypeError, match=r"no parameter named \['scael'\]"):
        ModelCatalog.get_model_v2(
            BOX4,
            spaces.Discrete(2),
            2,
            {"custom_model": "scaled", "custom_model_config": {"scael": 2}},
        )


def test_unknown_custom_model_lists_the_registered_ones():
    ModelCatalog.register_custom_model("scaled", ScaledLinearModel)
    with pytest.raises(
        ValueError, match=r"No custom model is registered as 'my_model'\. Registered: \['scaled'\]"
    ):
        ModelCatalog.get_model_v2(BOX4, spaces.Discrete(2), 2, {"custom_model": "my_model"})


def test_registering_a_class_that_is_not_a_torch_model_is_a_type_error():
    with pytest.raises(TypeError, match="subclass of course_lib.models.TorchModelV2"):
        ModelCatalog.register_custom_model("mlp", torch.nn.Linear)


def test_resolve_custom_names_lets_a_config_work_where_nothing_is_registered(monkeypatch):
    ModelCatalog.register_custom_model("scaled", ScaledLinearModel)
    resolved = ModelCatalog.resolve_custom_names({"custom_model": "scaled"})
    monkeypatch.setattr(ModelCatalog, "_custom_models", {})  # like a fresh Ray worker process
    assert isinstance(
        ModelCatalog.get_model_v2(BOX4, spaces.Discrete(2), 2, resolved), ScaledLinearModel
    )


def test_catalog_refuses_tf_models_with_a_pytorch_only_message():
    with pytest.raises(ValueError, match="course_lib is PyTorch-only"):
        ModelCatalog.get_model_v2(BOX4, spaces.Discrete(2), 2, {}, framework="tf")


# --- LSTM -----------------------------------------------------------------------------------------

LSTM_CONFIG = {"use_lstm": True, "lstm_cell_size": 8, "fcnet_hiddens": [16], "max_seq_len": 3}


def lstm_model(**overrides) -> LSTMWrapper:
    return ModelCatalog.get_model_v2(BOX4, spaces.Discrete(3), 3, {**LSTM_CONFIG, **overrides})


def initial_state(model, num_seqs):
    return [torch.as_tensor(np.stack([s] * num_seqs)) for s in model.get_initial_state()]


def test_use_lstm_wraps_the_default_model_built_without_outputs():
    model = lstm_model()
    assert isinstance(model, LSTMWrapper) and model.is_recurrent()
    assert (
        isinstance(model.wrapped_model, FullyConnectedNetwork)
        and model.wrapped_model.logits_layer is None
    )
    assert [s.shape for s in model.get_initial_state()] == [(8,), (8,)]
    assert all(s.dtype == np.float32 and not s.any() for s in model.get_initial_state())


def test_lstm_shapes_through_a_batch_of_padded_sequences():
    model = lstm_model()
    outputs, state = model(
        {"obs": torch.randn(9, 4)}, initial_state(model, 3), torch.tensor([3, 1, 2])
    )
    assert outputs.shape == (9, 3)
    assert [s.shape for s in state] == [(3, 8), (3, 8)]
    assert model.value_function().shape == (9,)


def test_lstm_state_must_have_one_row_per_sequence():
    model = lstm_model()
    with pytest.raises(ValueError, match=r"h and c of shape \(num_seqs, 8\) = \(3, 8\)"):
        model({"obs": torch.randn(9, 4)}, initial_state(model, 1), torch.tensor([3, 1, 2]))


def test_padding_rows_do_not_affect_valid_outputs_or_the_final_state():
    model = lstm_model()
    seq_lens = torch.tensor([3, 1, 2])
    valid = sequence_mask(seq_lens, 3).reshape(-1)
    obs = torch.randn(9, 4)
    noisy = obs.clone()
    noisy[~valid] = torch.randn(int((~valid).sum()), 4) * 100
    out1, state1 = model({"obs": obs}, initial_state(model, 3), seq_lens)
    out2, state2 = model({"obs": noisy}, initial_state(model, 3), seq_lens)
    torch.testing.assert_close(out1[valid], out2[valid])
    for s1, s2 in zip(state1, state2, strict=True):
        torch.testing.assert_close(s1, s2)


def test_padded_batch_equals_running_each_sequence_alone():
    model = lstm_model()
    obs = torch.randn(9, 4)
    batched, _ = model({"obs": obs}, initial_state(model, 3), torch.tensor([3, 1, 2]))
    for k, length in enumerate([3, 1, 2]):
        alone, _ = model(
            {"obs": obs[3 * k : 3 * k + length]}, initial_state(model, 1), torch.tensor([length])
        )
        torch.testing.assert_close(batched[3 * k : 3 * k + length], alone)


def test_carrying_state_across_two_calls_equals_one_call_over_the_whole_sequence():
    model = lstm_model()
    obs = torch.randn(5, 4)
    whole, whole_state = model({"obs": obs}, initial_state(model, 1), torch.tensor([5]))
    first, state = model({"obs": obs[:3]}, initial_state(model, 1), torch.tensor([3]))
    second, end_state = model({"obs": obs[3:]}, state, torch.tensor([2]))
    torch.testing.assert_close(torch.cat([first, second]), whole)
    for s1, s2 in zip(end_state, whole_state, strict=True):
        torch.testing.assert_close(s1, s2)


def test_single_step_inference_without_seq_lens_treats_each_row_as_a_sequence():
    model = lstm_model()
    obs = torch.randn(4, 4)
    out_none, _ = model({"obs": obs}, initial_state(model, 4), None)
    out_ones, _ = model({"obs": obs}, initial_state(model, 4), torch.ones(4, dtype=torch.int64))
    torch.testing.assert_close(out_none, out_ones)


def test_from_batch_on_padded_episodes_matches_step_by_step_inference():
    """The training path (pad + from_batch) sees exactly what compute_actions saw while sampling."""
    model = lstm_model()
    rng = np.random.default_rng(0)
    eps_id = np.array([7, 7, 7, 7, 8, 8])
    obs = rng.normal(size=(6, 4)).astype(np.float32)
    logits, states_in = [], [[], []]
    state = initial_state(model, 1)
    for t in range(6):
        if t > 0 and eps_id[t] != eps_id[t - 1]:
            state = initial_state(model, 1)
        for column, s in zip(states_in, state, strict=True):
            column.append(s[0].detach().numpy())
        out, state = model({"obs": obs[t : t + 1]}, state, torch.tensor([1]))
        logits.append(out[0])
    batch = SampleBatch(
        obs=obs,
        eps_id=eps_id,
        t=np.array([0, 1, 2, 3, 0, 1]),
        state_in_0=np.stack(states_in[0]),
        state_in_1=np.stack(states_in[1]),
    )
    padded = pad_batch_to_sequences(batch, max_seq_len=model.model_config["max_seq_len"])
    assert padded["seq_lens"].tolist() == [3, 1, 2]
    assert padded["state_in_0"].shape == (3, 8) and padded["obs"].shape == (9, 4)
    train_logits, _ = model.from_batch(padded)
    mask = sequence_mask(padded["seq_lens"], 3).reshape(-1)
    torch.testing.assert_close(train_logits[mask], torch.stack(logits))


def test_from_batch_of_a_recurrent_model_needs_state_and_seq_lens():
    with pytest.raises(KeyError, match="pad_batch_to_sequences"):
        lstm_model().from_batch({"obs": np.zeros((3, 4), dtype=np.float32)})


def test_prev_action_and_reward_are_lstm_inputs_when_enabled():
    model = lstm_model(lstm_use_prev_action=True, lstm_use_prev_reward=True)
    assert model.lstm.input_size == 16 + 3 + 1
    obs = torch.randn(2, 4)
    with pytest.raises(KeyError, match="prev_actions"):
        model({"obs": obs}, initial_state(model, 2), None)
    base = {"obs": obs, "prev_rewards": torch.zeros(2)}
    out_a, _ = model({**base, "prev_actions": torch.tensor([0, 0])}, initial_state(model, 2), None)
    out_b, _ = model({**base, "prev_actions": torch.tensor([0, 2])}, initial_state(model, 2), None)
    torch.testing.assert_close(out_a[0], out_b[0])
    assert not torch.allclose(out_a[1], out_b[1])


class DoubleObsFeatures(TorchModelV2):
    """The 2021 RLlib tutorial's custom model to be wrapped by an LSTM: features = 2 * obs_flat, no
    state."""

    def __init__(self, obs_space, action_space, num_outputs, model_config, name):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        self.num_outputs = self.obs_size

    def forward(self, input_dict, state, seq_lens):
        return input_dict["obs_flat"] * 2.0, []


def test_use_lstm_wraps_a_registered_custom_model():
    ModelCatalog.register_custom_model("my_torch_model", DoubleObsFeatures)
    config = {"use_lstm": True, "lstm_cell_size": 64, "custom_model": "my_torch_model"}
    model = ModelCatalog.get_model_v2(spaces.Discrete(5), spaces.Discrete(2), 2, config)
    assert isinstance(model.wrapped_model, DoubleObsFeatures) and model.lstm.input_size == 5
    outputs, state = model({"obs": np.eye(5, dtype=np.float32)}, initial_state(model, 5), None)
    assert outputs.shape == (5, 2) and state[0].shape == (5, 64)


# --- sequence helpers -----------------------------------------------------------------------------


def test_chop_into_sequences_respects_episode_boundaries_and_max_seq_len():
    eps_id = np.array([1, 1, 1, 1, 2, 3, 3])
    obs = np.arange(7, dtype=np.float32)[:, None] + 1
    state = np.arange(7, dtype=np.float32)[:, None] * 10
    (padded_obs,), (initial,), seq_lens = chop_into_sequences(eps_id, [obs], [state], max_seq_len=3)
    assert seq_lens.tolist() == [3, 1, 1, 2]
    assert padded_obs[:, 0].tolist() == [1, 2, 3, 4, 0, 0, 5, 0, 0, 6, 7, 0]
    assert initial[:, 0].tolist() == [0, 30, 40, 50]


def test_chop_into_sequences_keeps_dtypes_and_trailing_shapes():
    (actions, images), _, seq_lens = chop_into_sequences(
        np.zeros(4), [np.array([1, 2, 3, 4]), np.ones((4, 2, 2), dtype=np.uint8)], [], max_seq_len=5
    )
    assert seq_lens.tolist() == [4]
    assert actions.tolist() == [1, 2, 3, 4, 0] and actions.dtype == np.int64
    assert images.shape == (5, 2, 2) and images.dtype == np.uint8


def test_pad_batch_breaks_sequences_where_time_jumps():
    batch = {"eps_id": np.zeros(5), "t": np.array([0, 1, 5, 6, 7]), "obs": np.ones((5, 1))}
    assert pad_batch_to_sequences(batch, max_seq_len=4)["seq_lens"].tolist() == [2, 3]


def test_add_time_dimension_folds_rows_into_sequences():
    folded = add_time_dimension(torch.arange(12).reshape(6, 2), torch.tensor([2, 1, 2]))
    assert folded.shape == (3, 2, 2) and folded[1, 0].tolist() == [4, 5]
    with pytest.raises(ValueError, match="longer than the padded length T=2"):
        add_time_dimension(torch.zeros(6, 2), torch.tensor([2, 1, 3]))
    with pytest.raises(ValueError, match="cannot hold 4 sequences"):
        add_time_dimension(torch.zeros(6, 2), torch.tensor([1, 1, 1, 1]))


def test_sequence_mask_marks_real_steps():
    assert sequence_mask(torch.tensor([3, 1, 2]), 3).tolist() == [
        [True, True, True],
        [True, False, False],
        [True, True, False],
    ]
    assert sequence_mask(np.array([1, 2])).shape == (2, 2)
