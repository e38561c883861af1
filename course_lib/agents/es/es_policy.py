"""ESPolicy: a deterministic MLP over one flat parameter vector, and the Adam that moves it.

Evolution strategies never differentiate the network: they only need to *run* it with
parameters ``theta + sigma * eps`` and compare the returns. So the policy is plain numpy, the
whole network is one float32 vector ``theta`` (N,), and each layer's weights are views into it:
perturbing the network is one vector addition, and a slice of the noise table is a perturbation.
Numpy also keeps each env step cheap (a few microseconds for a small MLP, where a torch forward
pass for a single observation costs tens), which matters when the tasks play thousands of steps.

Actions are deterministic: the argmax of the outputs for a Discrete action space, the outputs
themselves for a Box one (the rollout code maps them onto the env's bounds, as for every
policy). ES explores in parameter space, not in action space, so ``explore`` changes nothing.
Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from course_lib.evaluation.env_actions import is_float_box
from course_lib.models.model_config import merge_model_config
from course_lib.models.preprocessors import get_preprocessor
from course_lib.policy.policy import Policy


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


_ACTIVATIONS = {"tanh": np.tanh, "relu": relu, "linear": None, None: None}
# Scale of each initial weight column: hidden layers keep their input's scale, the output layer
# starts near zero (as the course's FullyConnectedNetwork does with its logits layer).
HIDDEN_COLUMN_NORM = 1.0
OUTPUT_COLUMN_NORM = 0.01


class Adam:
    """Adam that *ascends*: ``update(theta, gradient)`` moves ``theta`` along ``gradient``.

    ``theta`` and ``gradient`` are (N,). The moments ``m`` and ``v`` and the step count ``t``
    are the optimizer's state (saved in checkpoints with the policy).
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(
        self,
        num_params: int,
        stepsize: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ):
        self.stepsize, self.beta1, self.beta2, self.epsilon = stepsize, beta1, beta2, epsilon
        self.m = np.zeros(num_params, np.float32)
        self.v = np.zeros(num_params, np.float32)
        self.t = 0

    def update(self, theta: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """The new ``theta`` (N,) after one Adam step up ``gradient`` (N,)."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient**2
        # Bias correction folded into the step size: the moments start at zero.
        step = (
            (self.stepsize * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t))
            * self.m
            / (np.sqrt(self.v) + self.epsilon)
        )
        return (theta + step).astype(np.float32)

    def get_state(self) -> dict:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def set_state(self, state: dict) -> None:
        self.m = np.array(state["m"], np.float32)
        self.v = np.array(state["v"], np.float32)
        self.t = int(state["t"])


class ESPolicy(Policy):
    """An MLP ``(B, obs_size) -> (B, num_outputs)`` whose parameters are one vector ``theta``.

    Reads ``model.fcnet_hiddens`` and ``model.fcnet_activation`` (the course's model config),
    ``stepsize`` for its Adam. Layer ``k`` is ``x @ W_k + b_k`` with ``W_k`` (in, out) and ``b_k``
    (out,), all views into ``theta`` (N,). ``get_weights()`` is ``{"theta": theta}``.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, observation_space, action_space, config: dict | None = None):
        super().__init__(observation_space, action_space, config)
        model_config = merge_model_config(self.config.get("model"))
        unsupported = [
            key
            for key in ("use_lstm", "custom_model", "custom_action_dist", "free_log_std")
            if model_config[key]
        ]
        if unsupported:
            raise ValueError(
                f"ES's policy is a plain numpy MLP (fcnet_hiddens, fcnet_activation); it does not "
                f"support the model settings {unsupported}. Remove them from config['model']."
            )
        activation = model_config["fcnet_activation"]
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"Unknown fcnet_activation {activation!r}. Expected one of 'tanh', 'relu', "
                "'linear' (or None)."
            )
        self.activation = _ACTIVATIONS[activation]
        self.preprocessor = get_preprocessor(observation_space)
        if isinstance(action_space, spaces.Discrete):
            num_outputs = int(action_space.n)
        elif is_float_box(action_space):
            num_outputs = int(np.prod(action_space.shape))
        else:
            raise TypeError(
                f"ES's policy acts in a Discrete or a float Box action space, got {action_space}."
            )
        self.layer_sizes = [
            self.preprocessor.size,
            *map(int, model_config["fcnet_hiddens"]),
            num_outputs,
        ]
        pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=False))
        self.num_params = sum(n_in * n_out + n_out for n_in, n_out in pairs)
        self.theta = np.zeros(self.num_params, np.float32)
        self.layers = []  # [(W (in, out), b (out,))], views into self.theta
        start = 0
        for n_in, n_out in pairs:
            weights = self.theta[start : start + n_in * n_out].reshape(n_in, n_out)
            start += n_in * n_out
            self.layers.append((weights, self.theta[start : start + n_out]))
            start += n_out
        for index, (weights, _bias) in enumerate(self.layers):
            norm = OUTPUT_COLUMN_NORM if index == len(self.layers) - 1 else HIDDEN_COLUMN_NORM
            # Drawn from the process's stream, which a seeded trainer has seeded (seeding.py).
            columns = np.random.standard_normal(weights.shape)
            weights[:] = columns * norm / np.linalg.norm(columns, axis=0, keepdims=True)
        self.optimizer = Adam(self.num_params, self.config.get("stepsize", 0.01))

    # --- the network --------------------------------------------------------------------------

    def forward(self, features: np.ndarray) -> np.ndarray:
        """Outputs (B, num_outputs) for preprocessed observations (B, obs_size)."""
        x = features
        for weights, bias in self.layers[:-1]:
            x = x @ weights + bias
            if self.activation is not None:
                x = self.activation(x)
        weights, bias = self.layers[-1]
        return x @ weights + bias

    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore=None,
        timestep=None,
        **kwargs,
    ):
        """``(actions (B, *action_shape), [], {})``: the same action for the same observation."""
        outputs = self.forward(self.preprocessor.transform_batch(obs_batch))
        if isinstance(self.action_space, spaces.Discrete):
            actions = outputs.argmax(axis=1)
        else:
            actions = outputs.reshape(len(outputs), *self.action_space.shape)
        return actions, [], {}

    def learn_on_batch(self, samples) -> dict:
        raise NotImplementedError(
            "ESPolicy does not learn from sample batches: the ES trainer moves theta with "
            "es_step() from the returns of perturbed episodes (course_lib/agents/es/es.py)."
        )

    # --- theta --------------------------------------------------------------------------------

    def get_flat_weights(self) -> np.ndarray:
        """A copy of ``theta`` (N,)."""
        return self.theta.copy()

    def set_flat_weights(self, theta) -> None:
        """Load ``theta`` (N,) in place, so that the layer views see it."""
        theta = np.asarray(theta, np.float32)
        if theta.shape != self.theta.shape:
            raise ValueError(
                f"This ESPolicy has {self.num_params} parameters (layers {self.layer_sizes}); "
                f"got a vector of shape {theta.shape}. Build the policy with the model config "
                "the weights were trained with."
            )
        self.theta[:] = theta

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"theta": self.get_flat_weights()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.set_flat_weights(weights["theta"])

    def get_state(self) -> dict:
        return {**super().get_state(), "optimizer": self.optimizer.get_state()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.optimizer.set_state(state["optimizer"])
