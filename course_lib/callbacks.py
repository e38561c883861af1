"""Callbacks: your code at fixed moments of sampling and training, without touching the library.

Subclass ``DefaultCallbacks``, override the hooks you need, and pass the class as
``config["callbacks"]``. Every hook takes keyword arguments only, so a hook can ignore the ones it
does not use with ``**kwargs``. Where they fire:

- ``on_episode_start`` / ``on_episode_step`` / ``on_episode_end``: in a rollout worker, after the
  env's reset, after each env step, and when an episode ends (terminated or truncated);
- ``on_postprocess_trajectory``: after the policy's postprocessing of one episode piece;
- ``on_sample_end``: when ``RolloutWorker.sample()`` has built its batch;
- ``on_learn_on_batch``: at the start of ``Policy.learn_on_batch``;
- ``on_train_result``: at the end of ``Trainer.train()`` (lesson 12).

Introduced in notebooks/10_callbacks.ipynb.
"""

from __future__ import annotations


class DefaultCallbacks:
    """Hooks that do nothing; subclass and override. Introduced in notebooks/10_callbacks.ipynb."""

    def on_episode_start(
        self, *, worker, base_env, policies, episode, env_index: int, **kwargs
    ) -> None:
        """A new episode began: the env was just reset. ``episode.user_data`` is empty."""

    def on_episode_step(
        self, *, worker, base_env, policies, episode, env_index: int, **kwargs
    ) -> None:
        """The env took one step; ``episode.last_info_for()`` etc. describe it."""

    def on_episode_end(
        self, *, worker, base_env, policies, episode, env_index: int, **kwargs
    ) -> None:
        """The episode ended; put numbers in ``episode.custom_metrics`` and lists in
        ``episode.hist_data``."""

    def on_postprocess_trajectory(
        self,
        *,
        worker,
        episode,
        agent_id,
        policy_id,
        policies,
        postprocessed_batch,
        original_batches,
        **kwargs,
    ) -> None:
        """One episode piece was postprocessed; you may add columns to ``postprocessed_batch`` in
        place."""

    def on_sample_end(self, *, worker, samples, **kwargs) -> None:
        """``worker.sample()`` built ``samples`` and is about to return it."""

    def on_learn_on_batch(self, *, policy, train_batch, result: dict, **kwargs) -> None:
        """``policy.learn_on_batch(train_batch)`` is starting; entries put in ``result`` join its
        stats."""

    def on_train_result(self, *, trainer, result: dict, **kwargs) -> None:
        """``trainer.train()`` produced ``result``; you may add keys to it."""


HOOKS = tuple(name for name in vars(DefaultCallbacks) if name.startswith("on_"))


class MultiCallbacks(DefaultCallbacks):
    """Run several callback classes in order: ``config["callbacks"] = MultiCallbacks([A, B])``.

    Like a callbacks class, the object is called (by each worker) to make the instance it uses,
    so every worker gets fresh instances of ``A`` and ``B``.
    Introduced in notebooks/10_callbacks.ipynb.
    """

    def __init__(self, callback_classes: list[type]):
        for cls in callback_classes:
            if not (isinstance(cls, type) and issubclass(cls, DefaultCallbacks)):
                raise TypeError(
                    "MultiCallbacks takes DefaultCallbacks "
                    f"subclasses (not instances); got {cls!r}."
                )
        self.callback_classes = list(callback_classes)
        self.callbacks: list[DefaultCallbacks] = []

    def __call__(self) -> MultiCallbacks:
        instance = MultiCallbacks(self.callback_classes)
        instance.callbacks = [cls() for cls in self.callback_classes]
        return instance


def _fan_out(hook: str):
    def call_each(self, **kwargs):
        for callbacks in self.callbacks:
            getattr(callbacks, hook)(**kwargs)

    call_each.__name__ = hook
    call_each.__doc__ = f"Call ``{hook}`` of each callback instance, in order."
    return call_each


for _hook in HOOKS:
    setattr(MultiCallbacks, _hook, _fan_out(_hook))


def make_callbacks(spec) -> DefaultCallbacks:
    """The instance a worker or policy uses, from ``config["callbacks"]`` (a class or
    MultiCallbacks)."""
    if spec is None:
        return DefaultCallbacks()
    if isinstance(spec, DefaultCallbacks) and not isinstance(spec, MultiCallbacks):
        raise TypeError(
            f'config["callbacks"] should be a class, e.g. MyCallbacks, not an instance {spec!r}: '
            "every worker makes its own instance."
        )
    callbacks = spec()
    if not isinstance(callbacks, DefaultCallbacks):
        raise TypeError(f'config["callbacks"] must be a DefaultCallbacks subclass; got {spec!r}.')
    return callbacks
