"""What ``course-rl train``, ``rollout`` and ``list`` share: the usage error, JSON options, trainer
lookup, config checks and tuned-example files.

Every check here runs before Ray starts, so a mistyped option fails in a second, with one line.
Introduced in notebooks/11_trainers.ipynb.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

# The keys of one experiment in a tuned-example YAML file (RLlib's format).
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_freq", "checkpoint_at_end")


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit code 2.

    Introduced in notebooks/11_trainers.ipynb.
    """


@contextmanager
def reported_as_usage_error(*kinds: type[BaseException]):
    """Turn the errors a wrong argument causes (an unknown config key...) into a ``UsageError``."""
    try:
        yield
    except kinds as error:
        raise UsageError(" ".join(str(error).split())) from None


def parse_json_dict(text: str, option: str) -> dict:
    """The JSON object given to ``option`` (``--config``), or a ``UsageError`` with an example."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        hint = " JSON needs double quotes around keys and strings." if "'" in text else ""
        raise UsageError(
            f"{option} is not valid JSON ({error}): {text!r}.{hint} Example: {option} "
            "'{\"lr\": 0.001}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{option} should be a JSON object such as '{{\"lr\": 0.001}}', got {text!r}."
        )
    return value


def trainer_class(run: str) -> type:
    """The trainer class named ``run`` ("PPO"); an unknown name is a ``UsageError``."""
    from course_lib.agents import get_trainer_class

    with reported_as_usage_error(ValueError, ImportError):
        return get_trainer_class(run)


def check_config(trainer_cls: type, config: dict) -> None:
    """Fail before Ray starts on a config the trainer would refuse (unknown key, env, type)."""
    from course_lib.envs import get_env_creator

    with reported_as_usage_error(ValueError, TypeError):
        get_env_creator(config["env"])
        merged = trainer_cls.merge_trainer_configs(
            trainer_cls._default_config, first_grid_values(config)
        )
        if trainer_cls._hooks.get("validate_config"):
            trainer_cls._hooks["validate_config"](merged)


def first_grid_values(config: dict) -> dict:
    """``config`` with each ``{"grid_search": [a, b]}`` replaced by ``a``: one trial's config."""

    def first(value):
        if isinstance(value, dict):
            if "grid_search" in value and value["grid_search"]:
                return first(value["grid_search"][0])
            return {key: first(v) for key, v in value.items()}
        return value

    return first(config)


def read_experiment_file(path: str) -> tuple[str, dict]:
    """``(name, experiment)`` from a tuned-example YAML file holding exactly one experiment."""
    import yaml

    file = find_experiment_file(path)
    try:
        experiments = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise UsageError(f"{file} is not valid YAML: {' '.join(str(error).split())}") from None
    if (
        not isinstance(experiments, dict)
        or len(experiments) != 1
        or not isinstance(next(iter(experiments.values())), dict)
    ):
        raise UsageError(
            f"{file} should hold one experiment, 'name: {{run: PPO, env: CartPole-v1, "
            f"stop: {{...}}, config: {{...}}}}'; found {type(experiments).__name__} with "
            f"{len(experiments or ())} entries."
        )
    name, experiment = next(iter(experiments.items()))
    for key, value in experiment.items():
        if key not in EXPERIMENT_KEYS:
            raise UsageError(
                f"{file}: unknown key {key!r} in experiment {name!r}. "
                f"Valid keys: {', '.join(EXPERIMENT_KEYS)}."
            )
        if key in ("stop", "config") and not isinstance(value, dict):
            raise UsageError(
                f"{file}: {key!r} of experiment {name!r} should be a mapping such as "
                f"{{lr: 0.001}}, got {value!r}."
            )
    return str(name), experiment


def find_experiment_file(path: str) -> Path:
    """``path`` itself, or a file of that name in a tuned_examples/ folder."""
    candidates = [Path(path).expanduser()] + [folder / path for folder in tuned_example_folders()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(f"No such file: {path!r}. 'course-rl list' shows the tuned examples.")


def tuned_example_folders() -> list[Path]:
    """The tuned_examples/ folders in the current directory and next to the course_lib package."""
    package_root = Path(__file__).resolve().parents[2]
    folders = []
    for folder in (Path.cwd() / "tuned_examples", package_root / "tuned_examples"):
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in folders]:
            folders.append(folder)
    return folders
