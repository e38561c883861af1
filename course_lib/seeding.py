"""Seeding the process-wide random generators, in one place.

Python's ``random``, numpy's global generator and torch's default generator belong to the
process, not to an object. So they are seeded once per process, by whoever owns the process:

- a ``Trainer`` seeds the process it runs in (notebooks/12_trainers.ipynb);
- a ``RolloutWorker`` seeds its process when it is alone there: as a Ray actor, or built
  directly without a trainer (notebooks/08_rollout_workers.ipynb). The workers a trainer builds
  in its own process (its local worker, its local evaluation worker) leave the RNGs alone;
- policies never seed: two policies built one after the other draw different initial weights
  from the same stream, as two layers of one network do.

Objects that need their own repeatable randomness (the env of each worker, episode ids, a replay
buffer) keep their own ``np.random.Generator`` instead. Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


def seed_global_rngs(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and every GPU).

    Introduced in notebooks/12_trainers.ipynb.
    """
    # Imported here: envs and heuristic policies use this module without needing torch loaded.
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's legacy seeding takes 32 bits only
    torch.manual_seed(seed)


@contextmanager
def global_rngs_unchanged() -> Iterator[None]:
    """Run a block without moving the process's random streams: their states come back after it.

    A trainer builds its evaluation workers inside this block: their policies draw initial
    weights (replaced by the trained ones before every evaluation), and training must see the
    same random numbers whether or not it evaluates. Introduced in notebooks/12_trainers.ipynb.
    """
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    # fork_rng saves and restores torch's CPU generator and, when CUDA is used, the GPUs' ones.
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
