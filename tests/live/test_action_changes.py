"""``ci-perf action`` on what a check judges: merge queues, several suites, a changed load, refused events.

Real Locust against the demo service, real PyGithub against the fake GitHub, as in ``test_action.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_perf.errors import GitHubError, InputError
from ci_perf.report import MARKER
from tests.conftest import DemoService
from tests.support.action_repo import DATA, REPO, Repo, act, config_text, make_repo
from tests.support.fake_github import FakeGitHub

ARRIVALS = (
    "endpoints:\n"
    "  - GET /api/products\n"
    "load: {arrival_rate: 20/s, users: 4, duration: 3s, warmup: 0s, window: 1s}\n"
    "readiness: {path: /api/products, timeout: 10s}\n"
)
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def products(self):
        self.client.get("/api/products")
"""


def merge_group(repo: Repo, head_sha: str, **extra: str) -> tuple[int, str]:
    group = {
        "head_sha": head_sha,
        "head_ref": f"refs/heads/gh-readonly-queue/main/pr-7-{repo.main_sha}",
        "base_sha": repo.main_sha,
        "base_ref": "refs/heads/main",
    }
    environ = repo.environ("merge_group", {"merge_group": group}, GITHUB_REF=group["head_ref"], **extra)
    return act(environ, repo.workspace)


def report_json(repo: Repo) -> dict[str, object]:
    return dict(json.loads((repo.workspace / "ci-perf-out" / "report.json").read_text()))


def test_a_merge_group_is_checked_on_its_head_against_the_base_branchs_history(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo)
    assert repo.push()[0] == 0
    recorded = fake.branch_sha(REPO, DATA)
    head = fake.add_commit(REPO, parents=[repo.main_sha], files={"app.py": "queued"})
    code, log = merge_group(repo, head)
    assert code == 0, log
    (check,) = [c for c in fake.check_runs(REPO) if c["head_sha"] == head]
    assert check["name"] == "ci-perf"
    report = report_json(repo)
    assert report["comparison"]["baseline_runs"] == 1  # type: ignore[index]
    assert fake.branch_sha(REPO, DATA) == recorded  # a queue entry never writes the baseline
    assert repo.outputs()["verdict"] == "pass"


def test_suites_with_an_id_keep_their_own_comment_check_and_history(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo)
    assert repo.push(INPUT_ID="api")[0] == 0
    assert fake.read_file(REPO, DATA, "suites/api/index.json") is not None
    head = repo.open_pull(7)
    assert repo.pull_request(7, head, INPUT_ID="api")[0] == 0
    assert report_json(repo)["comparison"]["baseline_runs"] == 1  # type: ignore[index]
    assert repo.pull_request(7, head)[0] == 0  # the suite without an id has no history of its own
    assert report_json(repo)["comparison"] is None or report_json(repo)["comparison"]["baseline_runs"] == 0  # type: ignore[index]
    assert repo.pull_request(7, head, INPUT_ID="api")[0] == 0  # edits the api comment, not the other
    bodies = [str(c["body"]) for c in fake.comments(REPO, 7)]
    assert len(bodies) == 2
    api = [b for b in bodies if b.startswith("<!-- ci-perf:api -->")]
    assert len(api) == 1
    assert "ci-perf (api)" in api[0].splitlines()[1]
    assert [b for b in bodies if b.startswith(MARKER)]
    assert sorted(c["name"] for c in fake.check_runs(REPO) if c["head_sha"] == head) == [
        "ci-perf",
        "ci-perf (api)",
        "ci-perf (api)",
    ]
    assert "ci-perf (api)" in (repo.workspace.parent / "summary.md").read_text()


