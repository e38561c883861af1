"""build_policy and build_trainer make real classes: named methods, readable tracebacks, show(),
pickling as Ray does it, and with_updates."""

from __future__ import annotations

import subprocess
import sys
import traceback

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray import cloudpickle

from course_lib import show
from course_lib.agents import build_trainer
from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.ppo import PPOTorchPolicy, PPOTrainer
from course_lib.agents.ppo.ppo import execution_plan as ppo_execution_plan
from course_lib.agents.ppo.ppo_torch_policy import KLCoeffMixin, ppo_surrogate_loss
from course_lib.policy import PGTorchPolicy, TorchPolicy, build_policy, policy_gradient_loss
from course_lib.policy.pg import pg_postprocess
from course_lib.sample_batch import SampleBatch

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
SMALL = {"model": {"fcnet_hiddens": [8]}, "seed": 0}


def episode(n=6):
    rng = np.random.default_rng(0)
    terminateds = np.zeros(n, bool)
    terminateds[-1] = True
    return SampleBatch(
        obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        new_obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        actions=rng.integers(0, 2, n),
        rewards=np.ones(n, np.float32),
        terminateds=terminateds,
        truncateds=np.zeros(n, bool),
        eps_id=np.zeros(n, np.int64),
    )


def exploding_loss(policy, model, dist_class, train_batch):
    raise ValueError("the learner's bug")


def frame_names(excinfo) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(excinfo.tb)]


# --- named methods and readable tracebacks ------------------------------------------------------


def test_a_failing_loss_fn_shows_the_loss_method_in_the_traceback_not_a_lambda():
    Broken = build_policy("Broken", loss_fn=exploding_loss, postprocess_fn=pg_postprocess)
    policy = Broken(OBS_SPACE, ACT_SPACE, SMALL)
    batch = policy.postprocess_trajectory(episode())
    with pytest.raises(ValueError, match="the learner's bug") as excinfo:
        policy.learn_on_batch(batch)
    names = frame_names(excinfo)
    assert "<lambda>" not in names
    assert names[-2:] == ["loss", "exploding_loss"]


def failing(name):
    def hook(*args, **kwargs):
        raise RuntimeError(name)

    return hook


def use(policy, hook: str) -> None:
    """Make ``policy`` call ``hook``."""
    if hook == "postprocess_fn":
        policy.postprocess_trajectory(episode())
    elif hook == "stats_fn":
        policy.stats({})
    else:
        policy.compute_actions(np.zeros((2, 4), np.float32))


@pytest.mark.parametrize(
    "hook, method",
    [
        ("postprocess_fn", "postprocess_trajectory"),
        ("stats_fn", "stats"),
        ("extra_action_out_fn", "extra_action_out"),
        ("action_distribution_fn", "_action_distribution_fn"),
        ("action_sampler_fn", "_action_sampler_fn"),
    ],
)
def test_a_failing_hook_is_called_from_the_method_it_becomes(hook, method):
    policy = build_policy("P", loss_fn=None, **{hook: failing(hook)})(OBS_SPACE, ACT_SPACE, SMALL)
    with pytest.raises(RuntimeError, match=hook) as excinfo:
        use(policy, hook)
    names = frame_names(excinfo)
    assert "<lambda>" not in names and names[-2:] == [method, "hook"]


@pytest.mark.parametrize(
    "hook, method",
    [
        ("make_model", "make_model"),
        ("optimizer_fn", "make_optimizer"),
        ("before_init", "__init__"),
        ("after_init", "__init__"),
    ],
)
def test_a_failing_set_up_hook_is_called_from_the_method_it_becomes(hook, method):
    with pytest.raises(RuntimeError, match=hook) as excinfo:
        build_policy("P", loss_fn=None, **{hook: failing(hook)})(OBS_SPACE, ACT_SPACE, SMALL)
    names = frame_names(excinfo)
    assert "<lambda>" not in names and names[-2:] == [method, "hook"]


