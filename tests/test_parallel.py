"""The Ray Core lesson helpers: same answers whichever way the work is run."""

from __future__ import annotations

import matplotlib
import pytest

from course_lib import parallel

matplotlib.use("Agg")


def test_chunked_keeps_order_and_a_short_last_chunk():
    assert parallel.chunked(range(7), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert parallel.chunked([], 4) == []


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_chunked_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="chunk_size must be a whole number >= 1"):
        parallel.chunked([1, 2], size)


def test_busy_work_depends_on_both_arguments():
    assert parallel.busy_work(3, 1000) == parallel.busy_work(3, 1000)
    assert (
        len({parallel.busy_work(3, 1000), parallel.busy_work(4, 1000), parallel.busy_work(3, 1001)})
        == 3
    )
    assert parallel.busy_work(5, 0) == 5


def test_timeit_runs_warmup_and_repeats():
    calls = []
    timing = parallel.timeit(lambda: calls.append(1), repeat=4, warmup=2)
    assert len(calls) == 6 and len(timing.seconds) == 4
    assert timing.best <= timing.median
    with pytest.raises(ValueError, match="repeat >= 1"):
        parallel.timeit(lambda: None, repeat=0)


def test_every_strategy_gives_the_serial_answer(ray_session):
    import multiprocessing

    items = list(range(11))
    expected = [parallel.busy_work(x, 500) for x in items]
    assert parallel.run_serial(parallel.busy_work, items, 500) == expected
    assert parallel.run_ray(parallel.busy_work, items, 500) == expected
    assert parallel.run_ray_batched(parallel.busy_work, items, 500) == expected
    assert parallel.run_ray_batched(parallel.busy_work, items, 500, chunk_size=4) == expected
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert parallel.run_pool(pool, parallel.busy_work, items, 500) == expected
        assert parallel.run_pool(pool, parallel.mul, items) == [10 * x for x in items]


def test_compare_strategies_reports_speedup_against_serial(ray_session):
    results = parallel.compare_strategies(
        [100, 1000], n_tasks=4, repeat=1, strategies=("serial", "ray"), processes=1
    )
    assert [(r.strategy, r.iterations) for r in results] == [
        ("serial", 100),
        ("ray", 100),
        ("serial", 1000),
        ("ray", 1000),
    ]
    for r in results:
        assert r.speedup == pytest.approx(r.serial_seconds / r.seconds)
    assert results[0].speedup == 1.0
    table = parallel.format_table(results)
    assert table.splitlines()[0] == "| iterations/task | ms/task (serial) | serial | ray |"
    assert table.splitlines()[2].startswith("| 100 |")


def test_compare_strategies_rejects_unknown_names():
    with pytest.raises(ValueError, match="choose from"):
        parallel.compare_strategies([10], strategies=("serial", "threads"))


def test_plot_speedup_draws_one_line_per_parallel_strategy():
    results = [
        parallel.SpeedupResult("serial", 10, 4, 1.0, 1.0),
        parallel.SpeedupResult("ray", 10, 4, 2.0, 1.0),
        parallel.SpeedupResult("ray", 1000, 4, 0.5, 1.0),
    ]
    ax = parallel.plot_speedup(results, n_cpus=2)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["ray", "serial (break-even)", "ideal (2 cores)"]
    assert list(ax.get_lines()[0].get_ydata()) == [0.5, 2.0]
