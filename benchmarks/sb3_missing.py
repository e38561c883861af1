"""What the benchmarks that race stable-baselines3 say when it is not installed.

SB3 is the optional ``sb3`` extra, not part of the course environment. ``bench_peers.py`` and
``bench_continuous.py`` import it first, inside ``try``, and raise ``SystemExit(SB3_MISSING)``
when the module itself is missing (not when SB3 fails on one of its own imports).
"""

SB3_MISSING = (
    "stable-baselines3 is not installed, and this benchmark runs it. `make sb3` installs it "
    "(the `sb3` extra, pinned in requirements-sb3.lock; `make bench-peers` installs it too), or "
    "install it yourself: .venv/bin/python -m pip install -c requirements.lock "
    "-r requirements-sb3.lock"
)
