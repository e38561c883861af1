"""Peak memory of each lesson notebook: the Jupyter kernel plus every Ray process it started.

Runs each notebook in a fresh kernel (nothing is written back) and samples, every 0.5 s, the
proportional set size (PSS) of the kernel and of all processes of the Ray sessions that appeared
while it ran. PSS splits shared pages (Ray's shared-memory object store, the libraries every worker
maps) between the processes that share them, so the sum is what the lesson costs the machine;
plain RSS would count the object store once per process that maps it. Also measures two lessons
open at the same time (``--pair``), the "two notebooks in a workshop" case.

Usage: ``python benchmarks/bench_memory.py [notebooks ...] [--pair A B]``; figures go to
BENCHMARKS.md ("Reliability").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def _pss(process: psutil.Process) -> int:
    try:
        info = process.memory_full_info()
        return getattr(info, "pss", info.rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0


def _tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants: the runner, its kernel, and Ray's processes, which the
    kernel starts (GCS, raylet) and the raylet starts in turn (workers, trial actors)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def execute(path: Path) -> None:
    """Run one notebook in a fresh kernel without writing it back (the child side of measure)."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()


def measure(paths: list[Path], interval: float = 0.5) -> tuple[float, float, list[str]]:
    """Run ``paths`` at the same time, one process each.

    Returns (peak PSS in GB, seconds, the notebooks that failed): a failed notebook still counts up
    to the cell that failed (lesson 01's speedup check fails when other programs hold the cores).
    """
    start = time.perf_counter()
    runners = [
        subprocess.Popen([sys.executable, __file__, "--execute", str(path)]) for path in paths
    ]
    peak = 0
    while any(runner.poll() is None for runner in runners):
        processes = {p.pid: p for runner in runners for p in _tree(runner.pid)}
        peak = max(peak, sum(_pss(p) for p in processes.values()))
        time.sleep(interval)
    failed = [path.name for path, runner in zip(paths, runners, strict=True) if runner.returncode]
    return peak / 1024**3, time.perf_counter() - start, failed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--pair", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--execute", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute:
        execute(args.execute)
        return 0
    if args.notebooks or not args.pair:
        paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
        print("| notebook | peak PSS, kernel + Ray (GB) | seconds |\n|---|---:|---:|")
        for path in paths:
            peak, seconds, failed = measure([path])
            name = path.relative_to(ROOT) if path.is_absolute() else path
            note = " (failed before the end)" if failed else ""
            print(f"| {name}{note} | {peak:.2f} | {seconds:.0f} |", flush=True)
    if args.pair:
        peak, seconds, failed = measure(list(args.pair))
        names = " + ".join(p.name for p in args.pair) + (f" (failed: {failed})" if failed else "")
        print(f"\nTwo lessons at once ({names}): peak PSS {peak:.2f} GB over {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
