"""Graders of the scaling-out lesson (15): the reference passes, the stub and every typical mistake
fail with the message that names it. The wrong answers are written here as a learner would write
them, independently of the graders' own list."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import checks


def stub(*args):
    raise NotImplementedError("Exercise 15.x: replace this line with your code.")


# --- 15.1 V-trace targets ------------------------------------------------------------------------


def vtrace_written_out(
    log_rhos,
    discounts,
    rewards,
    values,
    bootstrap_value,
    clip_rho_threshold,
    clip_c_threshold,
    *,
    rho_clip=True,
    c_clip="c",
    trace_discount=True,
    delta_discount=True,
    bootstrap="given",
    output="vs",
):
    """V-trace as a learner writes it, one backward loop, with each usual slip as a switch."""
    rhos = np.exp(log_rhos)
    rho_bar = np.minimum(rhos, clip_rho_threshold) if rho_clip else rhos
    c_threshold = {"c": clip_c_threshold, "rho": clip_rho_threshold, None: np.inf}[c_clip]
    cs = np.minimum(rhos, c_threshold)
    last = {"given": bootstrap_value, "zero": 0.0 * bootstrap_value, "own": values[-1]}[bootstrap]
    next_values = np.concatenate([values[1:], last[None]], axis=0)
    delta_gamma = discounts if delta_discount else 1.0
    trace_gamma = discounts if trace_discount else np.ones_like(discounts)
    deltas = rho_bar * (rewards + delta_gamma * next_values - values)
    corrections = np.zeros_like(values)
    running = np.zeros_like(bootstrap_value)
    for t in reversed(range(len(values))):
        running = deltas[t] + trace_gamma[t] * cs[t] * running
        corrections[t] = running
    vs = values + corrections
    if output == "corrections":
        return corrections
    if output == "pg_advantages":
        next_vs = np.concatenate([vs[1:], last[None]], axis=0)
        return rho_bar * (rewards + discounts * next_vs - values)
    return vs


def vtrace_with(**slips):
    def vtrace_targets(*args):
        return vtrace_written_out(*args, **slips)

    return vtrace_targets


def vtrace_in_torch(log_rhos, discounts, rewards, values, bootstrap_value, rho_max, c_max):
    """A right answer in torch, returning a tensor."""
    log_rhos, discounts, rewards, values, bootstrap_value = (
        torch.as_tensor(x, dtype=torch.float64)
        for x in (log_rhos, discounts, rewards, values, bootstrap_value)
    )
    rhos = log_rhos.exp()
    rho_bar, cs = rhos.clamp(max=rho_max), rhos.clamp(max=c_max)
    next_values = torch.cat([values[1:], bootstrap_value[None]])
    deltas = rho_bar * (rewards + discounts * next_values - values)
    vs_minus_v, running = [], torch.zeros_like(bootstrap_value)
    for t in reversed(range(len(values))):
        running = deltas[t] + discounts[t] * cs[t] * running
        vs_minus_v.append(running)
    return values + torch.stack(vs_minus_v[::-1])


def vtrace_ignoring_rhos(log_rhos, *args):
    return vtrace_written_out(np.zeros_like(log_rhos), *args)


def vtrace_ignoring_thresholds(*args):
    return vtrace_written_out(*args[:5], 1.0, 1.0)


@pytest.mark.parametrize("answer", [vtrace_with(), vtrace_in_torch])
def test_vtrace_targets_accepts_right_answers(answer, capsys):
    checks.check_vtrace_targets(answer)
    assert "Exercise 15.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 15.x"),
        (vtrace_with(rho_clip=False, c_clip=None), "neither rho nor c is truncated"),
        (vtrace_with(rho_clip=False), "weighted by the raw rho_t"),
        (vtrace_with(c_clip=None), "trace coefficients c_t are not truncated"),
        (vtrace_with(c_clip="rho"), "your c_t is clipped at clip_rho_threshold"),
        (vtrace_ignoring_rhos, "ignore the importance ratios"),
        (vtrace_with(trace_discount=False, delta_discount=False), "the discounts never enter"),
        (vtrace_with(trace_discount=False), "does not stop at the end of an episode"),
        (vtrace_with(delta_discount=False), "the TD error has no discount"),
        (vtrace_with(bootstrap="zero"), "the value after the last step is taken as 0"),
        (vtrace_with(bootstrap="own"), "bootstraps from values\\[-1\\]"),
        (vtrace_with(output="corrections"), "you returned v_s - V\\(x_s\\)"),
        (vtrace_with(output="pg_advantages"), "also the actor.s advantages"),
        (lambda *args: vtrace_with()(*args).T, "That is \\(B, T\\)"),
        (
            lambda *args: np.concatenate([vtrace_with()(*args), args[4][None]]),
            "Drop the row of the bootstrap value",
        ),
        (vtrace_ignoring_thresholds, "clips at 1.0 whatever thresholds it is given"),
        (lambda *args: vtrace_with()(*args) + 0.01, "first differ at step 0 of fragment 0"),
        (lambda *args: None, "returned None"),
    ],
)
def test_vtrace_targets_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_vtrace_targets(wrong)


def test_vtrace_targets_reports_a_crash_in_the_learners_code():
    def crashes(log_rhos, *args):
        return np.exp(log_rhos) @ np.ones(7)  # (T, B) @ (7,): a shape error

    with pytest.raises(checks.CheckFailed, match="ValueError"):
        checks.check_vtrace_targets(crashes)


# --- 15.2 the ES gradient -------------------------------------------------------------------------


def ranks_written_out(returns):
    """Centered ranks as a learner writes them: argsort of argsort, scaled to [-0.5, 0.5]."""
    flat = np.asarray(returns, dtype=np.float64).ravel()
    ranks = np.empty(flat.size)
    ranks[np.argsort(flat)] = np.arange(flat.size)
    return (ranks / (flat.size - 1) - 0.5).reshape(np.shape(returns))


def es_gradient_written_out(
    noise,
    offsets,
    returns,
    num_params,
    noise_stdev,
    *,
    weights_of=ranks_written_out,
    sign=1.0,
    divide_by=lambda pairs, sigma: 2 * pairs * sigma,
    noise_scale=1.0,
    minus_column=True,
):
    eps = np.stack([noise[o : o + num_params] for o in offsets]) * noise_scale
    weights = weights_of(returns)
    differences = weights[:, 0] - (weights[:, 1] if minus_column else 0.0)
    return sign * differences @ eps / divide_by(len(offsets), noise_stdev)


def es_with(**slips):
    def es_gradient(*args):
        return es_gradient_written_out(*args, **slips)

    return es_gradient


def es_in_torch(noise, offsets, returns, num_params, noise_stdev):
    flat = torch.as_tensor(returns, dtype=torch.float64).flatten()
    ranks = torch.empty_like(flat)
    ranks[flat.argsort()] = torch.arange(len(flat), dtype=torch.float64)
    weights = (ranks / (len(flat) - 1) - 0.5).reshape(-1, 2)
    eps = torch.stack([torch.as_tensor(noise[o : o + num_params].copy()) for o in offsets])
    return (weights[:, 0] - weights[:, 1]).to(eps.dtype) @ eps / (2 * len(offsets) * noise_stdev)


def ranks_per_column(returns):
    return np.stack([ranks_written_out(returns[:, 0]), ranks_written_out(returns[:, 1])], axis=1)


def ranks_unscaled(returns):
    return (ranks_written_out(returns) + 0.5) * (returns.size - 1)


def es_with_fixed_sigma(noise, offsets, returns, num_params, noise_stdev):
    return es_with()(noise, offsets, returns, num_params, 0.05)


@pytest.mark.parametrize("answer", [es_with(), es_in_torch])
def test_es_gradient_accepts_right_answers(answer, capsys):
    checks.check_es_gradient(answer)
    assert "Exercise 15.2 passed" in capsys.readouterr().out


def test_es_gradient_agrees_with_the_es_module_on_tied_returns_only_by_chance():
    """The check's returns have no ties, where a learner's argsort ranks and the module's
    average ranks agree; on CartPole's 500-and-500 ties they would not."""
    from course_lib.agents.es.es import centered_ranks

    distinct = np.array([[3.0, 1.0], [2.0, 5.0]])
    assert np.allclose(ranks_written_out(distinct), centered_ranks(distinct))
    tied = np.array([[500.0, 500.0], [20.0, 30.0]])
    assert not np.allclose(ranks_written_out(tied), centered_ranks(tied))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 15.x"),
        (es_with(weights_of=np.asarray), "you weighted the noise with the raw returns"),
        (es_with(weights_of=lambda r: r - r.mean()), "you weighted the noise with the raw returns"),
        (es_with(sign=-1.0), "your gradient points the wrong way"),
        (es_with(weights_of=lambda r: -ranks_written_out(r)), "your gradient points the wrong way"),
        (es_with(weights_of=ranks_per_column), "you ranked each column on its own"),
        (es_with(weights_of=ranks_unscaled), "your ranks are not scaled"),
        (es_with(divide_by=lambda n, sigma: 2 * sigma), "not divided by their number"),
        (es_with(divide_by=lambda n, sigma: n * sigma), "divides by 2 n sigma"),
        (es_with(divide_by=lambda n, sigma: 2 * n), "sigma is missing from the denominator"),
        (es_with(divide_by=lambda n, sigma: 2 * n * sigma**2), "divided by sigma twice"),
        (es_with(noise_scale=0.05), "or you multiplied the noise by sigma"),
        (es_with(minus_column=False), "only the theta \\+ sigma eps episodes count"),
        (
            es_with(minus_column=False, divide_by=lambda n, sigma: n * sigma),
            "only the theta \\+ sigma eps episodes count",
        ),
        (
            lambda noise, offsets, returns, n, sigma: np.stack([noise[o : o + n] for o in offsets]),
            "one row per pair",
        ),
        (lambda noise, offsets, returns, n, sigma: ranks_written_out(returns), "one number per"),
        (es_with_fixed_sigma, "num_params and noise_stdev it is given"),
        (lambda *args: es_with()(*args) + 0.01, "first difference at parameter 0"),
        (lambda *args: None, "returned None"),
    ],
)
def test_es_gradient_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_es_gradient(wrong)


def test_es_gradient_gets_a_read_only_noise_table():
    """As in the tasks, where the table is a view of the object store: writing to it fails."""

    def writes_to_noise(noise, offsets, returns, num_params, noise_stdev):
        noise *= noise_stdev
        return es_with()(noise, offsets, returns, num_params, 1.0)

    with pytest.raises(checks.CheckFailed, match="read-only"):
        checks.check_es_gradient(writes_to_noise)
