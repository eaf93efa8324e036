"""The fake GitHub answers real PyGithub the way github.com does, for the calls ci-perf makes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from github import Auth, Github, GithubException, GithubRetry, InputGitTreeElement
from github.GithubException import BadCredentialsException, RateLimitExceededExceedsMaxWait, UnknownObjectException

from tests.support.fake_github import FakeGitHub

APP_TOKEN = "ghs_app"
USER_TOKEN = "ghp_user"
REPO = "octo/app"


def client(fake: FakeGitHub, token: str | None = APP_TOKEN, **kwargs) -> Github:
    auth = Auth.Token(token) if token else None
    options = {"seconds_between_requests": 0, "seconds_between_writes": 0, **kwargs}
    return Github(base_url=fake.url, auth=auth, **options)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_token(APP_TOKEN, "github-actions[bot]", kind="app")
        server.add_token(USER_TOKEN, "alice", kind="user")
        server.add_repo(REPO)
        yield server


@pytest.fixture
def history(fake: FakeGitHub) -> dict[str, str]:
    """main: root -> m1; feature (from a fork): root -> f1 -> f2; pull 1 proposes feature into main."""
    root = fake.add_commit(REPO, files={"README.md": "hello", "perf/budget.yml": "p95: 200"}, message="root")
    m1 = fake.add_commit(REPO, parents=[root], files={"app.py": "print(1)"}, message="m1", branch="main")
    f1 = fake.add_commit(REPO, parents=[root], files={"perf/budget.yml": "p95: 250"}, message="f1")
    f2 = fake.add_commit(REPO, parents=[f1], files={"README.md": None}, message="f2")
    fake.add_pull(REPO, 1, head_sha=f2, head_ref="feature", base_ref="main", head_repo="forker/app")
    return {"root": root, "m1": m1, "f1": f1, "f2": f2}


@pytest.fixture
def gh(fake: FakeGitHub) -> Iterator[Github]:
    github = client(fake)
    yield github
    github.close()


def test_repo_and_pull_from_a_fork_are_found(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    repo = gh.get_repo(REPO)
    assert repo.default_branch == "main"
    assert repo.full_name == REPO
    pull = repo.get_pull(1)
    assert (pull.head.sha, pull.head.ref, pull.base.ref, pull.base.sha) == (
        history["f2"],
        "feature",
        "main",
        history["m1"],
    )
    assert pull.head.repo.full_name == "forker/app"
    assert pull.head.repo.fork
    assert [p.number for p in repo.get_pulls(state="open")] == [1]
    assert repo.get_issue(1).pull_request is not None
    assert repo.get_branch("main").commit.sha == history["m1"]
    with pytest.raises(ValueError, match="unknown parent"):
        fake.add_commit(REPO, parents=["0" * 40])


def test_open_pulls_paginate(fake: FakeGitHub, history: dict[str, str]) -> None:
    for number in range(2, 6):
        fake.add_pull(REPO, number, head_sha=history["f1"], head_ref=f"b{number}", base_ref="main")
    fake.add_pull(REPO, 6, head_sha=history["f1"], head_ref="done", base_ref="main", state="closed")
    with client(fake, per_page=2) as github:
        numbers = [p.number for p in github.get_repo(REPO).get_pulls(state="open")]
    assert numbers == [5, 4, 3, 2, 1]
    assert [m for m, path, _ in fake.requests_log if path.endswith("/pulls")] == ["GET"] * 3


def test_compare_finds_the_merge_base_for_branches_and_shas(gh: Github, history: dict[str, str]) -> None:
    repo = gh.get_repo(REPO)
    comparison = repo.compare("main", history["f2"])
    assert comparison.merge_base_commit.sha == history["root"]
    assert (comparison.status, comparison.ahead_by, comparison.behind_by) == ("diverged", 2, 1)
    assert [c.sha for c in comparison.commits] == [history["f1"], history["f2"]]
    assert {f.filename: f.status for f in comparison.files} == {"README.md": "removed", "perf/budget.yml": "modified"}
    assert repo.compare(history["root"], history["m1"]).status == "ahead"
    assert repo.get_commit("main").sha == history["m1"]
    assert repo.get_commit(history["f2"]).parents[0].sha == history["f1"]


def test_comments_paginate_and_can_be_edited_and_deleted(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    pull = gh.get_repo(REPO).get_pull(1)
    for index in range(35):
        pull.create_issue_comment(f"comment {index}")
    listed = list(pull.get_issue_comments())
    assert [c.body for c in listed] == [f"comment {i}" for i in range(35)]
    assert sum(1 for m, p, _ in fake.requests_log if (m, p) == ("GET", "/repos/octo/app/issues/1/comments")) == 2
    assert listed[0].user.login == "github-actions[bot]"
    assert listed[0].user.type == "Bot"
    assert listed[0].html_url.endswith(f"/octo/app/pull/1#issuecomment-{listed[0].id}")

    listed[-1].edit("edited")
    listed[0].delete()
    stored = fake.comments(REPO, 1)
    assert len(stored) == 34
    assert stored[-1]["body"] == "edited"
    assert gh.get_repo(REPO).get_issue(1).get_comments().totalCount == 34


def test_comment_bodies_above_65536_characters_are_rejected(fake: FakeGitHub, gh: Github, history) -> None:
    issue = gh.get_repo(REPO).get_issue(1)
    issue.create_comment("x" * 65_536)
    with pytest.raises(GithubException) as caught:
        issue.create_comment("x" * 65_537)
    assert caught.value.status == 422
    assert caught.value.data["errors"][0]["message"] == "body is too long (maximum is 65536 characters)"
    assert len(fake.comments(REPO, 1)) == 1


def test_user_tokens_author_comments_as_themselves(fake: FakeGitHub, history: dict[str, str]) -> None:
    with client(fake, USER_TOKEN) as github:
        assert github.get_user().login == "alice"
        github.get_repo(REPO).get_issue(1).create_comment("hi")
    assert fake.comments(REPO, 1)[0]["user"] == "alice"
    assert fake.comments(REPO, 1)[0]["user_type"] == "User"


def test_check_runs_are_created_edited_and_listed(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    repo = gh.get_repo(REPO)
    run = repo.create_check_run(name="ci-perf", head_sha=history["f2"], status="in_progress", external_id="x1")
    assert run.status == "in_progress"
    run.edit(conclusion="failure", output={"title": "2 regressions", "summary": "p95 +30%", "text": "details"})
    assert (run.status, run.conclusion, run.output.title) == ("completed", "failure", "2 regressions")
    listed = list(repo.get_commit(history["f2"]).get_check_runs())
    assert [(r.id, r.conclusion, r.app.slug) for r in listed] == [(run.id, "failure", "github-actions")]
    stored = fake.check_runs(REPO)
    assert stored[0]["output"] == {"title": "2 regressions", "summary": "p95 +30%", "text": "details"}
    with pytest.raises(GithubException) as caught:
        run.edit(output={"title": "t", "summary": "s" * 65_536})
    assert caught.value.status == 422
    assert fake.check_runs(REPO)[0]["output"]["summary"] == "p95 +30%"


def test_only_github_apps_may_create_check_runs(fake: FakeGitHub, history: dict[str, str]) -> None:
    with client(fake, USER_TOKEN) as github, pytest.raises(GithubException) as caught:
        github.get_repo(REPO).create_check_run(name="ci-perf", head_sha=history["f2"])
    assert caught.value.status == 403


def test_commit_statuses_are_posted_and_listed(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    commit = gh.get_repo(REPO).get_commit(history["f2"])
    commit.create_status("pending", description="running", context="ci-perf")
    commit.create_status("success", target_url="http://example.test/run", description="ok", context="ci-perf")
    assert [s.state for s in commit.get_statuses()] == ["success", "pending"]
    assert [s["state"] for s in fake.statuses(REPO, history["f2"])] == ["pending", "success"]
    with pytest.raises(GithubException) as caught:
        commit.create_status("success", description="d" * 141)
    assert caught.value.status == 422


def test_contents_are_read_at_a_ref(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    repo = gh.get_repo(REPO)
    assert repo.get_contents("perf/budget.yml", ref=history["f1"]).decoded_content == b"p95: 250"
    assert repo.get_contents("perf/budget.yml", ref="main").decoded_content == b"p95: 200"
    assert repo.get_contents("perf/budget.yml").decoded_content == b"p95: 200"
    with pytest.raises(UnknownObjectException):
        repo.get_contents("README.md", ref=history["f2"])
    assert fake.read_file(REPO, history["f2"], "perf/budget.yml") == "p95: 250"
    assert fake.read_file(REPO, "main", "missing.txt") is None


def test_a_data_branch_is_built_with_git_data_and_guarded_by_fast_forward(
    fake: FakeGitHub, gh: Github, history: dict[str, str]
) -> None:
    repo = gh.get_repo(REPO)
    blob = repo.create_git_blob('{"run": 1}', "utf-8")
    assert repo.create_git_blob("eyJydW4iOiAxfQ==", "base64").sha == blob.sha  # same content, same sha
    tree = repo.create_git_tree([InputGitTreeElement("runs/1.json", "100644", "blob", sha=blob.sha)])
    first = repo.create_git_commit("run 1", tree, [])
    ref = repo.create_git_ref("refs/heads/ci-perf-data", first.sha)
    assert fake.branch_sha(REPO, "ci-perf-data") == first.sha
    assert fake.read_file(REPO, "ci-perf-data", "runs/1.json") == '{"run": 1}'

    with pytest.raises(GithubException) as exists:
        repo.create_git_ref("refs/heads/ci-perf-data", first.sha)
    assert (exists.value.status, exists.value.data["message"]) == (422, "Reference already exists")

    tree2 = repo.create_git_tree(
        [InputGitTreeElement("runs/2.json", "100644", "blob", content='{"run": 2}')], base_tree=first.tree
    )
    second = repo.create_git_commit("run 2", tree2, [first])
    ref.edit(second.sha, force=False)
    assert repo.get_git_ref("heads/ci-perf-data").object.sha == second.sha
    listing = repo.get_git_tree(second.sha, recursive=True).tree
    assert [(e.path, e.type) for e in listing] == [("runs", "tree"), ("runs/1.json", "blob"), ("runs/2.json", "blob")]
    assert repo.get_git_blob(blob.sha).size == len('{"run": 1}')

    sibling = repo.create_git_commit("lost race", tree2, [first])
    with pytest.raises(GithubException) as rejected:
        ref.edit(sibling.sha, force=False)
    assert (rejected.value.status, rejected.value.data["message"]) == (422, "Update is not a fast forward")
    assert fake.branch_sha(REPO, "ci-perf-data") == second.sha

    removal = repo.create_git_tree([InputGitTreeElement("runs/1.json", "100644", "blob", sha=None)], base_tree=tree2)
    assert [e.path for e in repo.get_git_tree(removal.sha, recursive=True).tree] == ["runs", "runs/2.json"]
    assert [r.ref for r in repo.get_git_matching_refs("heads/ci")] == ["refs/heads/ci-perf-data"]
    assert {r.ref for r in repo.get_git_refs()} == {"refs/heads/main", "refs/heads/ci-perf-data"}
    ref.delete()
    with pytest.raises(UnknownObjectException):
        repo.get_git_ref("heads/ci-perf-data")


def test_concurrent_fast_forwards_from_the_same_parent_let_exactly_one_win(fake: FakeGitHub) -> None:
    base = fake.add_commit(REPO, files={"a": "0"}, branch="ci-perf-data")
    outcomes: list[int] = []

    def push(index: int) -> None:
        with client(fake) as github:
            repo = github.get_repo(REPO)
            parent = repo.get_git_commit(base)
            tree = repo.create_git_tree([InputGitTreeElement(f"{index}", "100644", "blob", content="x")])
            commit = repo.create_git_commit(f"writer {index}", tree, [parent])
            try:
                repo.get_git_ref("heads/ci-perf-data").edit(commit.sha, force=False)
                outcomes.append(200)
            except GithubException as exc:
                outcomes.append(exc.status)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [200, 422, 422, 422, 422, 422]


def test_tokens_are_authenticated_like_github(fake: FakeGitHub, gh: Github) -> None:
    with pytest.raises(GithubException) as caught:
        _ = gh.get_user().login
    assert (caught.value.status, caught.value.data["message"]) == (403, "Resource not accessible by integration")
    with client(fake, "ghp_unknown") as stranger, pytest.raises(BadCredentialsException):
        stranger.get_repo(REPO)
    with client(fake, None) as anonymous:
        issue_repo = anonymous.get_repo(REPO)
        assert issue_repo.full_name == REPO
        with pytest.raises(GithubException) as unauthenticated:
            issue_repo.create_git_blob("x", "utf-8")
        assert unauthenticated.value.status == 401


def test_deny_refuses_only_the_matching_endpoint(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    fake.deny("POST", r"/check-runs$")
    repo = gh.get_repo(REPO)
    with pytest.raises(GithubException) as caught:
        repo.create_check_run(name="ci-perf", head_sha=history["f2"])
    assert caught.value.status == 403
    assert [s for m, p, s in fake.requests_log if p.endswith("/check-runs")] == [403]  # not retried
    repo.get_issue(1).create_comment("still allowed")
    fake.allow_all()
    repo.create_check_run(name="ci-perf", head_sha=history["f2"])


def test_deny_can_target_one_token(fake: FakeGitHub, gh: Github, history: dict[str, str]) -> None:
    fake.deny("*", r"/issues/\d+/comments$", token=USER_TOKEN)
    gh.get_repo(REPO).get_issue(1).create_comment("app may")
    with client(fake, USER_TOKEN) as github, pytest.raises(GithubException):
        github.get_repo(REPO).get_issue(1).create_comment("user may not")


def test_a_502_is_retried_until_it_succeeds(fake: FakeGitHub) -> None:
    fake.fail_next("GET", r"^/repos/octo/app$", 502, count=2)
    with client(fake, retry=GithubRetry(total=3, backoff_factor=0.01)) as github:
        assert github.get_repo(REPO).full_name == REPO
    assert [s for _, p, s in fake.requests_log if p == "/repos/octo/app"] == [502, 502, 200]


def test_exhausted_retries_surface_as_a_requests_retry_error(fake: FakeGitHub) -> None:
    fake.fail_next("GET", r"^/repos/octo/app$", 502, count=5)
    with (
        client(fake, retry=GithubRetry(total=2, backoff_factor=0.01)) as github,
        pytest.raises(requests.exceptions.RetryError),
    ):
        github.get_repo(REPO)


def test_rate_limits_are_retried_when_github_says_when(fake: FakeGitHub) -> None:
    fake.rate_limit_next("GET", r"^/repos/octo/app$", status=403, retry_after=0)
    fake.rate_limit_next("GET", r"^/repos/octo/app$", status=429, retry_after=0)
    with client(fake, retry=GithubRetry(total=3, backoff_factor=0.01)) as github:
        assert github.get_repo(REPO).full_name == REPO
    assert [s for _, p, s in fake.requests_log if p == "/repos/octo/app"] == [403, 429, 200]


def test_a_primary_rate_limit_waits_for_the_reset_header(fake: FakeGitHub) -> None:
    fake.rate_limit_next("GET", r"^/repos/octo/app$", status=403, retry_after=None)
    retry = GithubRetry(total=3, backoff_factor=0.01, max_rate_limit_wait=0.5)
    with client(fake, retry=retry) as github, pytest.raises(RateLimitExceededExceedsMaxWait) as caught:
        github.get_repo(REPO)
    assert 1 < caught.value.wait <= 3  # until x-ratelimit-reset (now + 1 s) plus GithubRetry's extra second


def test_a_429_without_retry_after_is_not_retried(fake: FakeGitHub) -> None:
    fake.fail_next("GET", r"^/repos/octo/app$", 429)
    with (
        client(fake, retry=GithubRetry(total=3, backoff_factor=0.01)) as github,
        pytest.raises(GithubException) as caught,
    ):
        github.get_repo(REPO)
    assert caught.value.status == 429


def test_an_enterprise_style_api_prefix_works(history: dict[str, str]) -> None:
    with FakeGitHub(api_prefix="/api/v3") as fake:
        fake.add_token(APP_TOKEN)
        fake.add_repo(REPO)
        head = fake.add_commit(REPO, files={"a": "1"}, branch="main")
        fake.add_pull(REPO, 7, head_sha=head, head_ref="x", base_ref="main")
        assert fake.url.endswith("/api/v3")
        with client(fake) as github:
            comment = github.get_repo(REPO).get_pull(7).create_issue_comment("first")
            comment.edit("second")
        assert fake.comments(REPO, 7)[0]["body"] == "second"
        assert fake.requests_log[-1] == ("PATCH", f"/repos/{REPO}/issues/comments/{comment.id}", 200)


def test_githubretry_does_not_retry_patch(fake: FakeGitHub, history: dict[str, str]) -> None:
    """urllib3's idempotent methods plus GET and POST are retried; PATCH (ref.edit, comment.edit) is not."""
    with client(fake, retry=GithubRetry(total=3, backoff_factor=0.01)) as github:
        comment = github.get_repo(REPO).get_issue(1).create_comment("first")
        fake.fail_next("PATCH", r"/issues/comments/", 502)
        with pytest.raises(GithubException) as caught:
            comment.edit("second")
    assert caught.value.status == 502
    assert [s for m, _, s in fake.requests_log if m == "PATCH"] == [502]


