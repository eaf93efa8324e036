"""The action's ``mode: watch`` against the fake GitHub: the change points of the data branch's runs on the
default branch, in the job summary and the ``change_points`` output; no load, no writes (issue 13, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.results import RunResult
from ci_perf.store.github_branch import DataBranchStore
from tests.support.action_repo import DATA, REPO, TOKEN, Repo, act, config_text
from tests.support.fake_github import FakeGitHub
from tests.support.runs import commit_sha, main_run
from tests.support.workflow_commands import workflow_commands

HOSTILE = "GET /x ::error::boom"
STEP_AT = 8


def _run(i: int, *, scale: float) -> RunResult:
    return main_run(i, scale=scale, slow=1.3 if i >= STEP_AT else 1.0, slow_endpoint=HOSTILE)


def _recorded_repo(fake: FakeGitHub, tmp_path: Path) -> Repo:
    fake.add_token(TOKEN, kind="app")
    fake.add_repo(REPO)
    main_sha = fake.add_commit(REPO, files={"ci-perf.yml": config_text()}, branch="main")
    gateway = GitHubGateway(
        token=TOKEN, api_url=fake.url, repository=REPO, settings=GatewaySettings(seconds_between_writes=0, backoff_s=0)
    )
    rng = np.random.default_rng(3)
    try:
        store = DataBranchStore(gateway, sleep=lambda _s: None)
        for i in range(14):
            store.record(_run(i, scale=float(np.exp(rng.normal(0, 0.01)))))
    finally:
        gateway.close()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "ci-perf.yml").write_text(config_text())
    return Repo(fake=fake, workspace=workspace, main_sha=main_sha, target="http://127.0.0.1:9")  # never loaded


def test_watch_mode_lists_the_change_points_on_the_default_branch_and_writes_nothing(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    repo = _recorded_repo(fake, tmp_path)
    index = fake.read_file(REPO, DATA, "index.json")
    writes = [entry for entry in fake.requests_log if entry[0] != "GET"]
    code, log = act(repo.environ("schedule", {}, INPUT_MODE="watch"), repo.workspace)
    assert code == 0
    outputs = repo.outputs()
    assert int(outputs["change_points"]) >= 1
    summary = (repo.workspace.parent / "summary.md").read_text()
    assert f"<code>{commit_sha(STEP_AT - 1)[:7]}</code>..<code>{commit_sha(STEP_AT)[:7]}</code>" in summary
    assert "+30" in summary or "+29" in summary
    changes = json.loads((repo.workspace / "ci-perf-out" / "watch.json").read_text())["changes"]
    assert {(c["before_sha"], c["after_sha"]) for c in changes} == {(commit_sha(STEP_AT - 1), commit_sha(STEP_AT))}
    assert outputs["report_path"] == "ci-perf-out/watch.md"
    # no load, no comment, no check, no commit on the data branch: only reads
    assert [entry for entry in fake.requests_log if entry[0] != "GET"] == writes
    assert fake.read_file(REPO, DATA, "index.json") == index
    assert fake.check_runs(REPO) == []
    assert "boom p95 +" in log  # the endpoint is listed ...
    assert not [c for c in workflow_commands(log) if "boom" in c]  # ... but never as a workflow command
