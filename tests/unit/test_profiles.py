"""Load profiles, stages and the open model's schedule (pure), and their config errors."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from ci_perf import profiles
from ci_perf.config import Config, LoadSettings, parse_config, with_comparison
from ci_perf.errors import ConfigError
from ci_perf.loadtest.runner import locust_files
from tests.conftest import write


def _ticks(load: LoadSettings, every: float = 1.0) -> list[int]:
    plan = load.stage_plan()
    assert plan is not None
    ticks = []
    t = 0.0
    while (wanted := profiles.users_at(plan, t, spawn_rate=load.spawn_rate)) is not None:
        ticks.append(wanted[0])
        t += every
    return ticks


def test_stress_steps_through_the_factors_of_the_target() -> None:
    load = LoadSettings(profile="stress", users=4, duration=16, warmup=2)
    assert _ticks(load, every=4.0) == [4, 6, 8, 12]


def test_spike_jumps_for_a_fifth_of_the_run_and_comes_back() -> None:
    load = LoadSettings(profile="spike", users=4, spike_users=20, duration=10, warmup=1)
    assert _ticks(load) == [4, 4, 4, 4, 20, 20, 4, 4, 4, 4]


def test_breakpoint_climbs_in_steps_up_to_max_users_and_sets_its_own_duration() -> None:
    load = LoadSettings.model_validate(
        {"profile": "breakpoint", "users": 2, "step_users": 3, "step_duration": "5s", "max_users": 11}
    )
    assert load.duration == 20.0  # 2, 5, 8, 11
    assert _ticks(load, every=5.0) == [2, 5, 8, 11]
    assert load.warmup == 0


def test_stages_ramp_linearly_like_k6_and_set_the_duration() -> None:
    load = LoadSettings.model_validate(
        {"stages": [{"duration": "4s", "users": 8}, {"duration": "2s", "users": 8}, {"duration": "2s", "users": 0}]}
        | {"warmup": 0}
    )
    assert load.duration == 8.0
    assert _ticks(load) == [0, 2, 4, 6, 8, 8, 8, 4]


def test_smoke_and_soak_bring_their_own_defaults_and_keep_what_the_file_sets() -> None:
    smoke = LoadSettings.model_validate({"profile": "smoke"})
    assert (smoke.users, smoke.duration, smoke.warmup) == (2, 30.0, 5.0)
    assert LoadSettings.model_validate({"profile": "soak"}).duration == 600.0
    assert LoadSettings.model_validate({"profile": "soak", "duration": "2h"}).duration == 7200.0
    assert smoke.stage_plan() is None  # Locust's own spawning, no shape


def test_the_tick_holds_the_spawn_rate_for_jumps_and_follows_ramps() -> None:
    ramp = [profiles.Stage(10, 100)]
    assert profiles.users_at(ramp, 5.0, spawn_rate=1) == (50, 10.0)
    jump = [profiles.Stage(5, 10, jump=True), profiles.Stage(5, 100, jump=True)]
    assert profiles.users_at(jump, 0.0, spawn_rate=25) == (10, 25)  # from 0: the configured rate covers it
    assert profiles.users_at(jump, 5.0, spawn_rate=25) == (100, 90)  # a jump is made within the second
    assert profiles.users_at(jump, 7.0, spawn_rate=25) == (100, 25)
    assert profiles.users_at(jump, 10.0, spawn_rate=25) is None


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        pytest.param([profiles.Stage(10, 50, jump=True)], 500, id="constant"),
        pytest.param([profiles.Stage(10, 100)], 500, id="ramp-from-zero"),
        pytest.param([profiles.Stage(5, 20, jump=True), profiles.Stage(5, 60)], 300, id="ramp-up"),
    ],
)
def test_the_schedule_starts_as_many_requests_as_the_rate_owes(stages: list[profiles.Stage], expected: int) -> None:
    times = list(profiles.scheduled_starts(stages))
    assert abs(len(times) - expected) <= 1
    assert times == sorted(times)
    assert times[0] >= 0
    assert times[-1] < profiles.total(stages)


def test_processes_splitting_a_rate_together_start_the_whole_rate() -> None:
    stages = [profiles.Stage(10, 90, jump=True)]
    shares = [list(profiles.scheduled_starts(stages, share=1 / 3, offset=k / 3)) for k in range(3)]
    assert sum(len(s) for s in shares) == 900
    merged = sorted(t for s in shares for t in s)
    gaps = [b - a for a, b in itertools.pairwise(merged)]
    assert max(gaps) < 0.02  # interleaved, not bunched


def test_arrival_rates_parse_per_second_minute_and_hour() -> None:
    for text, rate in [("200/s", 200.0), ("1200/m", 20.0), ("7200/h", 2.0), (50, 50.0)]:
        assert LoadSettings(arrival_rate=text).arrival_rate == rate  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("load", "message"),
    [
        pytest.param("{profile: load, spike_users: 9}", "spike_users is a setting of profile: spike", id="foreign"),
        pytest.param("{profile: stress, stages: [{duration: 5s, users: 2}]}", "stages replace", id="stages+profile"),
        pytest.param("{stages: [{duration: 5s}]}", "either users or arrival_rate", id="stage-target"),
        pytest.param(
            "{duration: 20s, stages: [{duration: 15s, users: 2}]}", "differs from the stages' total", id="duration"
        ),
        pytest.param("{arrival_rate: fast}", "is not an arrival rate", id="rate"),
        pytest.param("{profile: breakpoint}", "needs a limit", id="breakpoint-limit"),
        pytest.param("{processes: 2, workers: 2}", "either workers", id="workers+processes"),
        pytest.param("{processes: many}", "processes", id="processes"),
    ],
)
def test_profile_settings_that_do_not_fit_are_config_errors(tmp_path: Path, load: str, message: str) -> None:
    path = write(tmp_path / "ci-perf.yml", f"endpoints: [GET /]\nload: {load}\n")
    with pytest.raises(ConfigError, match=message):
        parse_config(path.read_text(), source=path)


def test_the_open_model_needs_endpoints_not_a_locustfile(tmp_path: Path) -> None:
    write(tmp_path / "locustfile.py", "from locust import HttpUser\n")
    path = write(tmp_path / "ci-perf.yml", "locustfile: locustfile.py\nload: {arrival_rate: 10/s}\n")
    with pytest.raises(ConfigError, match="arrival_rate needs endpoints"):
        parse_config(path.read_text(), source=path)


def test_breakpoint_limits_default_to_the_budget() -> None:
    config = Config.model_validate(
        {
            "endpoints": ["GET /"],
            "load": {"profile": "breakpoint"},
            "performance_budget": {"api_endpoints": {"p95_latency_ms": 300, "error_rate_percent": 1}},
        }
    )
    assert config.break_limits() == {"p95_latency_ms": 300.0, "error_rate_percent": 1.0}


def test_locust_loads_the_plugins_each_profile_needs() -> None:
    def names(load: dict[str, object]) -> list[str]:
        config = Config.model_validate({"endpoints": ["GET /"], "load": load, "performance_budget": {}})
        return [Path(f).name for f in locust_files(config)]

    assert names({}) == ["collector.py", "zero_code.py"]
    assert names({"profile": "spike"}) == ["collector.py", "shape.py", "zero_code.py"]
    assert names({"arrival_rate": "5/s"}) == ["collector.py", "open_model.py"]


def test_every_bundled_profile_config_is_valid() -> None:
    folder = Path(__file__).parents[2] / "ci_perf" / "demo" / "profiles"
    names = sorted(p.stem for p in folder.glob("*.yml"))
    assert names == ["arrival-rate", "breakpoint", "load", "smoke", "soak", "spike", "stages", "stress"]
    for path in folder.glob("*.yml"):
        parse_config(path.read_text(), source=path)


def test_the_shape_is_part_of_the_scenario_and_plain_runs_keep_their_keys() -> None:
    from ci_perf.analysis.summarize import scenario_keys

    plain = LoadSettings(users=10, duration=10, warmup=2)
    # the key stored on data branches before profiles existed: the same settings must find those runs
    before = {**plain.model_dump(include={"profile", "users", "spawn_rate", "duration", "warmup", "think_time"}),
              "endpoints": ["GET /a"]}  # fmt: skip
    old_key = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12]
    assert scenario_keys(plain, ["GET /a"])[0] == old_key
    stress = LoadSettings(profile="stress", users=4, duration=16, warmup=2)
    steeper = LoadSettings(profile="stress", users=4, duration=16, warmup=2, stress_factors=[1, 2])
    assert scenario_keys(stress, ["GET /a"]) != scenario_keys(steeper, ["GET /a"])


def test_duet_mode_and_the_open_model_do_not_mix(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ci-perf.yml",
        "endpoints: [GET /]\nload: {arrival_rate: 10/s}\ncomparison: {baseline_target: http://base:8000}\n",
    )
    with pytest.raises(ConfigError, match=r"works with users, not with load\.arrival_rate"):
        parse_config(path.read_text(), source=path)
    open_model = parse_config("endpoints: [GET /]\nload: {arrival_rate: 10/s}\n", source=path)
    with pytest.raises(ValueError, match="works with users"):
        with_comparison(open_model, baseline_target="http://base:8000")


def test_breakpoint_windows_fit_the_settled_half_of_every_step_whatever_its_phase() -> None:
    from ci_perf.analysis.summarize import summarize_run
    from ci_perf.results import CollectedRun, StepMark
    from tests.conftest import collected_run

    load = LoadSettings.model_validate({"profile": "breakpoint", "users": 10, "max_users": 40})
    window = load.window_seconds()
    assert window <= load.step_duration / 4
    default = LoadSettings.model_validate({"profile": "breakpoint"})  # 20 steps, 200 s: auto would be 5-s windows
    assert default.window_seconds() <= default.step_duration / 4
    for phase in (0.0, 0.3, 0.7, 1.2, 1.9):
        start = 1_000.0 + phase
        base = collected_run(endpoints={"GET /a": [5.0] * 20}, window_s=window, start=1_000.0, windows=int(45 / window))
        steps = [StepMark(start=start + 10 * k, target=10 + 10 * k, index=k) for k in range(4)]
        collected = CollectedRun(**{**base.model_dump(), "steps": [s.model_dump() for s in steps], "started_at": start})
        result = summarize_run(
            collected, load=load, target="http://x", tool_version="t", break_on={"p95_latency_ms": 100.0}
        )
        assert result.capacity is not None
        assert [s.users for s in result.capacity.steps] == [10, 20, 30, 40], phase
        assert result.capacity.users == 40


LIMITS = {"p95_latency_ms": 500.0, "error_rate_percent": 1.0}


@pytest.mark.parametrize(
    ("p95_ms", "error_rate_percent", "crossed"),
    [
        pytest.param(499.0, 0.5, [], id="within"),
        pytest.param(500.0, 1.0, [], id="at-the-limit-is-within"),
        pytest.param(812.4, 0.0, ["p95 812 ms > 500 ms"], id="p95"),
        pytest.param(20.0, 2.5, ["error rate 2.50 % > 1 %"], id="errors"),
        pytest.param(812.4, 2.5, ["p95 812 ms > 500 ms", "error rate 2.50 % > 1 %"], id="both-p95-first"),
        pytest.param(None, None, [], id="nothing-measured-crosses-nothing"),
    ],
)
def test_a_step_crosses_the_breakpoint_limits_it_exceeds(
    p95_ms: float | None, error_rate_percent: float | None, crossed: list[str]
) -> None:
    assert profiles.limits_crossed(LIMITS, p95_ms=p95_ms, error_rate_percent=error_rate_percent) == crossed


def test_a_limit_that_is_not_set_is_never_crossed() -> None:
    assert profiles.limits_crossed({"error_rate_percent": 1.0}, p95_ms=10_000.0, error_rate_percent=0.0) == []
    assert profiles.limits_crossed({}, p95_ms=10_000.0, error_rate_percent=100.0) == []


def test_the_breakpoint_duration_and_plan_count_the_same_steps() -> None:
    for users, step_users, max_users in [(2, 3, 11), (10, None, None), (5, 5, 7), (20, 1, 20)]:
        load = LoadSettings.model_validate(
            {"profile": "breakpoint", "users": users, "step_users": step_users, "max_users": max_users}
        )
        plan = load.stage_plan()
        assert plan is not None
        assert len(plan) == profiles.breakpoint_steps(users, step_users, max_users)
        assert load.duration == len(plan) * load.step_duration
