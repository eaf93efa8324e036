from __future__ import annotations

import io
from pathlib import Path

import pytest

from ci_perf.config import Config
from ci_perf.errors import InputError
from ci_perf.loadtest.locust_config import check_extra_args
from ci_perf.loadtest.locustfiles import UserShape
from ci_perf.loadtest.runner import child_environment, locust_command, locust_files, shaped_load
from ci_perf.pipeline import ProgressLine

CONFIG = Config(endpoints=["GET /a"], load={"processes": 2, "duration": 30, "warmup": 5})  # type: ignore[list-item,arg-type]


def test_the_locustfile_never_sees_the_github_token(tmp_path: Path) -> None:
    base = {
        **dict.fromkeys(("GITHUB_TOKEN", "INPUT_GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_RUNTIME_TOKEN"), "ghs_secret"),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "ghs_secret",  # would let the locustfile mint the job's OIDC tokens
        "PATH": "/bin",
    }
    env = child_environment(CONFIG, collect_out=tmp_path / "c.json", progress=False, base=base)
    assert "ghs_secret" not in env.values()
    assert env["PATH"] == "/bin"
    assert env["CI_PERF_RUN_TIME"] == "30.0"
    assert env["CI_PERF_ENDPOINTS"] == '[{"method": "GET", "path": "/a", "body": null, "weight": 1, "headers": {}}]'


def test_several_processes_bind_the_master_to_a_free_loopback_port() -> None:
    command = locust_command(CONFIG, target="http://127.0.0.1:1", extra_args=["--tags", "x"])
    port = command[command.index("--master-bind-port") + 1]
    assert command[command.index("--master-port") + 1] == port
    assert port != "5557"
    assert command[command.index("--master-bind-host") + 1] == "127.0.0.1"
    assert command[-2:] == ["--tags", "x"]
    assert "-t" not in command  # the collector owns the clock


@pytest.mark.parametrize("flag", ["-t", "--run-time=10s", "-u", "--users", "--host", "-f", "--processes"])
def test_extra_args_that_the_config_owns_are_refused(flag: str) -> None:
    with pytest.raises(InputError, match="which ci-perf owns"):
        check_extra_args([flag, "1"])


def test_a_locustfile_is_watched_by_the_guard_and_endpoints_are_not(tmp_path: Path) -> None:
    with_file = Config(locustfile="perf/locustfile.py")
    assert [Path(f).name for f in locust_files(with_file)] == ["collector.py", "guard.py", "locustfile.py"]
    assert [Path(f).name for f in locust_files(CONFIG)] == ["collector.py", "zero_code.py"]


def test_a_locustfiles_own_shape_runs_without_ci_perfs_clock_for_its_length(tmp_path: Path) -> None:
    shape = UserShape(name="StepShape", length_s=8.0, peak_users=6)
    env = child_environment(CONFIG, collect_out=tmp_path / "c.json", progress=False, base={}, follow_shape=True)
    assert env["CI_PERF_RUN_TIME"] == "0.0"  # the collector ends the run when the shape does
    load = shaped_load(CONFIG.load, shape)
    assert (load.duration, load.users, load.warmup) == (8.0, 6, 5.0)
    assert shaped_load(CONFIG.load, None) is CONFIG.load
    unsampled = shaped_load(CONFIG.load, UserShape(name="S", length_s=None, peak_users=None))
    assert (unsampled.duration, unsampled.users) == (30.0, 20)


def test_progress_is_one_rewritten_line_on_a_terminal_and_plain_lines_in_a_log() -> None:
    sample = {"elapsed": 3.0, "total": 10.0, "rps": 120.0, "requests": 360, "failures": 0, "p95_ms": 12.5}
    terminal = io.StringIO()
    line = ProgressLine(terminal, interactive=True)
    line(sample)
    line(sample)
    line.end()
    assert terminal.getvalue().count("\r\033[K") == 3
    assert "3/10 s  120 rps  360 requests  0 errors  p95 12.5 ms" in terminal.getvalue()
    log = io.StringIO()
    plain = ProgressLine(log, interactive=False)
    plain(sample)
    plain(sample)  # within 10 s of the last one: not repeated
    assert log.getvalue().count("\n") == 1
    assert "\r" not in log.getvalue()
