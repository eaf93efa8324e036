"""The runner ↔ plugin contract: settings through the environment, stdout markers, worker reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ci_perf import sketches
from ci_perf.config import Config
from ci_perf.loadtest.protocol import (
    ENV_VARIABLES,
    PROGRESS,
    CloseOrder,
    Marker,
    PluginEndpoint,
    PluginSettings,
    Progress,
    ProtocolError,
    WorkerReport,
    marker_in,
    parse_progress,
    progress_line,
)
from ci_perf.loadtest.runner import plugin_settings
from ci_perf.profiles import Stage
from ci_perf.results import CollectedEndpointWindow, CpuSample, ErrorCount, TaskException

EVERYTHING = PluginSettings(
    collect_out=Path("/tmp/out/collected.json"),
    window_s=2.0,
    run_time=30.0,
    progress=True,
    think_time=0.5,
    endpoints=[
        PluginEndpoint(method="GET", path="/a?page=1"),
        PluginEndpoint(method="POST", path="/b", body={"id": 1, "tags": ["x"]}, weight=3),
    ],
    baseline_target="http://base:8000",
    stages=[Stage(5.0, 10.0, jump=True), Stage(5.0, 20.0)],
    arrival=[Stage(10.0, 50.0, jump=True)],
    spawn_rate=4.0,
    processes=3,
    break_on={"p95_latency_ms": 300.0, "error_rate_percent": 1.0},
    duet_first="base",
)


def test_settings_come_back_from_the_environment_unchanged() -> None:
    assert PluginSettings.from_env(EVERYTHING.to_env()) == EVERYTHING
    assert PluginSettings.from_env(PluginSettings().to_env()) == PluginSettings()


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"endpoints": ["GET /a", 'POST /b {"id": 1}']}, id="zero-code"),
        pytest.param({"endpoints": ["GET /a"], "load": {"profile": "spike"}}, id="shape"),
        pytest.param(
            {"endpoints": ["GET /a"], "load": {"profile": "breakpoint", "break_on": {"p95_latency_ms": 50}}},
            id="breakpoint",
        ),
        pytest.param({"endpoints": ["GET /a"], "load": {"arrival_rate": "20/s", "processes": 2}}, id="open-model"),
        pytest.param({"endpoints": ["GET /a"], "comparison": {"baseline_target": "http://base:1"}}, id="duet"),
    ],
)
def test_what_the_runner_tells_the_plugins_is_what_they_read(config: dict[str, object]) -> None:
    settings = plugin_settings(Config.model_validate(config), collect_out=Path("c.json"), progress=False)
    assert PluginSettings.from_env(settings.to_env()) == settings


def test_the_runner_sends_each_plan_to_the_plugin_that_follows_it() -> None:
    spike = Config.model_validate({"endpoints": ["GET /a"], "load": {"profile": "spike"}})
    settings = plugin_settings(spike, collect_out=Path("c.json"), progress=False)
    assert settings.stages == spike.load.stage_plan()
    assert settings.arrival is None
    assert settings.break_on is None
    rate = Config.model_validate({"endpoints": ["GET /a"], "load": {"arrival_rate": "20/s"}})
    settings = plugin_settings(rate, collect_out=Path("c.json"), progress=False)
    assert settings.arrival == [Stage(60.0, 20.0, jump=True)]
    assert settings.stages is None


def test_missing_or_empty_variables_keep_the_defaults() -> None:
    settings = PluginSettings.from_env({"CI_PERF_BASELINE_TARGET": "", "PATH": "/bin"})
    assert settings == PluginSettings()
    assert (settings.window_s, settings.run_time, settings.progress, settings.processes) == (1.0, 0.0, False, 1)
    assert (settings.spawn_rate, settings.endpoints, settings.collect_out, settings.baseline_target) == (
        10.0,
        [],
        None,
        None,
    )


def test_the_environment_holds_only_what_is_set_in_the_runners_spelling() -> None:
    env = EVERYTHING.to_env()
    assert set(env) == set(ENV_VARIABLES.values())
    assert env["CI_PERF_PROGRESS"] == "1"
    assert env["CI_PERF_RUN_TIME"] == "30.0"
    assert env["CI_PERF_STAGES"] == (
        '[{"duration": 5.0, "target": 10.0, "jump": true}, {"duration": 5.0, "target": 20.0, "jump": false}]'
    )
    assert "CI_PERF_BREAK_ON" not in PluginSettings().to_env()
    assert set(ENV_VARIABLES) == set(PluginSettings.model_fields)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("CI_PERF_WINDOW_S", "soon", "CI_PERF_WINDOW_S='soon': .*number", id="not-a-number"),
        pytest.param("CI_PERF_WINDOW_S", "0", "CI_PERF_WINDOW_S='0': .*greater than 0", id="out-of-range"),
        pytest.param("CI_PERF_STAGES", "[{", "CI_PERF_STAGES='\\[{' is not JSON", id="not-json"),
        pytest.param("CI_PERF_ENDPOINTS", '[{"method": "GET"}]', "CI_PERF_ENDPOINTS=.*0.path", id="incomplete"),
        pytest.param("CI_PERF_PROGRESS", "perhaps", "CI_PERF_PROGRESS='perhaps'", id="not-a-flag"),
    ],
)
def test_a_garbled_variable_is_named_in_the_error(variable: str, value: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as raised:
        PluginSettings.from_env({variable: value})
    assert "ci-perf run" in str(raised.value)


def test_markers_and_progress_lines_are_told_apart_from_locusts_output() -> None:
    assert marker_in("CI_PERF_STARTED\n") is Marker.STARTED
    assert marker_in(f"{Marker.WRITTEN}\n") is Marker.WRITTEN
    assert marker_in("CI_PERF_STARTED later\n") is None
    assert marker_in("[2024] INFO/locust.main: Starting Locust\n") is None
    progress = Progress(elapsed=3.0, total=10.0, requests=360, failures=1, rps=120.0, p95_ms=None)
    line = progress_line(progress) + "\n"
    assert line.startswith(PROGRESS)
    assert parse_progress(line) == progress
    assert marker_in(line) is None
    assert parse_progress(PROGRESS + "{not json\n") is None  # logged like any other line
    assert parse_progress("CI_PERF_STARTED\n") is None


def test_a_worker_report_survives_the_trip_to_the_master() -> None:
    window = CollectedEndpointWindow(
        arm="base",
        endpoint="GET /a",
        start=100.0,
        requests=3,
        failures=1,
        latency=sketches.of_values([1.0, 2.0, 30.0]),
        errors=[ErrorCount(message="HTTPError: 500", count=1)],
        first_start=100.1,
        last_end=100.9,
        host="other.test:8080",
        in_flight_ms=[1_200.5],
    )
    report = WorkerReport(
        windows=[window],
        cpu=[CpuSample(process="worker-1", at=100.0, percent=12.5)],
        open={"late": 2.0},
        exceptions=[TaskException(type="KeyError", message="'id'", count=4, where="locustfile.py:9")],
        final=True,
    )
    assert WorkerReport.model_validate(report.model_dump()) == report
    order = CloseOrder(at=101.25)
    assert CloseOrder.model_validate(order.model_dump()) == order


def test_the_contract_is_light_enough_for_every_locust_process() -> None:
    code = (
        "import sys, ci_perf.loadtest.protocol; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'locust', 'scipy', 'yaml', 'jinja2', 'httpx'} "
        "or m.startswith(('ci_perf.config', 'ci_perf.analysis'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