def test_built_methods_and_classes_carry_the_given_name():
    assert PPOTorchPolicy.__qualname__ == PPOTorchPolicy.__name__ == "PPOTorchPolicy"
    for method in ("__init__", "loss", "postprocess_trajectory", "stats", "with_updates"):
        assert getattr(PPOTorchPolicy, method).__qualname__ == f"PPOTorchPolicy.{method}"
    assert PPOTorchPolicy.__mro__[1:3] == (KLCoeffMixin, TorchPolicy)
    # Hooks that were not given leave the TorchPolicy method in place.
    assert PPOTorchPolicy.make_optimizer.__qualname__ == "TorchPolicy.make_optimizer"
    assert PPOTrainer.__qualname__ == "PPO" and PPOTrainer.with_updates.__qualname__ == (
        "PPO.with_updates"
    )
    # The trainer holds the plan itself (show(PPOTrainer.execution_plan) shows the plan), unrenamed.
    assert PPOTrainer.execution_plan is ppo_execution_plan
    assert ppo_execution_plan.__qualname__ == "execution_plan"


def test_built_classes_belong_to_the_module_that_built_them():
    Mine = build_policy("Mine", loss_fn=policy_gradient_loss)
    Variant = PGTorchPolicy.with_updates(name="Variant")
    assert Mine.__module__ == Variant.__module__ == __name__
    assert PGTorchPolicy.__module__ == "course_lib.policy.pg"
    MyTrainer = build_trainer("MyTrainer", default_policy=Mine)
    assert MyTrainer.__module__ == MyTrainer.with_updates(name="Other").__module__ == __name__
    assert PPOTrainer.__module__ == "course_lib.agents.ppo.ppo"


# --- with_updates --------------------------------------------------------------------------------


def test_with_updates_keeps_every_other_argument_and_the_original():
    Minimal = PPOTorchPolicy.with_updates(name="MinimalPPO", stats_fn=None)
    assert Minimal.__name__ == "MinimalPPO" and PPOTorchPolicy.__name__ == "PPOTorchPolicy"
    assert Minimal.build_args == {**PPOTorchPolicy.build_args, "stats_fn": None}
    assert "stats" not in vars(Minimal) and "stats" in vars(PPOTorchPolicy)
    assert Minimal.__mro__[1] is KLCoeffMixin
    Custom = PPOTrainer.with_updates(name="CustomPPO", default_policy=Minimal)
    assert Custom._name == "CustomPPO" and Custom._default_policy is Minimal
    assert PPOTrainer._default_policy is PPOTorchPolicy
    assert Custom._default_config is PPOTrainer._default_config
    assert Custom._hooks == PPOTrainer._hooks and Custom.execution_plan is ppo_execution_plan


def test_with_updates_refuses_unknown_arguments_of_either_builder():
    with pytest.raises(TypeError, match="unknown argument 'los_fn'. Did you mean 'loss_fn'"):
        PPOTorchPolicy.with_updates(los_fn=ppo_surrogate_loss)
    with pytest.raises(TypeError, match="unknown argument 'default_polcy'. Did you mean"):
        PPOTrainer.with_updates(default_polcy=PPOTorchPolicy)


def test_builders_check_their_arguments():
    with pytest.raises(ValueError, match="class name such as 'MyTorchPolicy', got 'my policy'"):
        build_policy("my policy", loss_fn=policy_gradient_loss)
    with pytest.raises(TypeError, match=r"build_policy\('P', stats_fn=...\) expects a function"):
        build_policy("P", loss_fn=policy_gradient_loss, stats_fn={"not": "callable"})
    with pytest.raises(TypeError, match=r"build_trainer\('T', execution_plan=...\) expects a"):
        build_trainer("T", default_policy=PGTorchPolicy, execution_plan=3)
    with pytest.raises(ValueError, match="needs default_policy=SomePolicy"):
        build_trainer("T", default_config=COMMON_CONFIG)


# --- show() --------------------------------------------------------------------------------------


