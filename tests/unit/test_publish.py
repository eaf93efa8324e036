"""The sticky comment and the check against the fake GitHub (no load: reports from synthetic runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ci_perf.analysis.judge import Report, judge
from ci_perf.config import EndpointBudget, Gate, PerformanceBudget
from ci_perf.errors import GitHubError
from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.github.publish import publish_check, upsert_comment
from ci_perf.report import MARKER, render_markdown
from ci_perf.results import History
from tests.support.fake_github import FakeGitHub
from tests.support.runs import recorded_run

REPO = "acme/shop"
TOKEN = "ghs_installation"


def _report(p95_budget_ms: float) -> Report:
    budget = PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=p95_budget_ms))
    return judge(Gate(performance_budget=budget), recorded_run(), history=History()).report


FAILING, PASSING = _report(1.0), _report(1_000.0)


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, GitHubGateway]]:
    with FakeGitHub() as fake:
        fake.add_token(TOKEN, kind="app")
        fake.add_repo(REPO)
        head = fake.add_commit(REPO, files={"a": "1"}, branch="main")
        fake.add_pull(REPO, 1, head_sha=head, head_ref="feature", base_ref="main")
        gateway = GitHubGateway(
            token=TOKEN,
            api_url=fake.url,
            repository=REPO,
            settings=GatewaySettings(seconds_between_writes=0, backoff_s=0.01),
        )
        yield fake, gateway
        gateway.close()


def _post(gateway: GitHubGateway, report: Report, policy: str) -> str:
    return upsert_comment(gateway, number=1, markdown=render_markdown(report), report=report, policy=policy).action


def test_on_change_posts_a_failure_then_only_when_the_gate_changes(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    assert _post(gateway, PASSING, "on-change") == "unchanged"  # nothing to report, no comment yet
    assert fake.comments(REPO, 1) == []
    assert _post(gateway, FAILING, "on-change") == "created"
    assert _post(gateway, FAILING, "on-change") == "unchanged"
    assert _post(gateway, PASSING, "on-change") == "updated"  # fixed: the comment says so
    assert _post(gateway, PASSING, "on-change") == "unchanged"
    (comment,) = fake.comments(REPO, 1)
    assert "✅" in str(comment["body"])


def test_always_edits_and_never_does_not_touch_the_comment(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    assert _post(gateway, PASSING, "always") == "created"
    assert _post(gateway, PASSING, "always") == "updated"
    assert _post(gateway, FAILING, "never") == "skipped"
    (comment,) = fake.comments(REPO, 1)
    assert "✅" in str(comment["body"])


def test_someone_elses_comment_quoting_the_marker_is_never_edited(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    fake.add_comment(REPO, 1, f"> {MARKER} quoted by a person", login="alice")
    assert _post(gateway, PASSING, "always") == "created"
    first, ours = fake.comments(REPO, 1)
    assert "quoted by a person" in str(first["body"])
    assert str(ours["body"]).startswith(MARKER)


def test_a_rate_limited_request_is_retried_after_the_servers_wait(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    fake.rate_limit_next("GET", r"/issues/1/comments$", status=429, retry_after=1)
    assert _post(gateway, PASSING, "always") == "created"
    statuses = [s for m, p, s in fake.requests_log if m == "GET" and p.endswith("/issues/1/comments")]
    assert statuses == [429, 200]


def test_github_down_after_the_retries_is_a_github_error(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    fake.fail_next("*", r"/issues/1/comments$", 502, count=20)
    with pytest.raises(GitHubError, match="after retries"):
        _post(gateway, PASSING, "always")


def test_the_check_falls_back_to_a_status_then_to_the_summary(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    head = str(fake.branch_sha(REPO, "main"))
    markdown = render_markdown(FAILING)
    outcome = publish_check(gateway, head_sha=head, report=FAILING, markdown=markdown, details_url=None)
    assert (outcome.kind, fake.check_runs(REPO)[0]["conclusion"]) == ("check-run", "failure")
    fake.deny("POST", r"/check-runs$")
    outcome = publish_check(gateway, head_sha=head, report=FAILING, markdown=markdown, details_url=None)
    assert outcome.kind == "status"
    assert "checks: write" in outcome.warnings[0]
    assert fake.statuses(REPO, head)[0]["state"] == "failure"
    fake.deny("POST", r"/statuses/")
    outcome = publish_check(gateway, head_sha=head, report=FAILING, markdown=markdown, details_url=None)
    assert outcome.kind == "summary-only"
    assert "statuses: write" in outcome.warnings[1]


def _unjudged(advisory: str | None) -> Report:
    """Nothing gates it (no budget rule, no default limit, no baseline): the verdict is inconclusive."""
    budget = PerformanceBudget(default_error_rate_percent=None)
    return judge(Gate(performance_budget=budget), recorded_run(), history=History(), advisory=advisory).report


@pytest.mark.parametrize(
    ("advisory", "details_url", "conclusion", "state"),
    [
        (None, "https://x/runs/1", "neutral", "success"),  # a run of our own that could not judge
        ("advisory: the fork's numbers", "https://x/runs/1", "action_required", "failure"),
        ("advisory: the fork's numbers", None, "failure", "failure"),  # action_required needs a details URL
    ],
)
def test_an_advisory_verdict_that_cannot_judge_never_passes_a_required_check(
    github: tuple[FakeGitHub, GitHubGateway], advisory: str | None, details_url: str | None, conclusion: str, state: str
) -> None:
    """Report mode judges numbers a fork chose; 'neutral' would count as passing for branch protection."""
    fake, gateway = github
    head = str(fake.branch_sha(REPO, "main"))
    report = _unjudged(advisory)
    assert report.verdict == "inconclusive"
    markdown = render_markdown(report)
    assert ("[!CAUTION]" in markdown) is (advisory is not None)
    publish_check(gateway, head_sha=head, report=report, markdown=markdown, details_url=details_url)
    assert fake.check_runs(REPO)[-1]["conclusion"] == conclusion
    fake.deny("POST", r"/check-runs$")
    publish_check(gateway, head_sha=head, report=report, markdown=markdown, details_url=details_url)
    assert fake.statuses(REPO, head)[-1]["state"] == state


def _posts(fake: FakeGitHub, path: str) -> list[int]:
    return [status for method, p, status in fake.requests_log if method == "POST" and p.endswith(path)]


@pytest.mark.parametrize(
    ("status", "after", "posts"),
    [
        pytest.param(502, True, [502], id="502-after-the-comment-was-made"),
        pytest.param(0, True, [0], id="connection-lost-after-the-comment-was-made"),
        pytest.param(502, False, [502, 201], id="502-before"),
        pytest.param(0, False, [0, 201], id="connection-lost-before"),
    ],
)
def test_a_comment_whose_answer_was_lost_is_looked_up_before_it_is_posted_again(
    github: tuple[FakeGitHub, GitHubGateway], status: int, after: bool, posts: list[int]
) -> None:
    """Neither urllib3 nor the gateway resends the POST blindly: one comment, whatever GitHub's front end did."""
    fake, gateway = github
    fake.fail_next("POST", r"/issues/1/comments$", status, after=after)
    outcome = upsert_comment(gateway, number=1, markdown=render_markdown(FAILING), report=FAILING, policy="always")
    (comment,) = fake.comments(REPO, 1)
    assert outcome.action == "created"
    assert outcome.url is not None
    assert outcome.url.endswith(f"#issuecomment-{comment['id']}")
    assert _posts(fake, "/issues/1/comments") == posts


