"""A locustfile's own LoadTestShape is honoured whole or refused with its equivalent stages; errors name the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ci_perf.config import LoadSettings
from ci_perf.errors import InputError
from ci_perf.loadtest.inspection import (
    LocustfileReport,
    ShapeSample,
    bad_input_line,
    describe,
    parse_bad_input,
    where_in,
)
from ci_perf.loadtest.locustfiles import check_locustfile, might_have_a_shape, stages_for, user_shape
from ci_perf.profiles import users_at
from tests.conftest import write

# (until second, users, spawn rate): 2 users, then 6, then 3; the end at 8 s
STEPS = ShapeSample(
    name="StepShape", ticks=[(0.0, 2, 10.0), (3.0, 6, 10.0), (6.0, 3, 10.0)], ends_at=8.0
)  # fmt: skip
REPORT = LocustfileReport(users=["Shopper"], shapes=[STEPS])


def _load(text: str) -> LoadSettings:
    return LoadSettings.model_validate(yaml.safe_load(text))


def test_with_profile_load_the_shape_runs_whole_for_its_length_and_peak() -> None:
    shape = user_shape(_load("{warmup: 1s}"), REPORT)
    assert shape is not None
    assert (shape.name, shape.length_s, shape.peak_users) == ("StepShape", 8.0, 6)
    assert user_shape(_load("{warmup: 1s}"), LocustfileReport(users=["Shopper"])) is None


@pytest.mark.parametrize(
    ("load", "named"),
    [
        pytest.param("{profile: stress, warmup: 1s}", "profile: stress", id="stress"),
        pytest.param("{profile: spike, warmup: 1s}", "profile: spike", id="spike"),
        pytest.param("{profile: soak, warmup: 1s}", "profile: soak", id="soak"),
        pytest.param("{profile: breakpoint}", "profile: breakpoint", id="breakpoint"),
        pytest.param("{stages: [{duration: 5s, users: 2}], warmup: 1s}", "load.stages", id="stages"),
        pytest.param("{arrival_rate: 5/s, warmup: 1s}", "load.arrival_rate", id="arrival-rate"),
    ],
)
def test_with_any_other_shape_the_run_is_refused_with_the_equivalent_stages(load: str, named: str) -> None:
    with pytest.raises(InputError) as caught:
        user_shape(_load(load), REPORT)
    message = str(caught.value)
    assert message.startswith(f"the locustfile's LoadTestShape StepShape sets the load, and so does {named}")
    assert f"Either remove {named}" in message
    assert message.endswith(
        "load:\n  stages:\n"
        "    - {duration: 200ms, users: 2}\n    - {duration: 2.8s, users: 2}\n"
        "    - {duration: 400ms, users: 6}\n    - {duration: 2.6s, users: 6}\n"
        "    - {duration: 300ms, users: 3}\n    - {duration: 1.7s, users: 3}"
    )


def test_the_equivalent_stages_follow_the_shape_second_by_second() -> None:
    """What ci-perf's own shape asks for at each tick matches what the locustfile's shape asked."""
    stages = stages_for(STEPS)
    assert sum(d for d, _ in stages) == pytest.approx(8.0)
    load = LoadSettings.model_validate({"warmup": 1, "stages": [{"duration": d, "users": u} for d, u in stages]})
    plan = load.stage_plan()
    assert plan is not None
    asked = [users_at(plan, t + 0.9, spawn_rate=10)[0] for t in range(8)]  # type: ignore[index]
    assert asked == [2, 2, 2, 6, 6, 6, 3, 3]


def test_a_ramp_slower_than_the_ticks_becomes_the_users_reached_when_the_target_changes() -> None:
    slow = ShapeSample(name="Slow", ticks=[(0.0, 10, 1.0), (4.0, 2, 100.0)], ends_at=6.0)
    assert stages_for(slow) == [(4.0, 4), (0.1, 2), (1.9, 2)]


def test_only_a_changed_spawn_rate_makes_no_new_stage() -> None:
    rates = ShapeSample(name="Rates", ticks=[(0.0, 5, 100.0), (2.0, 5, 1.0)], ends_at=4.0)
    assert stages_for(rates) == [(0.1, 5), (3.9, 5)]


def test_a_shape_that_never_ends_or_ends_in_the_warmup_is_refused() -> None:
    endless = LocustfileReport(users=["U"], shapes=[ShapeSample(name="Forever", ticks=[(0.0, 5, 1.0)])])
    with pytest.raises(InputError, match="Forever does not end within 1h"):
        user_shape(_load("{}"), endless)
    with pytest.raises(InputError, match=re.escape("ends after 8s, within load.warmup")):
        user_shape(_load("{warmup: 10s}"), REPORT)


def test_a_shape_that_cannot_be_sampled_runs_whole_or_is_refused_by_name() -> None:
    needs_runner = ShapeSample(name="ByUsers", error="AttributeError: 'NoneType' object has no attribute 'user_count'")
    report = LocustfileReport(users=["U"], shapes=[needs_runner])
    shape = user_shape(_load("{}"), report)
    assert shape is not None
    assert (shape.length_s, shape.peak_users) == (None, None)
    with pytest.raises(
        InputError, match=re.escape("describe its steps in load.stages (its tick() could not be sampled")
    ):
        user_shape(_load("{profile: stress}"), report)


def test_the_probe_looks_only_where_a_shape_may_be(tmp_path: Path) -> None:
    assert might_have_a_shape("class Ramp(LoadTestShape):")
    assert might_have_a_shape("from shapes import StepShape")
    assert might_have_a_shape("from helpers import *")
    assert not might_have_a_shape("from locust import HttpUser, task")
    source = "from locust import HttpUser\n"
    assert check_locustfile(write(tmp_path / "locustfile.py", source)) == source


def test_a_bad_input_line_carries_one_sentence() -> None:
    line = bad_input_line('user class U raised KeyError: "x"\nsecond line')
    assert "\n" not in line
    assert parse_bad_input(line) == 'user class U raised KeyError: "x"\nsecond line'
    assert parse_bad_input("CI_PERF_BAD_INPUT not json") is None
    assert parse_bad_input("[2026] INFO something") is None


def test_an_exception_is_named_by_its_type_message_and_innermost_locustfile_line(tmp_path: Path) -> None:
    path = write(tmp_path / "locustfile.py", "import os\n\ndef host():\n    return os.environ['API_HOST_X']\n")
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(KeyError) as caught:
        namespace["host"]()  # type: ignore[operator]
    where = where_in(caught.value.__traceback__, {path.resolve()})
    assert where == "locustfile.py:4"
    assert describe(caught.value, where=where) == "KeyError: 'API_HOST_X' (locustfile.py:4)"
    assert describe(ValueError(), where=None) == "ValueError"
