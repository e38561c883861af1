"""The policies of a rollout worker: ``{policy_id: policy}`` from ``config["multiagent"]``.

A single-agent worker holds one policy, ``"default_policy"``. A multi-agent one holds one per
entry of ``config["multiagent"]["policies"]``; ``policy_mapping_fn(agent_id, episode, **kw)``
says which of them each agent of an episode acts with. Introduced in notebooks/20_multi_agent.ipynb.
"""

from __future__ import annotations

from course_lib.evaluation.env_actions import policy_action_space
from course_lib.sample_batch import DEFAULT_POLICY_ID


def default_policy_mapping_fn(agent_id, episode, **kwargs) -> str:
    """Every agent to ``"default_policy"``: all agents share one policy.

    Introduced in notebooks/20_multi_agent.ipynb.
    """
    return DEFAULT_POLICY_ID


def build_policy_map(env, default_policy_class, policy_config: dict, worker) -> dict:
    """``{policy_id: policy}`` from ``config["multiagent"]["policies"]`` or one "default_policy".

    Each entry is ``(policy_cls or None, obs_space or None, act_space or None, config_overrides)``:
    None picks the trainer's policy class and the env's spaces for the agents mapped to that
    policy. With ``normalize_actions`` a float Box action space becomes ``[-1, 1]`` for the
    policy, and ``policy.env_action_space`` keeps the env's (see env_actions.py). The policies
    are built in the order of the entries and draw their initial weights one after the other
    from the process's random stream, so no two start alike.
    Introduced in notebooks/20_multi_agent.ipynb.
    """
    multiagent = policy_config.get("multiagent") or {}
    specs = multiagent.get("policies") or {DEFAULT_POLICY_ID: (None, None, None, {})}
    mapping_fn = multiagent.get("policy_mapping_fn") or default_policy_mapping_fn
    policy_map = {}
    for pid, spec in specs.items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 4:
            raise ValueError(
                f'config["multiagent"]["policies"][{pid!r}] must be a tuple (policy_cls, '
                f"obs_space, act_space, config), each may be None / {{}}; got {spec!r}."
            )
        policy_cls, obs_space, act_space, overrides = spec
        obs_space = obs_space or _space_for(env, pid, "observation", mapping_fn, worker)
        act_space = act_space or _space_for(env, pid, "action", mapping_fn, worker)
        config = _policy_config(policy_config, overrides or {})
        policy = (policy_cls or default_policy_class)(
            obs_space, policy_action_space(act_space, config), config
        )
        # The sampler maps the policy's actions onto these bounds (env_actions.py).
        policy.env_action_space = act_space
        policy_map[pid] = policy
    return policy_map


def _policy_config(base: dict, overrides: dict) -> dict:
    """The worker's config with one policy's overrides on top (``"model"`` merged key by key)."""
    merged = {**base, **overrides}
    if isinstance(overrides.get("model"), dict):
        merged["model"] = {**(base.get("model") or {}), **overrides["model"]}
    return merged


def _space_for(env, pid: str, kind: str, mapping_fn, worker):
    """The env's ``kind`` ("observation"/"action") space for the agents mapped to policy ``pid``."""
    try:
        return getattr(env, f"{kind}_space")
    except AttributeError:
        pass  # agents have different spaces: find an agent that this policy controls
    agent_ids = sorted(env.get_agent_ids(), key=str)
    for agent_id in agent_ids:
        if mapping_fn(agent_id, None, worker=worker) == pid:
            return getattr(env, f"{kind}_space_for")(agent_id)
    raise ValueError(
        f"Cannot tell the {kind} space of policy {pid!r}: the env's agents have different "
        f"spaces and policy_mapping_fn(agent_id, None) maps none of {agent_ids} to it. Give the "
        f'space in config["multiagent"]["policies"][{pid!r}] = (cls, obs_space, act_space, config).'
    )
