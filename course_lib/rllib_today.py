"""Helpers for running real RLlib 2.60 next to course_lib: quiet logs and deprecation capture.

RLlib reports a deprecated spelling by *logging* a line (``ray._common.deprecation``), not with
``warnings.warn``, so a notebook cell or a test cannot catch it the usual way.
``rllib_deprecations()`` collects those lines while a block runs; the "RLlib today" lesson uses it
to show that ``.training(learner_class=...)`` is the old spelling, and its graders use it to refuse
deprecated spellings. ``quiet_rllib_logs()`` keeps RLlib's notices about itself out of a notebook.

Introduced in notebooks/19_rllib_today.ipynb.
"""

from __future__ import annotations

import contextlib
import logging

DEPRECATION_LOGGER = "ray._common.deprecation"

# Deprecations RLlib 2.60 logs about its own code, whatever the user writes: building any default
# RLModule constructs the deprecated RLModuleConfig internally. They say nothing about the caller.
RLLIB_INTERNAL_DEPRECATIONS = ("RLModule(config=[RLModuleConfig object])",)

# Notices printed on every build or Tune trial that a learner cannot act on: the new API stack is
# already what the course uses, and GPU monitoring does not apply without a GPU. Each is filtered
# on the logger that emits it (a filter on a parent logger does not see its children's records).
_NOTICES = {
    "ray.rllib.algorithms.algorithm_config": "on the new API stack!",
    "ray.tune.utils.util": "Install gputil",
}


def is_internal_deprecation(message: str) -> bool:
    """Whether a deprecation line is one RLlib logs about its own internals (not the caller's code).

    Introduced in notebooks/19_rllib_today.ipynb.
    """
    return any(internal in message for internal in RLLIB_INTERNAL_DEPRECATIONS)


class _DropLines(logging.Filter):
    def __init__(self, should_drop):
        super().__init__()
        self.should_drop = should_drop

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.should_drop(record.getMessage())


def quiet_rllib_logs() -> None:
    """Drop RLlib's notices about itself from this process's log output; keep everything else.

    Deprecations of the caller's own spellings, warnings and errors still show; Tune's line per
    checkpoint (INFO) does not. Safe to call twice; lessons also run it in every Ray worker
    process through ``init_ray(runtime_env={"worker_process_setup_hook": quiet_rllib_logs})``.

    Introduced in notebooks/19_rllib_today.ipynb.
    """
    rules = {DEPRECATION_LOGGER: is_internal_deprecation}
    for name, notice in _NOTICES.items():
        rules[name] = lambda message, notice=notice: notice in message
    for name, should_drop in rules.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines(should_drop))
    # init_ray(quiet=True) raises the "ray" logger to ERROR, which would silence deprecations too.
    logging.getLogger(DEPRECATION_LOGGER).setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not is_internal_deprecation(message):
            self.messages.append(message)


@contextlib.contextmanager
def handle_rllib_deprecations(handler: logging.Handler):
    """Route every deprecation line RLlib logs inside the block to ``handler``, and only there.

    The level is set here because a quiet Ray (init_ray) raises the parent "ray" logger to
    ERROR, which would drop the lines before any handler saw them. RLlib's ``@Deprecated``
    decorator warns once per process (``log_once``); that memory is reset so the block sees its
    own uses. The handler decides what to keep (``is_internal_deprecation`` tells RLlib's notes
    about itself apart); a handler that raises turns a deprecation into an error.

    Introduced in notebooks/19_rllib_today.ipynb.
    """
    from ray.util.debug import reset_log_once

    reset_log_once()
    logger = logging.getLogger(DEPRECATION_LOGGER)
    saved = logger.level, logger.propagate
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextlib.contextmanager
def rllib_deprecations():
    """Collect the deprecation lines RLlib logs inside the block, as a list of strings.

    RLlib's notes about its own internals are left out, so the list holds what the code in the
    block did. Example::

        with rllib_deprecations() as messages:
            PPOConfig().training(learner_class=MyLearner)
        print(messages)  # ["DeprecationWarning: `config.training(learner_class=..)` ..."]

    Introduced in notebooks/19_rllib_today.ipynb.
    """
    with handle_rllib_deprecations(_Collect()) as handler:
        yield handler.messages
