"""A two-node Ray cluster on this machine, a trainer on it, and a node that goes away mid-training.

Run by tests/test_multinode.py in a process of its own (``python tests/multinode_scenario.py``),
so that the test session's Ray is untouched; prints one JSON line with what it saw. Ray's
``ray.cluster_utils.Cluster`` starts each "node" as its own raylet with its own resources, as
``ray start --head`` and ``ray start --address=...`` would on separate machines.

Placement: the head node and the second node have 2 CPUs each and 4 "simulator" slots; each of
the 4 rollout workers of the first trainer asks for 0.5 CPU and one slot (``num_cpus_per_worker``,
``custom_resources_per_worker``). Ray's default scheduling packs actors onto the node of their
creator (the head) until that node is half used, then goes to the least used node: 2 workers on
the head, 2 on the second node. When the second node goes, the head still has room for the 2
workers that died there, so ``recreate_failed_workers`` can start them again on the head. A
second trainer, without ``recreate_failed_workers``, has its 2 workers on the second node (they
ask for ``second_node``, a resource only that node has) and shows the error a learner gets.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import ray
from ray.cluster_utils import Cluster

import course_lib
from course_lib.agents.a3c import A2CTrainer

HEAD_NODE = {"num_cpus": 2, "resources": {"simulator": 4}, "object_store_memory": 100 * 1024**2}
SECOND_NODE = {**HEAD_NODE, "resources": {"simulator": 4, "second_node": 2}}


def worker_node(worker):
    """Runs in each rollout worker: the id of the Ray node it lives on."""
    return ray.get_runtime_context().get_node_id()


def where(trainer, names: dict[str, str]) -> list[str]:
    """The node ("head", "second", ...) of each remote worker, in worker-index order."""
    return [names[node] for node in trainer.workers.foreach_worker(worker_node)[1:]]


def trainer_config(logdir: str, **overrides) -> dict:
    return {
        "num_workers": 4,
        "num_cpus_per_worker": 0.5,
        "custom_resources_per_worker": {"simulator": 1},
        "rollout_fragment_length": 50,
        "num_envs_per_worker": 1,
        "train_batch_size": 200,
        "seed": 0,
        "logger_config": {"logdir": logdir},
        **overrides,
    }


def phase(name: str) -> None:
    """Say how far the scenario got: tests/test_multinode.py shows the last one if it fails."""
    print(f"phase: {name}", flush=True)


def summary(result: dict) -> dict:
    keys = ("training_iteration", "timesteps_total", "timesteps_this_iter", "num_healthy_workers")
    return {key: result[key] for key in keys}


def lose_a_node_while_training(cluster: Cluster, logdir: str) -> dict:
    """Two trainers on the two nodes; the second node goes; what each trainer does next."""
    seen = {}
    phase("add the second node")
    second = cluster.add_node(**SECOND_NODE)
    cluster.wait_for_nodes()
    names = {cluster.head_node.node_id: "head", second.node_id: "second"}
    phase("start two trainers")
    started = time.perf_counter()
    trainers = []  # stopped at the end, whatever happens
    try:
        trainer = A2CTrainer(
            config=trainer_config(logdir, recreate_failed_workers=True), env="CartPole-v1"
        )
        trainers.append(trainer)
        # No recreate_failed_workers; its 2 workers need "second_node", which only that node has.
        fragile = A2CTrainer(
            config=trainer_config(
                logdir, num_workers=2, custom_resources_per_worker={"second_node": 1}
            ),
            env="CartPole-v1",
        )
        trainers.append(fragile)
        phase("train before the node is lost")
        seen["before"] = summary(trainer.train())
        fragile.train()
        seen["seconds_to_first_results"] = round(time.perf_counter() - started, 1)
        seen["placed"] = where(trainer, names)
        seen["placed_without_recreation"] = where(fragile, names)
        seen["simulator_slots_free"] = ray.available_resources().get("simulator", 0)

        phase("remove the second node")
        cluster.remove_node(second)  # its raylet and the 4 rollout workers on it are killed
        phase("train after the node is lost")
        started = time.perf_counter()
        seen["after"] = [summary(trainer.train())]
        seen["seconds_to_recover"] = round(time.perf_counter() - started, 1)
        seen["after"].append(summary(trainer.train()))
        seen["replaced"] = where(trainer, names)
        seen["nodes_alive"] = sum(node["Alive"] for node in ray.nodes())
        phase("train without recreate_failed_workers")
        try:
            fragile.train()
        except RuntimeError as error:
            seen["error"] = str(error)
    finally:
        phase("stop the trainers")
        for each in trainers:
            each.stop()
    return seen


def main() -> None:
    started = time.perf_counter()
    # Cluster writes its address to Ray's "current cluster" file, which ray.init(address="auto")
    # reads; put back what was there, so that this machine's other Ray is found as before.
    address_file = ray._private.utils.get_ray_address_file(None)
    saved_address = ray._private.utils.read_ray_address()
    phase("start the head node")
    cluster = Cluster(initialize_head=True, head_node_args=HEAD_NODE)
    try:
        course_lib.init_ray(address=cluster.address)
        with tempfile.TemporaryDirectory() as logdir:
            seen = lose_a_node_while_training(cluster, logdir)
    finally:
        phase("shut the cluster down")
        ray.shutdown()
        cluster.shutdown()
        if saved_address is None:
            if os.path.exists(address_file):
                os.remove(address_file)
        else:
            with open(address_file, "w") as file:
                file.write(saved_address)
    seen["seconds_total"] = round(time.perf_counter() - started, 1)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
