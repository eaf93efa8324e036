"""ci-perf owns Locust's settings: owned options are refused in every spelling and from every source.

Whether this table matches Locust's own parser is checked against real Locust in
tests/live/test_locust_settings_live.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ci_perf.errors import InputError
from ci_perf.loadtest.locust_config import (
    OWNED,
    check_config_files,
    check_environment,
    check_extra_args,
    check_locust_settings,
    config_files,
    options_in_args,
    settings_in_file,
)
from tests.conftest import write


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        pytest.param(["-u10"], "load.users", id="compact-short"),
        pytest.param(["-u", "10"], "load.users", id="short"),
        pytest.param(["--users=10"], "load.users", id="long-equals"),
        pytest.param(["--users", "10"], "load.users", id="long"),
        pytest.param(["--user", "10"], "load.users", id="abbreviated"),
        pytest.param(["-t3s"], "load.duration", id="compact-run-time"),
        pytest.param(["--run-t", "3s"], "load.duration", id="abbreviated-run-time"),
        pytest.param(["--tags", "x", "-r=5"], "load.spawn_rate", id="after-a-passed-option"),
        pytest.param(["-s5"], "load.stop_timeout", id="stop-timeout-short"),
        pytest.param(["-Hhttp://x"], "target", id="host"),
        pytest.param(["--processes", "4"], "load.processes", id="processes"),
        pytest.param(["--master-b", "0.0.0.0"], "load.workers", id="ambiguous-but-all-owned"),
        pytest.param(["--exit-code-on-error", "1"], "performance_budget", id="exit-code"),
    ],
)
def test_an_owned_option_is_refused_however_it_is_spelled(args: list[str], setting: str) -> None:
    with pytest.raises(InputError, match=f"which ci-perf owns: set {setting}"):
        check_extra_args(args)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        pytest.param(["-P", "8090"], "without its web UI", id="web-port"),
        pytest.param(["--autostart"], "without its web UI", id="autostart"),
        pytest.param(["--logfile", "x.log"], "locust.log", id="logfile"),
        pytest.param(["-lu10"], "without a test", id="grouped-flags"),
        pytest.param(["--show-task-ratio"], "without a test", id="task-ratio"),
    ],
)
def test_an_option_that_would_break_the_run_says_why(args: list[str], why: str) -> None:
    with pytest.raises(InputError, match=why):
        check_extra_args(args)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--tags", "checkout", "-T", "cart"], id="tags"),
        pytest.param(["--exclude-tags", "slow"], id="exclude-tags"),
        pytest.param(["--csv", "out/locust", "--html", "r.html"], id="reports"),
        pytest.param(["--headless"], id="headless-is-what-ci-perf-does"),
        pytest.param(["--my-own-option", "5"], id="a-locustfiles-own-argument"),
        pytest.param(["Shopper", "Browser"], id="user-classes"),
        pytest.param(["--", "-u", "10"], id="after-a-double-dash-all-is-positional"),
    ],
)
def test_options_ci_perf_does_not_own_pass_through(args: list[str]) -> None:
    check_extra_args(args)


def test_an_option_reads_its_value_inline_or_from_the_next_argument() -> None:
    found = [(o.long, v) for _, o, v in options_in_args(["-u10", "--tags", "a", "--csv=x", "-l", "--config", "c"])]
    assert found == [("--users", "10"), ("--tags", "a"), ("--csv", "x"), ("--list", None), ("--config", "c")]


def test_an_owned_locust_variable_is_refused_naming_it() -> None:
    with pytest.raises(InputError) as caught:
        check_environment({"LOCUST_RUN_TIME": "8s", "PATH": "/bin"})
    assert str(caught.value) == (
        "the environment variable LOCUST_RUN_TIME='8s' sets Locust's --run-time, which ci-perf owns: "
        "set load.duration in the config and unset LOCUST_RUN_TIME for ci-perf"
    )
    check_environment({"LOCUST_TAGS": "checkout", "LOCUST_USER_CLASSES": "Shopper", "LOCUST_MY_OPTION": "1"})


def test_a_locust_conf_setting_ci_perf_owns_is_refused_with_the_fix(tmp_path: Path) -> None:
    write(tmp_path / "locust.conf", "# ours\n[locust]\ntags = [checkout]\nrun-time = 8s\n")
    with pytest.raises(InputError) as caught:
        check_locust_settings([], environ={"HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert str(caught.value) == (
        "locust.conf (run-time = 8s) sets Locust's --run-time, which ci-perf owns: "
        "set load.duration in the config and remove run-time from locust.conf"
    )


@pytest.mark.parametrize(
    ("name", "text", "refused"),
    [
        pytest.param("locust.conf", "users: 10\n", "--users", id="colon"),
        pytest.param("locust.conf", "user 10\n", "--users", id="space-and-abbreviation"),
        pytest.param("locust.conf", "--users = 10\n", "--users", id="dashes"),
        pytest.param("locust.conf", "master\n", "--master", id="bare-flag"),
        pytest.param("locust.conf", "master = false\nheadless = true\n", None, id="flag-off-and-headless"),
        pytest.param("pyproject.toml", "[tool.locust]\nprocesses = 4\n", "--processes", id="pyproject"),
        pytest.param("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '-q'\n", None, id="no-locust-section"),
        pytest.param("pyproject.toml", "[tool.locust\n", None, id="unreadable-toml-is-locusts-to-refuse"),
    ],
)
def test_config_files_are_read_as_locust_reads_them(tmp_path: Path, name: str, text: str, refused: str | None) -> None:
    write(tmp_path / name, text)
    files = config_files(cwd=tmp_path, environ={"HOME": str(tmp_path / "home")})
    assert files == [tmp_path / name]
    if refused is None:
        check_config_files(files, cwd=tmp_path)
        return
    with pytest.raises(InputError, match=f"sets Locust's {refused},"):
        check_config_files(files, cwd=tmp_path)


def test_the_home_conf_and_a_config_file_after_the_double_dash_are_read_too(tmp_path: Path) -> None:
    write(tmp_path / "home" / ".locust.conf", "tags = a\n")
    write(tmp_path / "perf" / "plain.conf", "spawn-rate = 3\n")
    files = config_files(
        cwd=tmp_path, environ={"HOME": str(tmp_path / "home")}, extra_args=["--config", "perf/plain.conf"]
    )
    assert files == [tmp_path / "home" / ".locust.conf", tmp_path / "perf" / "plain.conf"]
    with pytest.raises(InputError, match=re.escape("perf/plain.conf (spawn-rate = 3) sets Locust's --spawn-rate")):
        check_locust_settings(["--config", "perf/plain.conf"], environ={"HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert settings_in_file(tmp_path / "home" / ".locust.conf") == {"tags": "a"}


def test_every_owned_option_has_a_setting_or_a_reason() -> None:
    assert all(setting or why for setting, why in OWNED.values())
