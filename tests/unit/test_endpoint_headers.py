"""Zero-code `endpoints:` with headers: `${NAME}` is checked by `validate`/`run` and expanded only inside Locust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_perf.cli import main
from ci_perf.config import Config, load_config
from ci_perf.errors import ConfigError
from ci_perf.loadtest.protocol import ENV_VARIABLES, PluginEndpoint, PluginSettings, ProtocolError
from ci_perf.loadtest.runner import SECRET_VARIABLES, child_environment
from tests.conftest import write

SECRET = "s3cr3t-value-never-printed"
WITH_HEADERS = """\
target: http://127.0.0.1:9
endpoints:
  - GET /public
  - {method: GET, path: /private, headers: {Authorization: "Bearer ${API_TOKEN}", X-Team: perf}}
"""


def _config(tmp_path: Path, text: str = WITH_HEADERS) -> Path:
    return write(tmp_path / "ci-perf.yml", text)


def test_validate_accepts_headers_whose_variables_are_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    assert main(["validate", str(_config(tmp_path))]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert SECRET not in captured.out + captured.err


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_header_variable_that_is_not_set_is_a_config_error_naming_field_and_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    path = _config(tmp_path)
    args = [command, str(path)] if command == "validate" else ["run", "--config", str(path), "--out", str(tmp_path)]
    assert main(args) == 2  # `run` says so before any readiness wait: the target here never answers
    err = capsys.readouterr().err
    assert f"{path}: endpoints[1].headers.Authorization: the environment variable API_TOKEN is not set" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_a_header_cannot_use_a_token_the_runner_withholds_from_locust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, SECRET)
    path = _config(tmp_path, WITH_HEADERS.replace("API_TOKEN", variable))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"endpoints[1].headers.Authorization: ${{{variable}}} is withheld from the load test" in err
    assert SECRET not in err


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param('{"Bad Name": x}', "'Bad Name' is not a header name", id="name"),
        pytest.param('{X-Price: "costs $5"}', "has a '$' that does not start ${NAME}", id="stray-dollar"),
        pytest.param('{X-Two: "a\\r\\nInjected: 1"}', "must be one line", id="header-injection"),
    ],
)
def test_malformed_headers_are_config_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], headers: str, message: str
) -> None:
    path = _config(tmp_path, f"target: http://127.0.0.1:9\nendpoints:\n  - {{path: /a, headers: {headers}}}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "endpoints.0.headers" in err
    assert message in err


def test_the_runner_passes_the_template_and_the_plugin_expands_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    config = load_config(_config(tmp_path))
    env = child_environment(config, collect_out=tmp_path / "c.json", progress=False, base={"API_TOKEN": SECRET})
    told = env[ENV_VARIABLES["endpoints"]]
    assert "Bearer ${API_TOKEN}" in told
    assert SECRET not in told
    private = PluginSettings.from_env(env).endpoints[1]
    assert private.request_arguments(env) == {
        "name": "/private",
        "headers": {"Authorization": f"Bearer {SECRET}", "X-Team": "perf"},
    }
    assert PluginSettings.from_env(env).endpoints[0].request_arguments(env) == {"name": "/public"}


def test_the_runner_refuses_to_start_locust_without_the_variable(tmp_path: Path) -> None:
    config = Config.model_validate({"endpoints": [{"path": "/a", "headers": {"Authorization": "${API_TOKEN}"}}]})
    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.headers\.Authorization: the environment variable API"):
        child_environment(config, collect_out=tmp_path / "c.json", progress=False, base={})


def test_a_plugin_started_by_hand_without_the_variable_names_it() -> None:
    endpoint = PluginEndpoint(method="GET", path="/a", headers={"Authorization": "Bearer ${API_TOKEN}"})
    with pytest.raises(ProtocolError, match=r"uses \$\{API_TOKEN\}, which is not set"):
        endpoint.request_arguments({})


def test_a_body_and_headers_go_together() -> None:
    endpoint = PluginEndpoint(method="POST", path="/o", body={"id": 1}, headers={"X-A": "$$literal ${B}"})
    assert endpoint.request_arguments({"B": "b"}) == {"name": "/o", "json": {"id": 1}, "headers": {"X-A": "$literal b"}}
    assert json.loads(PluginSettings(endpoints=[endpoint]).to_env()[ENV_VARIABLES["endpoints"]])[0]["headers"] == {
        "X-A": "$$literal ${B}"
    }
