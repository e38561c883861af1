"""Show Ray's notices about a dying worker as one short line each, not as a log dump.

Introduced in notebooks/02_ray_actors.ipynb, whose cells crash actors on purpose.

How Ray prints them. The driver (the notebook's process) runs two daemon threads that print what
the cluster sends: ``ray_listen_error_messages`` prints the raylet's notices ("(raylet) A worker
died or was killed ...", ray/_private/worker.py, ``listen_error_messages``) and ``ray_print_logs``
prints the workers' stdout and stderr (``Worker.print_logs``). Both end in ``print_worker_logs``,
which writes to ``sys.stdout`` (or ``sys.stderr``) as it is at the moment of writing
(``print_to_stdstream``). ``ray.init(log_to_driver=False)`` is read once, when Ray starts, and only
stops the second thread; Ray's own switch ``ray._private.worker._worker_logs_enabled`` (used by its
debugger, ray/util/rpdb.py) silences both, but silently. So for the length of a ``with`` block,
``shortened_ray_notices`` swaps ``sys.stdout``/``sys.stderr`` for a stream that passes the cell's
own output through and keeps the other threads' writes aside, then prints each notice cut to its
first sentences. Keeping the two apart also stops a notice from being glued to a line the cell
prints.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from contextlib import contextmanager

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
RAYLET_PREFIX = "(raylet) "
# A notice keeps whole sentences up to this many characters (always at least its first one).
SHORT_NOTICE_CHARS = 120


class _SplitStream:
    """A text stream: writes from ``owner`` (the notebook's thread) pass through to ``target``;
    writes from other threads (Ray's printing threads) are kept in ``held``."""

    def __init__(self, target, owner: int, held: list[str], lock: threading.Lock):
        self._target, self._owner, self._held, self._lock = target, owner, held, lock
        self.last_held_at = None

    def write(self, text: str) -> int:
        if threading.get_ident() == self._owner:
            return self._target.write(text)
        with self._lock:
            self._held.append(text)
            self.last_held_at = time.monotonic()
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name):  # encoding, isatty, fileno, ... as the stream it replaces
        return getattr(self._target, name)


def shorten_notice(line: str, max_chars: int = SHORT_NOTICE_CHARS) -> str:
    """One notice line without its "(raylet) " prefix, cut after the sentence that fills it.

    >>> shorten_notice("(raylet) Task f failed. 1 retry remains. Error: RpcError 14", 40)
    'Task f failed. 1 retry remains.'
    """
    text = ANSI_ESCAPE.sub("", line).strip().removeprefix(RAYLET_PREFIX.strip()).strip()
    sentences = re.split(r"(?<=\.)\s+", text)
    kept = sentences[0]
    for sentence in sentences[1:]:
        if len(kept) + 1 + len(sentence) > max_chars:
            break
        kept += " " + sentence
    return kept


@contextmanager
def shortened_ray_notices(settle_s: float = 0.5):
    """Inside the block, Ray's notices print as one short line each, after the cell's own output.

    On leaving the block it waits until Ray's threads have been quiet for ``settle_s`` seconds, so
    that a notice still on its way lands here and not in the next cell. Lines that are not raylet
    notices (a worker's own ``print``) are printed unchanged. Introduced in
    notebooks/02_ray_actors.ipynb.
    """
    held: list[str] = []
    lock = threading.Lock()
    owner = threading.get_ident()
    saved = sys.stdout, sys.stderr
    streams = [_SplitStream(stream, owner, held, lock) for stream in saved]
    sys.stdout, sys.stderr = streams
    try:
        yield
    finally:
        ended = time.monotonic()
        while (
            time.monotonic() - max([ended] + [s.last_held_at or ended for s in streams]) < settle_s
        ):
            time.sleep(settle_s / 5)
        sys.stdout, sys.stderr = saved
        with lock:
            lines = "".join(held).splitlines()
        for line in filter(str.strip, lines):
            clean = ANSI_ESCAPE.sub("", line)
            if clean.startswith(RAYLET_PREFIX):
                print(f"Ray's notice, shortened: {shorten_notice(clean)}")
            else:
                print(clean)
