from __future__ import annotations

from pathlib import Path

import pytest

from ci_perf.cli import main
from ci_perf.config import config_schema, format_duration, load_config, parse_duration
from ci_perf.errors import ConfigError
from tests.conftest import write

VALID = """\
target: http://127.0.0.1:8000
endpoints:
  - GET /api/products?page=1
  - 'POST /api/orders {"productId": 1, "quantity": 2}'
load: {users: 5, duration: 90s, warmup: 10s}
performance_budget:
  api_endpoints:
    p50_latency_ms: 50
    p95_latency_ms: 200
    p99_latency_ms: 500
    max_latency_ms: 2000
    error_rate_percent: 0.1
    throughput_rps: 1000
  database:
    query_p95_ms: 50
    query_p99_ms: 200
    connection_pool_utilization: 70
    slow_query_threshold_ms: 100
  external_services:
    p95_latency_ms: 300
    timeout_ms: 5000
    retry_count: 3
    circuit_breaker_threshold: 50
  endpoints:
    "POST /api/orders*": {p95_latency_ms: 300}
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90, id="seconds"),
        pytest.param("2m", 120, id="minutes"),
        pytest.param("1h", 3600, id="hours"),
        pytest.param("1m30s", 90, id="combined"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param(45, 45, id="bare-number"),
        pytest.param("12", 12, id="numeric-string"),
    ],
)
def test_durations_parse_with_units(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 minutes", "5min", "", "m", "1x", "ten seconds"])
def test_durations_without_a_known_unit_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="90s, 2m, 1h"):
        parse_duration(text)


def test_format_duration_is_the_inverse_for_display() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(3600) == "1h"
    assert format_duration(0.25) == "250ms"


def test_the_seed_budget_is_accepted_verbatim(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "ci-perf.yml", VALID))
    budget = config.gate.performance_budget
    assert budget.api_endpoints.p95_latency_ms == 200
    assert budget.api_endpoints.throughput_rps == 1000
    assert budget.database == {
        "query_p95_ms": 50,
        "query_p99_ms": 200,
        "connection_pool_utilization": 70,
        "slow_query_threshold_ms": 100,
    }
    assert budget.external_services is not None
    assert budget.external_services["retry_count"] == 3
    assert config.endpoints is not None
    assert config.endpoints[1].body == {"productId": 1, "quantity": 2}
    assert config.endpoints[0].name == "GET /api/products?page=1"


def test_window_is_sized_for_at_least_thirty_windows_and_never_under_a_second(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.yml", VALID))
    assert config.load.window_seconds() == 2.0  # 80 s after warm-up / 30 → 2.67 → 2 s
    short = load_config(
        write(tmp_path / "s.yml", VALID.replace("duration: 90s", "duration: 5s").replace("10s}", "1s}"))
    )
    assert short.load.window_seconds() == 1.0


def test_schema_command_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert '"performance_budget"' in out
    assert config_schema()["title"] == "ci-perf.yml"


def test_validate_command_accepts_a_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "ci-perf.yml", VALID)
    assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_command_finds_a_syntax_error_in_the_locustfile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "perf" / "locustfile.py", "from locust import HttpUser\n\nclass Shop(HttpUser:\n    pass\n")
    path = write(tmp_path / "ci-perf.yml", "target: http://127.0.0.1:8000\nlocustfile: perf/locustfile.py\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "locustfile.py:3: syntax error" in err
    assert "Traceback" not in err


BAD_INPUT = [
    pytest.param("load:\n  users: 5\n duration: 3s\n", ["line 3", "invalid YAML"], id="yaml-syntax"),
    pytest.param(VALID + "lod: {}\n", [":26", "lod", "unknown key", "did you mean 'load'"], id="unknown-key"),
    pytest.param(VALID.replace("users: 5", "users: many"), [":5", "load.users", "expected a number"], id="wrong-type"),
    pytest.param(VALID.replace("duration: 90s", "duration: 0s"), ["load.duration", "must be positive"], id="zero-dur"),
    pytest.param(VALID.replace("duration: 90s", "duration: -5"), ["load.duration", "positive"], id="negative"),
    pytest.param(VALID.replace("warmup: 10s", "warmup: 90s"), ["load", "warmup (1m30s) must be shorter"], id="warmup"),
    pytest.param(VALID.replace("duration: 90s", "duration: 5 minutes"), ["load.duration", "90s, 2m, 1h"], id="5-min"),
    pytest.param(VALID.replace("http://127.0.0.1:8000", "ftp://host"), [":1", "target", "http(s) URL"], id="url"),
    pytest.param(
        VALID.replace("endpoints:\n  - GET", "locustfile: perf/missing.py\nx:\n  - GET"),
        ["unknown key"],
        id="stray-key",
    ),
    pytest.param(
        VALID.replace("p95_latency_ms: 200", "p95_latency_ms: fast"),
        [":9", "performance_budget.api_endpoints.p95_latency_ms", "expected a number"],
        id="budget-not-numeric",
    ),
    pytest.param(
        VALID.replace("retry_count: 3", "retry_count: three"),
        ["performance_budget.external_services.retry_count", "expected a number"],
        id="budget-section-not-numeric",
    ),
    pytest.param("target: http://x\n", ["set locustfile: (a Locust file) or endpoints:"], id="no-users"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUT)
def test_bad_config_gives_one_readable_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    path = write(tmp_path / "ci-perf.yml", text)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert str(path) in captured.err
    for fragment in expected:
        assert fragment in captured.err


def test_missing_locustfile_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path / "ci-perf.yml", "target: http://127.0.0.1:1\nlocustfile: perf/locustfile.py\n")
    with pytest.raises(ConfigError, match=r"ci-perf.yml:2: locustfile: .*perf/locustfile.py does not exist"):
        load_config(path)


def test_missing_config_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "perf" / "locustfile.py", "")
    config = load_config(write(tmp_path / "ci-perf.yml", "locustfile: perf/locustfile.py\n"))
    assert config.locustfile == str(tmp_path / "perf" / "locustfile.py")
    assert config.store.path == str(tmp_path / ".ci-perf")
