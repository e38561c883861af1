"""``Concurrently``: run several sub-plans of one execution plan side by side.

DQN's plan has two: one stores fresh samples in the replay buffer, the other replays and trains.
``Concurrently([store_op, replay_op], mode="round_robin", output_indexes=[1])`` pulls one item
from each in turn and hands on only the training results. All sub-plans share one MetricsContext.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

from course_lib.execution.local_iterator import LocalIterator, NextValueNotReady, merge_indexed
from course_lib.validation import is_whole_number

CONCURRENCY_MODES = ("round_robin", "async")


def Concurrently(
    ops: list[LocalIterator],
    *,
    mode: str = "round_robin",
    output_indexes: list[int] | None = None,
    round_robin_weights: list[int] | None = None,
) -> LocalIterator:
    """Items of all ``ops`` in one stream; those of ``output_indexes`` (default: all) go on.

    - ``mode="round_robin"``: in each round, pull ``round_robin_weights[i]`` items (default 1) from
      op ``i``, in order; an op that yields ``NextValueNotReady`` is skipped for the rest of the
      round. The ops not in ``output_indexes`` are still pulled: they run for their side effects.
    - ``mode="async"``: every op runs in its own daemon thread and items come out in the order they
      arrive, so the interleaving changes from run to run. The threads stop when this iterator is
      closed or garbage collected.

    ``NextValueNotReady`` items are never yielded. Introduced in notebooks/11_execution_plans.ipynb.
    """
    ops = list(ops)
    if not ops:
        raise ValueError(
            "Concurrently() got no ops; pass a list of LocalIterators, e.g. [store_op, replay_op]."
        )
    for index, op in enumerate(ops):
        if not isinstance(op, LocalIterator):
            raise TypeError(
                "Concurrently() takes LocalIterators (e.g. ParallelRollouts(...), Replay(...)); "
                f"ops[{index}] is a {type(op).__name__}."
            )
    if mode not in CONCURRENCY_MODES:
        raise ValueError(f"Unknown Concurrently mode {mode!r}; use one of {CONCURRENCY_MODES}.")
    outputs = range(len(ops)) if output_indexes is None else output_indexes
    bad = [i for i in outputs if not is_whole_number(i) or not 0 <= i < len(ops)]
    if bad:
        raise ValueError(
            f"output_indexes {list(outputs)} has {bad}, which are not positions in the list of "
            f"{len(ops)} ops (0..{len(ops) - 1})."
        )
    outputs = set(outputs)
    merged = merge_indexed(ops, mode=mode, round_robin_weights=round_robin_weights)

    def select():
        for pair in merged:
            if not isinstance(pair, NextValueNotReady) and pair[0] in outputs:
                yield pair[1]

    concurrently = merged._derive(select, "Concurrently")
    concurrently.name = (
        f"Concurrently([{', '.join(op.name for op in ops)}], mode={mode!r}, "
        f"output_indexes={sorted(outputs)})"
    )
    return concurrently