def test_a_fault_after_the_request_keeps_its_effect_and_pygithub_resends_the_post(
    fake: FakeGitHub, history: dict[str, str]
) -> None:
    """The lost-response case: GitHub made the comment, the client saw a 502. PyGithub's default retry resends."""
    fake.fail_next("POST", r"/issues/1/comments$", 502, after=True)
    with client(fake, retry=GithubRetry(total=3, backoff_factor=0.01)) as github:
        github.get_repo(REPO).get_issue(1).create_comment("once")
    assert [c["body"] for c in fake.comments(REPO, 1)] == ["once", "once"]  # why ci-perf never retries it blindly
    assert [s for m, p, s in fake.requests_log if m == "POST"] == [502, 201]


def test_a_fault_before_the_request_leaves_nothing_behind(fake: FakeGitHub, history: dict[str, str]) -> None:
    fake.fail_next("POST", r"/issues/1/comments$", 502)
    with client(fake, retry=0) as github, pytest.raises(GithubException) as caught:
        github.get_repo(REPO).get_issue(1).create_comment("never")
    assert caught.value.status == 502
    assert fake.comments(REPO, 1) == []


def test_status_zero_closes_the_connection_after_the_request_took_effect(
    fake: FakeGitHub, history: dict[str, str]
) -> None:
    fake.fail_next("POST", r"/check-runs$", 0, after=True)
    retry = GithubRetry(total=3, backoff_factor=0.01, read=False)
    with client(fake, retry=retry) as github, pytest.raises(requests.exceptions.ConnectionError):
        github.get_repo(REPO).create_check_run(name="ci-perf", head_sha=history["f2"])
    assert [r["name"] for r in fake.check_runs(REPO)] == ["ci-perf"]
    assert [s for m, p, s in fake.requests_log if m == "POST"] == [0]