def test_show_a_built_policy_gives_its_build_call_then_its_functions():
    view = show(PPOTorchPolicy)
    call, *functions = view.parts
    assert call.qualname == "course_lib.agents.ppo.ppo_torch_policy.PPOTorchPolicy"
    assert call.path == "course_lib/agents/ppo/ppo_torch_policy.py"
    assert call.code.startswith('PPOTorchPolicy = build_policy(\n    "PPOTorchPolicy",')
    assert call.code.rstrip().endswith(")")
    names = [part.qualname.rsplit(".", 1)[-1] for part in functions]
    assert names == [
        "ppo_surrogate_loss",
        "get_default_config",
        "compute_gae_for_sample_batch",
        "ppo_stats",
        "setup_kl_coeff",
        "KLCoeffMixin",
    ]
    assert functions[0].code.startswith("def ppo_surrogate_loss(")
    assert "def ppo_surrogate_loss(" in repr(view) and "def ppo_surrogate_loss(" in (
        view._repr_markdown_()
    )


def test_show_a_built_trainer_gives_its_build_call_and_plan():
    call, *functions = show(PPOTrainer).parts
    assert call.code.startswith('PPOTrainer = build_trainer(\n    "PPO",')
    assert [part.code.split("(")[0] for part in functions] == [
        "def validate_config",
        "def execution_plan",
    ]


def test_show_a_class_built_here_finds_the_call_and_skips_lambdas_written_in_it():
    Local = build_policy(
        "Local",
        loss_fn=policy_gradient_loss,
        get_default_config=lambda: {"lr": 0.1},
    )
    call, loss = show(Local).parts
    assert call.code.startswith("Local = build_policy(") and "lambda: {" in call.code
    assert call.path.endswith("test_builders.py")
    assert loss.code.startswith("def policy_gradient_loss(")


def test_show_a_method_of_a_built_class_shows_the_forwarding_method():
    view = show(PPOTorchPolicy.loss)
    assert view.path == "course_lib/policy/policy_template.py"
    assert view.code.lstrip().startswith("def loss(self, model, dist_class, train_batch):")


# --- pickling, as Ray sends classes to workers and Tune trials ---------------------------------


def test_library_classes_pickle_by_reference():
    assert cloudpickle.loads(cloudpickle.dumps(PGTorchPolicy)) is PGTorchPolicy
    assert cloudpickle.loads(cloudpickle.dumps(PPOTorchPolicy)) is PPOTorchPolicy
    assert len(cloudpickle.dumps(PPOTorchPolicy)) < 200  # a name, not the class's contents


LOAD_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
import gymnasium as gym
from ray import cloudpickle

policy_class, trainer_class = cloudpickle.loads(sys.stdin.buffer.read())
space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
policy = policy_class(space, gym.spaces.Discrete(2), {"model": {"fcnet_hiddens": [8]}})
actions, _, _ = policy.compute_actions(np.zeros((3, 4), np.float32))
assert policy.config["lr"] == 0.25 and policy.greet() == "hi" and actions.shape == (3,)
variant = trainer_class.with_updates(name="Variant")
assert variant._name == "Variant" and variant._default_policy is trainer_class._default_policy
print(policy_class.__qualname__, policy_class.loss.__qualname__, trainer_class._name)
"""


def test_classes_built_in_a_function_pickle_by_value_into_a_fresh_process():
    class Greeter:
        def greet(self):
            return "hi"

    def scaled_loss(policy, model, dist_class, train_batch):
        return 0.5 * policy_gradient_loss(policy, model, dist_class, train_batch)

    Built = build_policy(
        "BuiltHere",
        loss_fn=scaled_loss,
        get_default_config=lambda: {"lr": 0.25},
        optimizer_fn=lambda policy, config: torch.optim.SGD(
            policy.model.parameters(), lr=config["lr"]
        ),
        mixins=[Greeter],
    )
    Trainer = build_trainer("TrainerHere", default_policy=Built)
    payload = cloudpickle.dumps((Built, Trainer))
    done = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS],
        input=payload,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().split() == ["BuiltHere", "BuiltHere.loss", "TrainerHere"]
