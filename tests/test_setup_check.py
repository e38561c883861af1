"""The environment check of lesson 00 reports facts and catches real problems."""

from __future__ import annotations

from importlib import metadata

import pytest

from course_lib import checks, setup_check


def test_this_environment_passes_without_ray():
    report = setup_check.check_setup(start_ray=False)
    assert report.ok, report.problems
    assert report.facts["gymnasium"] == metadata.version("gymnasium")
    assert report.facts["torch build"] == "CPU only"
    assert "All good" in str(report)


def test_an_out_of_range_package_is_reported_with_the_fix(monkeypatch):
    real_version = metadata.version
    monkeypatch.setattr(
        setup_check.metadata,
        "version",
        lambda name: "0.1.0" if name == "gymnasium" else real_version(name),
    )
    report = setup_check.check_setup(start_ray=False)
    assert not report.ok
    assert any(
        "gymnasium 0.1.0 is outside the supported range" in p and "make setup" in p
        for p in report.problems
    )


def test_a_running_ray_is_reused_and_left_running(ray_session):
    report = setup_check.check_setup()
    assert report.ok and report.facts["ray start"] == "already running"
    assert ray_session.is_initialized()


def test_check_mul_accepts_the_tutorials_function(capsys):
    checks.check_mul(lambda x: x * 10)
    assert "Exercise 0.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x: x + 10, "that is x \\+ 10"),
        (lambda x: None, "returned None"),
        (lambda x: [x] * 10, "should be 50"),
    ],
)
def test_check_mul_names_the_mistake(wrong, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_mul(wrong)