@pytest.mark.parametrize(
    ("kind", "update_message", "create_message"),
    [
        pytest.param(
            "ruleset",
            "Repository rule violations found\n\nChanges must be made through a pull request.\n\n",
            "Reference update failed",
            id="ruleset",
        ),
        pytest.param(
            "classic", 'Required status check "build" is expected.', 'Required status check "build" is expected.'
        ),
    ],
)
def test_a_protected_branch_refuses_ref_writes_with_422(
    fake: FakeGitHub, gh: Github, history: dict[str, str], kind: str, update_message: str, create_message: str
) -> None:
    fake.protect_branch(REPO, "main", kind)  # type: ignore[arg-type]
    fake.protect_branch(REPO, "ci-perf-data", kind)  # type: ignore[arg-type]
    repo = gh.get_repo(REPO)
    assert repo.get_branch("main").protected
    child = repo.create_git_commit("next", repo.get_git_tree(history["m1"]), [repo.get_git_commit(history["m1"])])
    with pytest.raises(GithubException) as update:
        repo.get_git_ref("heads/main").complete().edit(child.sha, force=False)
    assert (update.value.status, update.value.data["message"]) == (422, update_message)
    assert fake.branch_sha(REPO, "main") == history["m1"]
    with pytest.raises(GithubException) as create:
        repo.create_git_ref("refs/heads/ci-perf-data", child.sha)
    assert (create.value.status, create.value.data["message"]) == (422, create_message)
    assert fake.branch_sha(REPO, "ci-perf-data") is None
    with pytest.raises(GithubException) as delete:
        repo.get_git_ref("heads/main").delete()
    assert (delete.value.status, delete.value.data["message"]) == (422, "Cannot delete a protected branch")
