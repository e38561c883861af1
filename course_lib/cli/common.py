"""What ``course-rl train``, ``rollout`` and ``list`` share: the usage error, JSON options, trainer
lookup, config checks and tuned-example files.

Every check here runs before Ray starts, so a mistyped option fails in a second, with one line.
Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

from course_lib.validation import did_you_mean, is_whole_number

# The keys of one experiment in a tuned-example YAML file (RLlib's format).
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_freq", "checkpoint_at_end")
EXPERIMENT_EXAMPLE = (
    "'name: {run: PPO, env: CartPole-v1, stop: {...}, config: {...}}', or in block style "
    "'cartpole-ppo:' with 'run: PPO', 'env: CartPole-v1' indented under it"
)


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit code 2.

    Introduced in notebooks/12_trainers.ipynb.
    """


@contextmanager
def reported_as_usage_error(*kinds: type[BaseException]):
    """Turn the errors a wrong argument causes (an unknown config key...) into a ``UsageError``."""
    try:
        yield
    except kinds as error:
        raise UsageError(" ".join(str(error).split())) from None


def parse_json_dict(text: str, option: str) -> dict:
    """The JSON object given to ``option`` (``--config``), or a ``UsageError`` that says where the
    JSON broke, the likely cause, and an example."""
    example = f"Example: {option} '{{\"lr\": 0.001}}'"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if not text.strip():
            raise UsageError(
                f"{option} is not valid JSON: it is empty. Pass '{{}}' for no overrides, or "
                f"leave the option out. {example}"
            ) from None
        where = text[max(0, error.pos - 40) : error.pos] + "<HERE>" + text[error.pos :][:20]
        raise UsageError(
            f"{option} is not valid JSON: {error.msg[0].lower()}{error.msg[1:]} at line "
            f"{error.lineno}, column {error.colno}, marked <HERE> in {where!r}."
            f"{_json_mistake(text)} {example}"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{option} should be a JSON object such as '{{\"lr\": 0.001}}', got {text!r}."
        )
    return value


def _json_mistake(text: str) -> str:
    """The usual reason a learner's JSON fails, as a sentence starting with a space (or "")."""
    if "'" in text:
        return " JSON needs double quotes around keys and strings."
    if re.search(r"\b(True|False|None)\b", text):
        return " JSON writes true, false and null in lower case."
    if re.search(r",\s*[}\]]", text):
        return " JSON allows no comma before a closing } or ]."
    if '"' not in text and ":" in text:
        return (
            " The shell removed the double quotes: wrap the whole JSON in single quotes, as in "
            "the example."
        )
    return ""


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
        experiments = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(
            f"{file} is not a text file, so not a YAML experiment. Pass a .yaml file such as "
            "the ones 'course-rl list' shows."
        ) from None
    except OSError as error:
        raise UsageError(f"Cannot read {file}: {error.strerror}. Check its permissions.") from None
    except yaml.YAMLError as error:
        where = " ".join(str(error).replace('"<unicode string>"', "the file").split())
        raise UsageError(
            f"{file} is not valid YAML: {where}. Check the indentation and the brackets there."
        ) from None
    if not experiments:
        raise UsageError(f"{file} is empty. It should hold one experiment: {EXPERIMENT_EXAMPLE}.")
    if not isinstance(experiments, dict):
        raise UsageError(
            f"{file} should map an experiment name to its settings, {EXPERIMENT_EXAMPLE}; it "
            f"holds a YAML {type(experiments).__name__} instead ({_short(experiments)})."
        )
    settings = [key for key in experiments if key in EXPERIMENT_KEYS]
    if settings:
        raise UsageError(
            f"{file}: {', '.join(map(repr, settings))} at the top level, where experiment names "
            "go. Put the settings under the experiment's name, indented: "
            f"{EXPERIMENT_EXAMPLE}."
        )
    if len(experiments) != 1:
        raise UsageError(
            f"{file} holds {len(experiments)} experiments ({', '.join(map(repr, experiments))}); "
            "course-rl train runs one per file. Put each in a file of its own."
        )
    name, experiment = next(iter(experiments.items()))
    if not isinstance(experiment, dict):
        raise UsageError(
            f"{file}: experiment {name!r} should be a mapping of its settings, "
            f"{EXPERIMENT_EXAMPLE}; got {_short(experiment)}."
        )
    for key, value in experiment.items():
        if key not in EXPERIMENT_KEYS:
            raise UsageError(
                f"{file}: unknown key {key!r} in experiment {name!r}. "
                f"Valid keys: {', '.join(EXPERIMENT_KEYS)}.{did_you_mean(key, EXPERIMENT_KEYS)}"
            )
        problem = _experiment_value_problem(key, value)
        if problem:
            raise UsageError(f"{file}: {key!r} of experiment {name!r} {problem}")
    return str(name), experiment


def _experiment_value_problem(key: str, value) -> str:
    """What is wrong with ``value`` for ``key`` of a tuned-example experiment ("" when nothing)."""
    if key in ("stop", "config") and not isinstance(value, dict):
        return f"should be a mapping such as {{lr: 0.001}}, got {value!r}."
    if key in ("run", "env") and not isinstance(value, str):
        example = "PPO" if key == "run" else "CartPole-v1"
        return f"should be a name such as {example}, got {_short(value)}."
    if key == "checkpoint_freq" and not (is_whole_number(value) and value >= 0):
        return f"should be a whole number of iterations >= 0 (0: never), got {value!r}."
    if key == "checkpoint_at_end" and not isinstance(value, bool):
        return f"should be true or false, got {value!r}."
    return ""


def _short(value, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_experiment_file(path: str) -> Path:
    """``path`` itself, or a file of that name in a tuned_examples/ folder."""
    candidates = [Path(path).expanduser()] + [folder / path for folder in tuned_example_folders()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if Path(path).expanduser().is_dir():
        raise UsageError(
            f"{path!r} is a folder; -f takes one YAML file, e.g. -f {path.rstrip('/')}/"
            "ppo-cartpole.yaml. 'course-rl list' shows the tuned examples."
        )
    known = [file.name for folder in tuned_example_folders() for file in folder.glob("*.y*ml")]
    raise UsageError(
        f"No such file: {path!r}.{did_you_mean(Path(path).name, known)} "
        "'course-rl list' shows the tuned examples."
    )


def tuned_example_folders() -> list[Path]:
    """The tuned_examples/ folders in the current directory and next to the course_lib package."""
    package_root = Path(__file__).resolve().parents[2]
    folders = []
    for folder in (Path.cwd() / "tuned_examples", package_root / "tuned_examples"):
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in folders]:
            folders.append(folder)
    return folders