def test_only_our_comment_with_the_marker_counts_as_the_lost_one(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    fake.add_comment(REPO, 1, f"> {MARKER} quoted by a person", login="alice")
    fake.fail_next("POST", r"/issues/1/comments$", 504)
    made = gateway.create_comment(1, f"{MARKER}\nours", marker=MARKER)
    assert made.author == "github-actions[bot]"
    assert [c["user"] for c in fake.comments(REPO, 1)] == ["alice", "github-actions[bot]"]


def test_a_rate_limited_comment_is_still_retried_after_the_servers_wait(
    github: tuple[FakeGitHub, GitHubGateway],
) -> None:
    fake, gateway = github
    fake.rate_limit_next("POST", r"/issues/1/comments$", status=429, retry_after=0)
    assert _post(gateway, PASSING, "always") == "created"
    assert _posts(fake, "/issues/1/comments") == [429, 201]
    assert len(fake.comments(REPO, 1)) == 1


def test_a_comment_github_keeps_failing_is_a_github_error_naming_the_status(
    github: tuple[FakeGitHub, GitHubGateway],
) -> None:
    fake, gateway = github
    fake.fail_next("POST", r"/issues/1/comments$", 502, count=20)
    with pytest.raises(GitHubError, match=r"commenting on #1: 502 Bad Gateway"):
        gateway.create_comment(1, f"{MARKER}\nx", marker=MARKER)
    assert _posts(fake, "/issues/1/comments") == [502] * (GatewaySettings().retries + 1)
    assert fake.comments(REPO, 1) == []


@pytest.mark.parametrize(
    ("status", "after", "posts"),
    [
        pytest.param(502, True, [502], id="502-after-the-run-was-made"),
        pytest.param(0, True, [0], id="connection-lost-after-the-run-was-made"),
        pytest.param(503, False, [503, 201], id="503-before"),
    ],
)
def test_a_check_run_whose_answer_was_lost_is_created_once_beside_an_earlier_attempts_run(
    github: tuple[FakeGitHub, GitHubGateway], status: int, after: bool, posts: list[int]
) -> None:
    """A re-run of the job meets the first attempt's run of the same name on the same commit: it is not ours."""
    fake, gateway = github
    head = str(fake.branch_sha(REPO, "main"))
    markdown = render_markdown(FAILING)
    first = publish_check(gateway, head_sha=head, report=FAILING, markdown=markdown, details_url=None)
    fake.fail_next("POST", r"/check-runs$", status, after=after)
    second = publish_check(gateway, head_sha=head, report=PASSING, markdown=markdown, details_url=None)
    runs = fake.check_runs(REPO)
    assert [(r["name"], r["conclusion"]) for r in runs] == [("ci-perf", "failure"), ("ci-perf", "success")]
    assert (second.kind, second.url) == ("check-run", f"{fake.web_url}/{REPO}/runs/{runs[1]['id']}")
    assert first.url != second.url
    assert _posts(fake, "/check-runs")[1:] == posts
