"""``WorkerSet``: one local rollout worker plus N remote ones on Ray actors.

The trainer learns on the local worker's policy and samples with the remote ones; between
rounds it broadcasts weights (one ``ray.put`` copy for all workers) and merges the workers'
observation-filter statistics. With ``recreate_failed_workers`` a worker whose actor died is
replaced by a fresh one, synced to the current weights.
Introduced in notebooks/08_rollout_workers.ipynb.
"""

from __future__ import annotations

from course_lib.evaluation.rollout_worker import RolloutWorker
from course_lib.offline.input_reader import absolute_paths
from course_lib.sample_batch import MultiAgentBatch, SampleBatch
from course_lib.validation import did_you_mean, require_whole_number


class WorkerSet:
    """``local_worker()`` (index 0) and ``remote_workers()`` (indices 1..N) with the same policies.

    ``trainer_config`` keys read here: ``num_cpus_per_worker`` (default 1),
    ``num_gpus_per_worker`` (default 0: each remote worker's share of a GPU, where its policies
    then run), ``custom_resources_per_worker`` (default ``{}``: other Ray resources a worker
    needs, so that Ray places it only on nodes that have them; notebooks/15_scaling_out.ipynb),
    ``recreate_failed_workers`` (default False), plus everything ``RolloutWorker`` reads.
    ``process_seeded=True`` tells the local worker that this process's random generators are
    seeded already (by a trainer); remote workers always seed their own process.
    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(
        self,
        *,
        env_creator,
        policy_class,
        trainer_config: dict | None = None,
        num_workers: int = 0,
        process_seeded: bool = False,
    ):
        require_whole_number(num_workers, "num_workers", minimum=0)
        self._env_creator, self._policy_class = env_creator, policy_class
        self._config = absolute_paths(trainer_config or {})
        self.num_workers = num_workers
        # The local worker only needs envs when it samples itself (num_workers == 0).
        self._local = RolloutWorker(
            env_creator=env_creator,
            policy_class=policy_class,
            config=self._config,
            worker_index=0,
            num_workers=num_workers,
            create_env=num_workers == 0,
            process_seeded=process_seeded,
        )
        self._remote = [self._make_remote(index) for index in range(1, num_workers + 1)]

    def _make_remote(self, worker_index: int):
        import ray

        if not ray.is_initialized():
            raise RuntimeError(
                "num_workers > 0 needs Ray running: call course_lib.init_ray() first."
            )
        custom_resources = self._config.get("custom_resources_per_worker") or {}
        if custom_resources:
            _warn_if_no_node_has(custom_resources, ray.cluster_resources())
        actor_cls = RolloutWorker.as_remote(
            num_cpus=self._config.get("num_cpus_per_worker", 1),
            num_gpus=self._config.get("num_gpus_per_worker", 0),
            resources=custom_resources,
        )
        return actor_cls.remote(
            env_creator=self._env_creator,
            policy_class=self._policy_class,
            config=self._config,
            worker_index=worker_index,
            num_workers=self.num_workers,
        )

    def local_worker(self) -> RolloutWorker:
        return self._local

    def remote_workers(self) -> list:
        return list(self._remote)

    def sync_weights(self, global_vars: dict | None = None) -> None:
        """Send every local policy's weights to every remote worker: one stored object, N reads."""
        import ray

        if self._remote:
            weights = ray.put(self._local.get_weights())
            self._call_all("set_weights", weights, global_vars)
        if global_vars:
            self._local.set_global_vars(global_vars)

    def sync_filters(self) -> None:
        """Merge the remote workers' new observation stats into the local filters; send them out."""
        import ray

        if not self._remote:
            return
        for deltas in self._call_all("get_filters", True):
            for pid, delta in deltas.items():
                self._local.filters[pid].apply_delta(delta)
        states = ray.put({pid: f.get_state() for pid, f in self._local.filters.items()})
        self._call_all("sync_filters", states)

    def foreach_worker(self, fn) -> list:
        """``[fn(local), fn(remote_1), ...]``, each call run in that worker's process."""
        return [fn(self._local), *self._call_all("apply", fn)]

    def foreach_worker_with_index(self, fn) -> list:
        """Like ``foreach_worker`` with ``fn(worker, index)``."""

        def indexed(worker):
            return fn(worker, worker.worker_index)

        return [fn(self._local, 0), *self._call_all("apply", indexed)]

    def sample(self) -> SampleBatch | MultiAgentBatch:
        """One batch from every remote worker (or the local one if there are none), concatenated."""
        if not self._remote:
            return self._local.sample()
        return SampleBatch.concat_samples(self._call_all("sample"))

    def _call_all(self, method: str, *args) -> list:
        """Call ``method(*args)`` on every remote worker and wait for all the results.

        If a worker died: with ``recreate_failed_workers`` it is replaced and the call is made
        again on every worker (once; a second failure raises Ray's error); otherwise the error
        says which worker died and what to set.
        """
        import ray

        try:
            return ray.get([getattr(w, method).remote(*args) for w in self._remote])
        except ray.exceptions.RayActorError as err:
            if not self._config.get("recreate_failed_workers", False):
                raise RuntimeError(
                    f"Rollout worker(s) {self.find_failed_workers()} died "
                    f'({type(err).__name__}). Set "recreate_failed_workers": True in the config '
                    "to replace failed workers automatically and go on."
                ) from err
            self.recreate_failed_workers()
        return ray.get([getattr(w, method).remote(*args) for w in self._remote])

    def find_failed_workers(self) -> list[int]:
        """Indices of remote workers whose actor no longer answers."""
        import ray

        failed = []
        for index, worker in enumerate(self._remote, start=1):
            try:
                ray.get(worker.ping.remote(), timeout=30)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                failed.append(index)
        return failed

    def recreate_failed_workers(self) -> list[int]:
        """Replace dead remote workers by fresh ones (same index), synced to the current weights."""
        import ray

        failed = self.find_failed_workers()
        for index in failed:
            ray.kill(self._remote[index - 1])
            self._remote[index - 1] = self._make_remote(index)
        if failed:
            weights = ray.put(self._local.get_weights())
            states = ray.put({pid: f.get_state() for pid, f in self._local.filters.items()})
            ray.get(
                [self._remote[i - 1].set_weights.remote(weights) for i in failed]
                + [self._remote[i - 1].sync_filters.remote(states) for i in failed]
            )
        return failed

    def stop(self) -> None:
        """Close every env and free every actor."""
        import ray

        self._local.stop()
        for worker in self._remote:
            try:
                ray.get(worker.stop.remote(), timeout=10)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass
            ray.kill(worker)
        self._remote = []


def _warn_if_no_node_has(custom_resources: dict, cluster_resources: dict) -> None:
    """Warn when a worker asks for a resource no node of the cluster has: Ray would wait silently.

    A warning, not an error: an autoscaler may still add a node that has it.
    """
    import warnings

    missing = sorted(name for name in custom_resources if name not in cluster_resources)
    if missing:
        # Leave out the memory totals and Ray's per-node "node:<ip>" markers.
        known = sorted(k for k in cluster_resources if not k.endswith("memory") and ":" not in k)
        warnings.warn(
            f'"custom_resources_per_worker" asks for {missing}, which no node of this Ray cluster '
            f"has (it has {known}), so the rollout workers wait until a node with them joins."
            f"{did_you_mean(missing[0], known)} Start such nodes with "
            """ray start --resources='{"<name>": <amount>}' (or resources= in ray.init for a """
            "local Ray), or fix the name.",
            stacklevel=2,
        )
