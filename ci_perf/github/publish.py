"""Putting a report where people read it: the sticky PR comment and the check.

The comment is found by its hidden marker *and* its author (ours), then edited in place, so a
pull request has one ci-perf comment however often it runs. ``on-change`` compares a hidden
fingerprint of the gate (status, each budget rule, each verdict) with the last comment's.
The check is a check run; without ``checks: write`` a commit status; without that only the job
summary — each fallback with a warning naming the permission to grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ci_perf.analysis.judge import Report
from ci_perf.errors import PermissionDenied
from ci_perf.formatting import one_line
from ci_perf.github.gateway import GitHubGateway
from ci_perf.report import fingerprint_in, marker

CHECK_NAME = "ci-perf"


def check_name(suite: str | None) -> str:
    """``ci-perf``; ``ci-perf (api)`` for the suite ``id: api``, so a matrix of suites posts a check each."""
    return f"{CHECK_NAME} ({suite})" if suite else CHECK_NAME


CHECK_TEXT_LIMIT = 65_535

CommentAction = Literal["created", "updated", "unchanged", "skipped", "denied"]
CheckKind = Literal["check-run", "status", "summary-only"]


@dataclass(frozen=True)
class CommentOutcome:
    action: CommentAction
    url: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    kind: CheckKind
    url: str | None = None
    warnings: tuple[str, ...] = ()


def upsert_comment(
    gateway: GitHubGateway, *, number: int, markdown: str, report: Report, policy: str
) -> CommentOutcome:
    """Create or edit our one comment (of the report's suite) on pull request ``number`` according to ``policy``."""
    if policy == "never":
        return CommentOutcome("skipped", reason="comment: never")
    try:
        me = gateway.identity()
        hidden = marker(report.suite)
        ours = [c for c in gateway.comments_with(number, hidden) if c.author == me]
        last = ours[-1] if ours else None
        if policy == "on-change" and not _worth_posting(report, last.body if last else None):
            reason = "nothing changed since the last comment" if last else "nothing to report"
            return CommentOutcome("unchanged", url=last.url if last else None, reason=reason)
        if last is None:
            made = gateway.create_comment(number, markdown, marker=hidden)
            return CommentOutcome("created", url=made.url)
        return CommentOutcome("updated", url=gateway.edit_comment(number, last.id, markdown))
    except PermissionDenied as exc:
        return CommentOutcome("denied", reason=str(exc))


def _worth_posting(report: Report, last_body: str | None) -> bool:
    """``on-change``: a regression, or a gate different from the last comment (a failure when there is none)."""
    if report.regressions:
        return True
    if last_body is None:
        return report.status == "fail"
    return fingerprint_in(last_body) != report.fingerprint()


def publish_check(
    gateway: GitHubGateway, *, head_sha: str, report: Report, markdown: str, details_url: str | None
) -> CheckOutcome:
    conclusion = {"pass": "success", "fail": "failure", "inconclusive": "neutral"}[report.verdict]
    blocks = report.verdict == "fail" or (report.advisory is not None and report.verdict == "inconclusive")
    if blocks and conclusion == "neutral":  # neutral passes a required check: an advisory unknown must not
        conclusion = "action_required" if details_url else "failure"
    title = one_line(report.headline, 200)  # it names endpoints: untrusted text
    warnings = []
    try:
        url = gateway.create_check_run(
            head_sha=head_sha,
            name=check_name(report.suite),
            conclusion=conclusion,
            title=title,
            summary=markdown[:CHECK_TEXT_LIMIT],
            details_url=details_url,
        )
        return CheckOutcome("check-run", url=url)
    except PermissionDenied as exc:
        warnings.append(f"no check run: {exc}; falling back to a commit status")
    state = "failure" if blocks else "success"
    try:
        gateway.create_status(
            sha=head_sha,
            state=state,
            description=one_line(report.headline, 140),
            context=check_name(report.suite),
            target_url=details_url,
        )
        return CheckOutcome("status", warnings=tuple(warnings))
    except PermissionDenied as exc:
        warnings.append(f"no commit status either: {exc}; the result is in the job summary only")
    return CheckOutcome("summary-only", warnings=tuple(warnings))
