"""A repository on the fake GitHub and ``ci-perf action`` runs on it, as the runner starts them.

``Repo.environ`` is what a Docker action receives for an event; ``act`` runs ``run_action`` with it.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ci_perf.action import run_action
from tests.conftest import DemoService
from tests.support.fake_github import FakeGitHub

REPO = "acme/shop"
TOKEN = "ghs_test_installation_token"
DATA = "ci-perf-data"
FAST = {"CI_PERF_GITHUB_WRITE_INTERVAL": "0", "CI_PERF_GITHUB_BACKOFF": "0.01"}


def config_text(p95_budget_ms: float = 5_000) -> str:
    return (
        "endpoints:\n"
        "  - GET /api/products\n"
        "load: {users: 4, spawn_rate: 20, duration: 3s, warmup: 0s, window: 1s}\n"
        "readiness: {path: /api/products, timeout: 10s}\n"
        f"performance_budget:\n  api_endpoints: {{p95_latency_ms: {p95_budget_ms}}}\n"
    )


@dataclass
class Repo:
    fake: FakeGitHub
    workspace: Path
    main_sha: str
    target: str

    def environ(self, event_name: str, event: dict[str, object], **extra: str) -> dict[str, str]:
        event_path = self.workspace.parent / f"event-{event_name}.json"
        event_path.write_text(json.dumps({"repository": {"default_branch": "main"}, **event}))
        environ = {
            "PATH": os.environ["PATH"],
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": self.fake.url,
            "GITHUB_SERVER_URL": self.fake.web_url,
            "GITHUB_RUN_ID": "4242",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(self.workspace.parent / "output.txt"),
            "GITHUB_STEP_SUMMARY": str(self.workspace.parent / "summary.md"),
            "INPUT_GITHUB_TOKEN": TOKEN,
            "INPUT_TARGET_URL": self.target,
            **FAST,
        }
        environ.update(extra)
        return environ

    def push(self, **extra: str) -> tuple[int, str]:
        environ = self.environ("push", {}, GITHUB_REF="refs/heads/main", GITHUB_SHA=self.main_sha, **extra)
        return act(environ, self.workspace)

    def pull_request(self, number: int, head_sha: str, **extra: str) -> tuple[int, str]:
        event = {
            "pull_request": {
                "number": number,
                "head": {"sha": head_sha, "ref": "feature", "repo": {"full_name": REPO}},
                "base": {"sha": self.main_sha, "ref": "main", "repo": {"full_name": REPO}},
            }
        }
        environ = self.environ("pull_request", event, GITHUB_REF=f"refs/pull/{number}/merge", **extra)
        return act(environ, self.workspace)

    def open_pull(self, number: int, *, head_files: dict[str, str] | None = None) -> str:
        head = self.fake.add_commit(REPO, parents=[self.main_sha], files=head_files or {"app.py": "v2"})
        self.fake.add_pull(REPO, number, head_sha=head, head_ref="feature", base_ref="main", base_sha=self.main_sha)
        return head

    def outputs(self) -> dict[str, str]:
        lines = (self.workspace.parent / "output.txt").read_text().splitlines()
        values, index = {}, 0
        while index < len(lines):
            name, delimiter = lines[index].split("<<")
            end = lines.index(delimiter, index + 1)
            values[name] = "\n".join(lines[index + 1 : end])
            index = end + 1
        return values


def act(environ: dict[str, str], workspace: Path) -> tuple[int, str]:
    stream = io.StringIO()
    code = run_action(environ, cwd=workspace, stream=stream)
    return code, stream.getvalue()


def make_repo(fake: FakeGitHub, tmp: Path, demo: DemoService, *, base_budget_ms: float = 5_000) -> Repo:
    fake.add_token(TOKEN, kind="app")
    fake.add_repo(REPO)
    main_sha = fake.add_commit(REPO, files={"ci-perf.yml": config_text(base_budget_ms)}, branch="main")
    workspace = tmp / "workspace"
    workspace.mkdir()
    (workspace / "ci-perf.yml").write_text(config_text(base_budget_ms))
    return Repo(fake=fake, workspace=workspace, main_sha=main_sha, target=demo.url)