def test_a_pull_request_that_changes_the_load_runs_the_base_branchs_load_and_says_so(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    """Changing ``users`` would change the scenario and leave the pull request with no baseline to fail."""
    repo = make_repo(fake, tmp_path, demo)
    assert repo.push()[0] == 0
    lighter = config_text().replace("users: 4", "users: 1")
    (repo.workspace / "ci-perf.yml").write_text(lighter)
    head = repo.open_pull(8, head_files={"ci-perf.yml": lighter})
    code, log = repo.pull_request(8, head)
    assert code == 0, log
    report = report_json(repo)
    assert report["meta"]["load"]["users"] == 4  # type: ignore[index]
    assert report["comparison"]["baseline_runs"] == 1  # type: ignore[index]
    assert report["gate_changes"] == ["load.users: 4 → 1"]
    (comment,) = fake.comments(REPO, 8)
    assert "alters the gate or the load" in str(comment["body"])
    assert "load.users\\: 4 → 1" in str(comment["body"])


@pytest.mark.parametrize(
    ("policy", "code", "verdict", "conclusion"), [("", 0, "inconclusive", "neutral"), ("fail", 1, "fail", "failure")]
)
def test_a_load_the_base_branchs_settings_cannot_replace_has_no_baseline_and_never_passes(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path, policy: str, code: int, verdict: str, conclusion: str
) -> None:
    """The base branch runs an open model on endpoints; the pull request switches to a locustfile with users,
    where the base branch's arrival rate cannot run: its own load runs, and nothing on main can judge it."""
    fake.add_token("ghs_test_installation_token", kind="app")
    fake.add_repo(REPO)
    main_sha = fake.add_commit(REPO, files={"ci-perf.yml": ARRIVALS}, branch="main")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "ci-perf.yml").write_text(ARRIVALS)
    repo = Repo(fake=fake, workspace=workspace, main_sha=main_sha, target=demo.url)
    assert repo.push()[0] == 0
    own = (
        "locustfile: locustfile.py\nload: {users: 2, spawn_rate: 20, duration: 3s, warmup: 0s, window: 1s}\n"
        "readiness: {path: /api/products, timeout: 10s}\n"
    )
    (workspace / "ci-perf.yml").write_text(own)
    (workspace / "locustfile.py").write_text(LOCUSTFILE)
    head = repo.open_pull(9, head_files={"ci-perf.yml": own, "locustfile.py": LOCUSTFILE})
    got, log = repo.pull_request(9, head, INPUT_UNMATCHED_BASELINE=policy)
    assert got == code, log
    assert repo.outputs()["verdict"] == verdict
    report = report_json(repo)
    assert "no baseline on 'main'" in str(report["unmatched_baseline"])
    assert "load.arrival_rate" in str(report["unmatched_baseline"])
    assert "passed" not in str(report["headline"])
    (check,) = [c for c in fake.check_runs(REPO) if c["head_sha"] == head]
    assert check["conclusion"] == conclusion


def test_pull_request_target_is_refused_unless_opted_in(fake: FakeGitHub, demo: DemoService, tmp_path: Path) -> None:
    repo = make_repo(fake, tmp_path, demo)
    head = repo.open_pull(4)
    event = {
        "pull_request": {
            "number": 4,
            "head": {"sha": head, "ref": "feature", "repo": {"full_name": "someone/shop"}},
            "base": {"sha": repo.main_sha, "ref": "main", "repo": {"full_name": REPO}},
        }
    }
    environ = repo.environ("pull_request_target", event, GITHUB_REF="refs/heads/main")
    with pytest.raises(InputError, match="allow_pull_request_target: true"):
        act(environ, repo.workspace)
    assert repo.outputs()["verdict"] == "error"
    assert "pull\\_request\\_target runs" in (repo.workspace.parent / "summary.md").read_text()
    assert fake.comments(REPO, 4) == []
    code, log = act({**environ, "INPUT_ALLOW_PULL_REQUEST_TARGET": "true"}, repo.workspace)
    assert code == 0, log
    assert len(fake.comments(REPO, 4)) == 1


def test_github_unreachable_before_the_run_still_leaves_a_summary_and_a_verdict(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    repo = make_repo(fake, tmp_path, demo)
    head = repo.open_pull(6)
    fake.fail_next("GET", r"/contents/", 503, count=50)  # reading the base branch's config fails throughout
    with pytest.raises(GitHubError):
        repo.pull_request(6, head)
    assert repo.outputs()["verdict"] == "error"
    summary = (repo.workspace.parent / "summary.md").read_text()
    assert "ci-perf: could not run" in summary
    assert not (repo.workspace / "ci-perf-out" / "result.json").exists()


def test_the_baseline_branch_defaults_to_the_repositorys_default_branch(
    fake: FakeGitHub, demo: DemoService, tmp_path: Path
) -> None:
    """A repository whose default branch is ``trunk``: a nightly run off the pull request compares with trunk."""
    repo = make_repo(fake, tmp_path, demo)

    def on(event_name: str, ref: str) -> tuple[int, str]:
        event = {"repository": {"default_branch": "trunk"}}
        return act(repo.environ(event_name, event, GITHUB_REF=ref, GITHUB_SHA=repo.main_sha), repo.workspace)

    assert on("push", "refs/heads/trunk")[0] == 0
    code, log = on("schedule", "refs/heads/trunk")
    assert code == 0, log
    report = report_json(repo)
    assert report["comparison_settings"]["baseline_branch"] == "trunk"  # type: ignore[index]
    assert report["comparison"]["baseline_runs"] == 1  # type: ignore[index]
