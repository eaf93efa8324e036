"""``ci-perf action`` end to end: real Locust against the demo service, real PyGithub against the fake GitHub.

Runs go through ``run_action`` with an environment dict, exactly what the Docker action receives;
one test goes through the ``ci-perf action`` command itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import LoadSettings
from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.loadtest.readiness import NotReady
from ci_perf.report import MARKER
from ci_perf.results import load_result
from ci_perf.store.github_branch import DataBranchStore
from tests.conftest import DemoService, collected_run
from tests.support.action_repo import DATA, REPO, TOKEN, Repo, act, config_text, make_repo
from tests.support.fake_github import FakeGitHub
from tests.support.workflow_commands import workflow_commands


@dataclass
class Story:
    """A push to main records a baseline; a pull request is checked twice (the second run edits the comment)."""

    repo: Repo
    push: tuple[int, str]
    data_after_push: str | None
    first: tuple[int, str]
    first_outputs: dict[str, str]
    comments_after_first: list[dict[str, object]]
    second: tuple[int, str]
    head: str


@pytest.fixture(scope="module")
def story(demo: DemoService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with FakeGitHub() as fake:
        repo = make_repo(fake, tmp_path_factory.mktemp("story"), demo)
        push = repo.push()
        data_after_push = fake.branch_sha(REPO, DATA)
        head = repo.open_pull(7)
        fake.fail_next("POST", r"/issues/7/comments$", 502)  # one server error: retried once, then it succeeds
        first = repo.pull_request(7, head)
        first_outputs = repo.outputs()
        comments_after_first = fake.comments(REPO, 7)
        second = repo.pull_request(7, head)
        yield Story(repo, push, data_after_push, first, first_outputs, comments_after_first, second, head)


def test_a_push_to_the_default_branch_records_a_baseline_on_the_data_branch(story: Story) -> None:
    code, log = story.push
    assert code == 0, log
    assert story.data_after_push is not None
    index = json.loads(story.repo.fake.read_file(REPO, DATA, "index.json") or "{}")
    (entry,) = index["runs"]
    assert entry["branch"] == "main"
    assert entry["sha"] == story.repo.main_sha
    stored = story.repo.fake.read_file(REPO, DATA, entry["file"])
    assert stored is not None
    assert json.loads(stored)["meta"]["git_sha"] == story.repo.main_sha
    assert "ci-perf data" in (story.repo.fake.read_file(REPO, DATA, "README.md") or "")
    assert any(run["head_sha"] == story.repo.main_sha for run in story.repo.fake.check_runs(REPO))


def test_a_pull_request_is_compared_with_the_recorded_baseline_and_commented_once(story: Story) -> None:
    code, log = story.first
    assert code == 0, log
    (comment,) = story.comments_after_first
    body = str(comment["body"])
    assert body.startswith(MARKER)
    assert "up to the merge base" in body
    report = json.loads((story.repo.workspace / "ci-perf-out" / "report.json").read_text())
    assert report["comparison"]["baseline_runs"] == 1
    assert report["baseline_anchor"] == story.repo.main_sha
    assert story.first_outputs["verdict"] in {"pass", "inconclusive"}
    assert story.first_outputs["comment_url"].endswith(f"#issuecomment-{comment['id']}")
    assert story.first_outputs["comment_file_written"] == "false"
    # a later step opens them from $GITHUB_WORKSPACE: the action's container paths would not exist there
    assert story.first_outputs["result_path"] == "ci-perf-out/result.json"
    assert story.first_outputs["report_path"] == "ci-perf-out/report.md"
    assert (story.repo.workspace / "ci-perf-out" / "junit.xml").is_file()
    summary = (story.repo.workspace.parent / "summary.md").read_text()
    assert MARKER in summary


def test_a_server_error_on_the_comment_is_retried_once_and_succeeds(story: Story) -> None:
    posts = [
        status
        for method, path, status in story.repo.fake.requests_log
        if method == "POST" and path.endswith("/issues/7/comments")
    ]
    assert posts == [502, 201]


def test_a_rerun_edits_the_same_comment_instead_of_adding_one(story: Story) -> None:
    code, log = story.second
    assert code == 0, log
    comments = story.repo.fake.comments(REPO, 7)
    assert [c["id"] for c in comments] == [c["id"] for c in story.comments_after_first]
    assert "comment updated" in log


def test_pull_request_runs_never_write_the_baseline(story: Story) -> None:
    assert story.repo.fake.branch_sha(REPO, DATA) == story.data_after_push
    result = load_result(story.repo.workspace / "ci-perf-out" / "result.json")
    assert result.meta.git_sha == story.head
    assert result.meta.git_branch == "feature"


def test_each_pull_request_run_creates_a_check_run_on_the_head_commit(story: Story) -> None:
    runs = [r for r in story.repo.fake.check_runs(REPO) if r["head_sha"] == story.head]
    assert len(runs) == 2
    assert {r["name"] for r in runs} == {"ci-perf"}
    assert {r["conclusion"] for r in runs} <= {"success", "neutral"}


def test_report_mode_posts_an_artifacts_result_judged_with_the_trusted_config(story: Story, tmp_path: Path) -> None:
    repo = story.repo
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "result.json").write_bytes((repo.workspace / "ci-perf-out" / "result.json").read_bytes())
    (artifact / "report.md").write_text("<script>forged</script>")  # never posted: the report is recomputed
    event = {"workflow_run": {"head_sha": story.head, "pull_requests": [], "html_url": "https://x/runs/1"}}
    environ = repo.environ("workflow_run", event, INPUT_OUT_DIR=str(artifact), INPUT_TARGET_URL="")
    code, log = act(environ, repo.workspace)
    assert code == 0, log
    (comment,) = repo.fake.comments(REPO, 7)
    assert "forged" not in str(comment["body"])
    assert "https://x/runs/1" in str(comment["body"])
    assert "[!CAUTION]" in str(comment["body"])
    assert "the numbers come from the pull request" in str(comment["body"])
    assert MARKER in (artifact / "report.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "no result.json in the artifact", id="missing"),
        pytest.param('{"schema_version": 1, "meta": 5}', "not a ci-perf result", id="wrong-shape"),
        pytest.param("x" * (21 * 1024 * 1024), "more than a ci-perf result can be", id="too-big"),
    ],
)
def test_report_mode_refuses_an_invalid_artifact(
    story: Story, tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if content is not None:
        (tmp_path / "result.json").write_text(content)
    event = {"workflow_run": {"head_sha": story.head, "pull_requests": [{"number": 7}]}}
    environ = story.repo.environ("workflow_run", event, INPUT_OUT_DIR=str(tmp_path))
    from ci_perf.errors import InputError

    with pytest.raises(InputError, match=message):
        act(environ, story.repo.workspace)


def test_a_token_that_cannot_comment_writes_the_comment_file_and_says_how_to_post_it(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo)
    head = repo.open_pull(3)
    fake.deny("POST", r"/issues/\d+/comments$")
    code, log = repo.pull_request(3, head)
    assert code == 0, log
    assert fake.comments(REPO, 3) == []
    outputs = repo.outputs()
    assert outputs["comment_file_written"] == "true"
    comment_file = repo.workspace / "ci-perf-out" / "comment.md"
    assert comment_file.read_text().startswith(MARKER)
    assert "workflow_run" in log
    assert fake.check_runs(REPO) == []  # a read-only token: the report workflow posts the check too


def test_a_pull_request_that_loosens_the_budget_is_still_judged_by_the_base_branch(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo, base_budget_ms=0.001)  # nothing meets this budget
    (repo.workspace / "ci-perf.yml").write_text(config_text(p95_budget_ms=60_000))  # the PR loosens it
    head = repo.open_pull(5, head_files={"ci-perf.yml": config_text(p95_budget_ms=60_000)})
    fake.deny("POST", r"/check-runs$")  # and the token has no checks: write
    code, log = repo.pull_request(5, head)
    assert code == 1, log
    outputs = repo.outputs()
    assert outputs["verdict"] == "fail"
    assert int(outputs["budget_violations"]) >= 1
    (comment,) = fake.comments(REPO, 5)
    assert "alters the gate" in str(comment["body"])
    assert "p95\\_latency\\_ms\\: 0.001 → 60000" in str(comment["body"])
    (status,) = fake.statuses(REPO, head)
    assert status["state"] == "failure"
    assert "checks: write" in log


def test_concurrent_recorders_lose_no_run_and_retention_drops_the_oldest(fake: FakeGitHub) -> None:
    fake.add_token(TOKEN, kind="app")
    fake.add_repo(REPO)
    fake.add_commit(REPO, files={"README.md": "x"}, branch="main")
    load = LoadSettings(users=1, duration=5, warmup=0)

    def result(i: int, start: float) -> object:
        collected = collected_run(endpoints={"GET /a": [5.0 + i]}, start=start)
        return summarize_run(
            collected, load=load, target="http://x", tool_version="t", git_branch="main", git_sha=f"{i:040x}"
        )

    settings = GatewaySettings(seconds_between_writes=0, backoff_s=0.01)
    errors: list[BaseException] = []

    def recorder(offset: int) -> None:
        gateway = GitHubGateway(token=TOKEN, api_url=fake.url, repository=REPO, settings=settings)
        store = DataBranchStore(gateway, keep=100, sleep=lambda _s: None)
        try:
            for i in range(offset, offset + 4):
                store.record(result(i, 1_000.0 + i * 100))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            gateway.close()

    threads = [threading.Thread(target=recorder, args=(offset,)) for offset in (0, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    index = json.loads(fake.read_file(REPO, DATA, "index.json") or "{}")
    assert len(index["runs"]) == 8

    gateway = GitHubGateway(token=TOKEN, api_url=fake.url, repository=REPO, settings=settings)
    try:
        store = DataBranchStore(gateway, keep=3, sleep=lambda _s: None)
        oldest = json.loads(fake.read_file(REPO, DATA, "index.json") or "{}")["runs"][0]
        dropped_file = oldest["file"]
        store.record(result(30, 9_000.0))  # type: ignore[arg-type]
        index = json.loads(fake.read_file(REPO, DATA, "index.json") or "{}")
        assert [e["sha"][-2:] for e in index["runs"]] == ["0c", "0d", "1e"]  # runs 12, 13 and 30, the newest
        for kept in index["runs"]:
            assert fake.read_file(REPO, DATA, kept["file"])
        assert fake.read_file(REPO, DATA, dropped_file) is None
        history = store.history(scenario_key=index["runs"][0]["scenario_key"], load_key="", branch="main", limit=10)
        assert len(history.runs) == 3

        # a compare-and-swap lost to another writer: the record is redone on the new tip
        fake.fail_next("PATCH", r"/git/refs/heads/ci-perf-data$", 422, body={"message": "Update is not a fast forward"})
        store.record(result(31, 9_100.0))  # type: ignore[arg-type]
        patches = [status for method, path, status in fake.requests_log if method == "PATCH"]
        assert patches[-2:] == [422, 200]
        index = json.loads(fake.read_file(REPO, DATA, "index.json") or "{}")
        assert index["runs"][-1]["sha"].endswith("1f")
    finally:
        gateway.close()


def test_the_command_reports_a_bad_config_as_an_annotation_and_never_prints_the_token(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "ci-perf.yml").write_text("endpoints: [GET /]\nload:\n  users: many\n")
    environ = {
        "PATH": os.environ["PATH"],
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_WORKSPACE": str(workspace),
        "INPUT_GITHUB_TOKEN": TOKEN,
        "INPUT_CONFIG": "ci-perf.yml",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ci_perf.cli", "action"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "::error file=ci-perf.yml,line=3,title=ci-perf::load.users: expected a number" in done.stdout
    printed = [line for line in (done.stdout + done.stderr).splitlines() if TOKEN in line]
    assert printed == [f"::add-mask::{TOKEN}"]
    assert "Traceback" not in done.stderr


def test_publishing_that_fails_after_the_retries_keeps_the_result_and_exits_3(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo)
    head = repo.open_pull(9)
    fake.fail_next("*", r"/issues/9/comments$", 503, count=50)  # GitHub stays down for the comment
    code, log = repo.pull_request(9, head)
    assert code == 3, log
    assert "publishing to GitHub failed" in log
    out = repo.workspace / "ci-perf-out"
    assert load_result(out / "result.json").aggregate.requests > 0
    assert (out / "report.md").read_text().startswith(MARKER)
    assert MARKER in (repo.workspace.parent / "summary.md").read_text()
    assert repo.outputs()["verdict"] in {"pass", "inconclusive"}
    assert [r["head_sha"] for r in fake.check_runs(REPO)] == [head]  # the check still went out


def test_a_loopback_target_that_never_answers_says_why_a_docker_action_cannot_reach_it(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    """The runner starts a Docker action in a network of its own: localhost there is not the runner."""
    repo = make_repo(fake, tmp_path, demo)
    config = repo.workspace / "ci-perf.yml"
    config.write_text(config.read_text().replace("timeout: 10s", "timeout: 1s"))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nobody = f"http://localhost:{unused.getsockname()[1]}"  # bound, never listening: refused
        with pytest.raises(NotReady) as raised:  # the command prints it as one sentence and exits 3
            repo.push(INPUT_TARGET_URL=nobody)
    message = str(raised.value)
    assert raised.value.exit_code == 3
    assert "did not become ready" in message
    assert "the action's own container" in message
    assert "services:" in message
    assert "172.17.0.1" in message


def test_report_mode_never_lets_the_artifacts_text_become_a_workflow_command(story: Story, tmp_path: Path) -> None:
    """An endpoint name is the pull request's text: as a line of the log it must stay a line."""
    repo = story.repo
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    result = json.loads((repo.workspace / "ci-perf-out" / "result.json").read_text())
    for number, endpoint in enumerate(result["endpoints"]):
        endpoint["name"] = ["::error::pwned", "##[error]pwned", "::add-mask::pwned"][number % 3]
    (artifact / "result.json").write_text(json.dumps(result))
    event = {"workflow_run": {"head_sha": story.head, "pull_requests": [], "html_url": "https://x/runs/2"}}
    environ = repo.environ(
        "workflow_run", event, INPUT_OUT_DIR=str(artifact), INPUT_TARGET_URL="", GITHUB_ACTIONS="true"
    )
    code, log = act(environ, repo.workspace)
    assert code in {0, 1}, log
    assert "pwned" in log  # the report was printed …
    assert not [line for line in workflow_commands(log) if "pwned" in line]  # … never as a command
