"""What the action does for a given event: a pure decision, so ``ci-perf action`` reads straight down.

=====================  ==================================================================
activity               when (``mode: auto``)
=====================  ==================================================================
``check-pr``           ``pull_request`` / ``pull_request_target`` / ``merge_group``: run,
                       compare with the base branch's history, comment (a pull request's),
                       check run on the head; never writes the baseline
``record-baseline``    ``push`` to the default branch: run, append the run to the data branch
``report-only``        ``workflow_run``: post the result of an unprivileged run (an artifact)
``local``              anything else: run and report (files, job summary), no writes
``watch``              only with ``mode: watch`` (a schedule): the change points of the data
                       branch's runs on the baseline branch (job summary, output); no load
=====================  ==================================================================

``mode: check | record | report | watch`` forces the activity; ``record`` outside a push to the
default branch still records (a scheduled nightly baseline, say) and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Activity = Literal["check-pr", "record-baseline", "report-only", "watch", "local"]
_PR_EVENTS = {"pull_request", "pull_request_target", "merge_group"}


@dataclass(frozen=True)
class Decision:
    activity: Activity
    why: str


def decide(  # noqa: PLR0911 - a decision table reads best as one return per row
    *, mode: str, event_name: str, ref: str | None, default_branch: str | None, has_change: bool
) -> Decision:
    """``has_change``: the event carries a pull request or a merge group's entry to judge."""
    if mode == "check":
        if has_change:
            return Decision("check-pr", f"mode: check on a {event_name} event")
        return Decision("local", f"mode: check on a {event_name} event (no pull request): run and report")
    if mode == "record":
        return Decision("record-baseline", "mode: record")
    if mode == "report":
        return Decision("report-only", "mode: report")
    if mode == "watch":
        return Decision("watch", "mode: watch: the change points on the baseline branch, no load")
    if event_name in _PR_EVENTS and has_change:
        return Decision("check-pr", f"{event_name} event")
    if event_name == "push":
        if default_branch and ref == f"refs/heads/{default_branch}":
            return Decision("record-baseline", f"push to the default branch {default_branch}")
        return Decision("local", f"push to {ref or 'a ref'}, not the default branch: the baseline is not written")
    if event_name == "workflow_run":
        return Decision("report-only", "workflow_run event: posting the result of the triggering run")
    return Decision("local", f"{event_name} event: run and report without writing to GitHub")
