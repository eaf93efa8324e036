"""Host mode (host/action.yml) as the runner runs a composite action, against the demo service on 127.0.0.1.

The steps run as on the runner (tests/support/actions_runner.run_composite): bash, GITHUB_ACTION_PATH, the
file-command files, the inputs through env:. The install step is the real one: it syncs the locked
project into a new venv under RUNNER_TEMP. It downloads nothing: the Makefile's uv (.uv/bin, the pinned
version) is first on PATH, so the step uses it instead of installing uv, and UV_OFFLINE=1 makes uv take
every locked wheel and the build backend from its cache, which `make` filled when it synced .venv.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import DemoService, write
from tests.support.actions_runner import REPO, Action, CompositeRun, run_composite

CONFIG = """\
endpoints:
  - GET /api/products
load: {users: 2, spawn_rate: 2, duration: 3s, warmup: 1s, stop_timeout: 2s}
readiness: {path: /health, timeout: 10s}
performance_budget:
  api_endpoints: {p95_latency_ms: 5000}
"""


def run_host_mode(tmp_path: Path, target: str) -> tuple[CompositeRun, Path, Path]:
    workspace, temp = tmp_path / "work" / "shop" / "shop", tmp_path / "work" / "_temp"
    write(workspace / "ci-perf.yml", CONFIG)
    temp.mkdir(parents=True)
    environ = {
        "PATH": f"{REPO / '.uv' / 'bin'}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REPOSITORY": "octo-org/shop",
        "GITHUB_SHA": "5" * 40,
        "RUNNER_OS": "Linux",
    }
    run = run_composite(
        Action.load(REPO / "host" / "action.yml"),
        with_={"target_url": target, "github_token": ""},  # no GitHub API: tests/live/test_action.py covers it
        environ=environ,
        workspace=workspace,
        temp=temp,
        timeout=300,
    )
    return run, workspace, temp


def test_host_mode_installs_the_locked_ci_perf_outside_the_workspace_and_measures_a_loopback_service(
    tmp_path: Path, fresh_demo: DemoService
) -> None:
    run, workspace, temp = run_host_mode(tmp_path, fresh_demo.url)

    assert run.code == 0, run.output
    assert (temp / "ci-perf-host" / "venv" / "bin" / "ci-perf").is_file()
    assert sorted(path.name for path in workspace.iterdir()) == ["ci-perf-out", "ci-perf.yml"]
    assert run.outputs["verdict"] == "pass", run.output
    assert (workspace / run.outputs["result_path"]).is_file()
    assert (workspace / run.outputs["report_path"]).read_text().startswith("<!-- ci-perf")
    assert "GET /api/products" in run.summary
    assert fresh_demo.total() > 0
