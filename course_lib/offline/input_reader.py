"""Where a rollout worker's batches come from (``"input"``) and where they go (``"output"``).

``worker.sample()`` asks its input reader for the next batch:

- ``"sampler"`` (the default): ``SamplerInput``, the worker's own envs and sampler;
- a folder, file, glob or list of files: ``JsonReader`` (json_reader.py), recorded batches;
- a dict such as ``{"sampler": 0.5, "/tmp/cartpole-out": 0.5}``: ``MixedInput``, which picks one
  of those sources per batch with the given probabilities.

With ``"output": "<folder>"`` every batch the worker returns is also written there
(``JsonWriter``). Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

import math
import os

import numpy as np

from course_lib.offline.json_reader import INPUT_ACCEPTS, JsonReader
from course_lib.offline.json_writer import JsonWriter
from course_lib.sample_batch import DEFAULT_POLICY_ID, SampleBatch

SAMPLER = "sampler"


class InputReader:
    """A source of batches: ``next()`` returns the next one. Introduced in
    notebooks/17_offline_rl.ipynb."""

    def next(self):
        raise NotImplementedError(f"{type(self).__name__} must implement next().")


class SamplerInput(InputReader):
    """Fresh experience: ``next()`` calls ``sample_fn()`` (the worker's sampler).

    Introduced in notebooks/17_offline_rl.ipynb.
    """

    def __init__(self, sample_fn):
        self.sample_fn = sample_fn

    def next(self):
        return self.sample_fn()


class MixedInput(InputReader):
    """Per ``next()``: one source, drawn with probabilities ``weights``, gives the batch.

    ``readers`` and ``weights`` line up; ``rng`` is a seeded ``numpy.random.Generator``.
    Introduced in notebooks/17_offline_rl.ipynb.
    """

    def __init__(self, readers: list[InputReader], weights: list[float], rng):
        self.readers, self.weights, self.rng = readers, np.asarray(weights, float), rng

    def next(self):
        return self.readers[self.rng.choice(len(self.readers), p=self.weights)].next()


def check_mix(mix: dict) -> None:
    """Refuse a mixed ``"input"`` whose weights are not probabilities summing to 1.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if not mix:
        raise ValueError(f'"input" is an empty dict. {INPUT_ACCEPTS}')
    for source, weight in mix.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(
                f'A mixed "input" maps each source to a probability >= 0; {source!r} has '
                f"{weight!r}. {INPUT_ACCEPTS}"
            )
    total = sum(mix.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(
            f'The weights of a mixed "input" are the probabilities of drawing each source, so '
            f"they must sum to 1; {mix} sums to {total:g}. E.g. "
            + ", ".join(f"{s!r}: {w / total:.3g}" for s, w in mix.items() if total > 0)
            + (" would keep their proportions." if total > 0 else "")
        )


def uses_sampler_only(config: dict) -> bool:
    """Whether the worker learns only from its own envs (``"input": "sampler"``).

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    return config.get("input", SAMPLER) == SAMPLER


def absolute_paths(config: dict) -> dict:
    """``config`` with the paths of ``"input"`` and ``"output"`` made absolute.

    Remote rollout workers may run in another folder than the trainer; the trainer's folder is
    what a relative path means. Introduced in notebooks/17_offline_rl.ipynb.
    """

    def absolute(source):
        if isinstance(source, (str, os.PathLike)) and os.fspath(source) != SAMPLER:
            return os.path.abspath(os.path.expanduser(os.fspath(source)))
        return source

    config = dict(config)
    source = config.get("input", SAMPLER)
    if isinstance(source, dict):
        config["input"] = {absolute(s): w for s, w in source.items()}
    elif isinstance(source, (list, tuple)):
        config["input"] = [absolute(s) for s in source]
    else:
        config["input"] = absolute(source)
    if config.get("output"):
        config["output"] = absolute(config["output"])
    return config


def postprocess_by_episode(policy, batch):
    """``policy.postprocess_trajectory`` on each episode of a recorded batch, concatenated.

    Recorded batches hold several episodes; postprocessing (returns, advantages) works on one.
    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if not isinstance(batch, SampleBatch):
        raise NotImplementedError(
            '"postprocess_inputs": True works on single-agent data only; this input holds '
            f"{type(batch).__name__}s. Record the data already postprocessed instead."
        )
    pieces = [policy.postprocess_trajectory(piece) for piece in batch.split_by_episode()]
    return SampleBatch.concat_samples(pieces)


def make_input_reader(config: dict, worker, sample_fn, seed: int | None) -> InputReader:
    """The input reader that ``config["input"]`` asks for (see the module docstring).

    ``sample_fn`` samples the worker's envs; ``seed`` orders the files and draws a mix's sources.
    With ``"postprocess_inputs"``, recorded batches go through the worker's default policy's
    ``postprocess_trajectory`` episode by episode. Introduced in notebooks/17_offline_rl.ipynb.
    """
    source = config["input"]
    postprocess = None
    if config["postprocess_inputs"]:
        policy = worker.get_policy(DEFAULT_POLICY_ID)

        def postprocess(batch):
            return postprocess_by_episode(policy, batch)

    def reader_for(item, item_seed):
        if item == SAMPLER:
            return SamplerInput(sample_fn)
        return JsonReader(item, seed=item_seed, postprocess=postprocess)

    if isinstance(source, dict):
        check_mix(source)
        seeds = np.random.SeedSequence(seed).spawn(len(source) + 1)
        readers = [reader_for(item, s) for item, s in zip(source, seeds, strict=False)]
        return MixedInput(readers, list(source.values()), np.random.default_rng(seeds[-1]))
    if isinstance(source, str) and source == SAMPLER:
        return SamplerInput(sample_fn)
    if isinstance(source, (str, os.PathLike, list, tuple)):
        return reader_for(source, seed)
    raise TypeError(f'"input" is {source!r} ({type(source).__name__}). {INPUT_ACCEPTS}')


def make_output_writer(config: dict, worker_index: int) -> JsonWriter | None:
    """A ``JsonWriter`` into ``config["output"]``, or None when it is None.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if not config["output"]:
        return None
    return JsonWriter(
        config["output"],
        compress_columns=config["output_compress_columns"],
        max_file_size=config["output_max_file_size"],
        worker_index=worker_index,
    )
