"""Where base-branch runs are kept between CI runs; the history a new run is compared with.

Two stores share one index format and one selection rule (``select_history``):
``local.LocalStore`` (a directory) and ``github_branch.DataBranchStore`` (a data branch
on GitHub). Only what loads and writes the files differs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ci_perf.models import Frozen
from ci_perf.results import History, MatchedOn, RunResult

NOISE_MIN_RUNS = 3  # a history shows run-to-run noise from this many runs (as history mode)
NOISE_HISTORIES = 4
NOISE_RUNS_EACH = 5


class IndexEntry(Frozen):
    """One recorded run, as listed in a store's index."""

    file: str
    scenario_key: str
    load_key: str
    branch: str | None
    sha: str | None
    ended_at: float


@dataclass(frozen=True)
class Selection:
    entries: list[IndexEntry]
    matched_on: MatchedOn
    anchor_sha: str | None


class BaselineStore(Protocol):
    def record(self, result: RunResult) -> str:
        """Append a run; return where it was stored."""
        ...

    def history(
        self, *, scenario_key: str, load_key: str, branch: str, limit: int, prefer_sha: str | None = None
    ) -> History:
        """The last ``limit`` runs on ``branch`` of the same scenario; see ``select_history``."""
        ...


def select_history(
    entries: Sequence[IndexEntry],
    *,
    scenario_key: str,
    load_key: str,
    branch: str,
    limit: int,
    prefer_sha: str | None = None,
) -> Selection:
    """Choose the baseline runs from an index (pure).

    Runs of the same scenario on ``branch``; when none has the same endpoint set, runs with
    the same load settings (``matched_on="load"``), so that adding an endpoint keeps the
    history of the others. With ``prefer_sha`` (a pull request's merge-base commit) and a run
    of that commit, the history ends at that run: later base-branch runs measure commits
    the pull request does not contain.
    """
    on_branch = sorted((e for e in entries if e.branch == branch), key=lambda e: e.ended_at)
    same = [e for e in on_branch if e.scenario_key == scenario_key]
    matched_on: MatchedOn = "scenario"
    if not same:
        same = [e for e in on_branch if e.load_key == load_key]
        matched_on = "load" if same else "scenario"
    anchor = None
    if prefer_sha:
        anchored = [i for i, e in enumerate(same) if e.sha == prefer_sha]
        if anchored:
            same = same[: anchored[-1] + 1]
            anchor = prefer_sha
    return Selection(entries=same[-limit:], matched_on=matched_on, anchor_sha=anchor)


def select_noise_histories(
    entries: Sequence[IndexEntry], *, branch: str, chosen: Sequence[IndexEntry]
) -> list[list[IndexEntry]]:
    """The stored histories single mode learns its run-to-run noise from (pure; ``analysis.noise``).

    Only when ``chosen`` (the baseline) has 1-2 runs: then the scenarios on ``branch`` with
    ``NOISE_MIN_RUNS`` runs or more, the ``NOISE_HISTORIES`` most recently run, the last
    ``NOISE_RUNS_EACH`` runs of each, this run's own scenario included when it has that many (a short
    ``comparison.history``), never the baseline's own runs: at most 20 files are read.
    """
    if not 1 <= len(chosen) <= 2:
        return []
    skip = {e.file for e in chosen}
    groups: dict[str, list[IndexEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.ended_at):
        if entry.branch == branch and entry.file not in skip:
            groups.setdefault(entry.scenario_key, []).append(entry)
    usable = [runs[-NOISE_RUNS_EACH:] for runs in groups.values() if len(runs) >= NOISE_MIN_RUNS]
    return sorted(usable, key=lambda runs: runs[-1].ended_at)[-NOISE_HISTORIES:]


def run_file_name(result: RunResult) -> str:
    """``<scenario>/<branch>/<UTC time><ms>-<sha12>.json``: unique per run, sorted by time within a folder."""
    meta = result.meta
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(meta.ended_at))
    millis = int(meta.ended_at * 1000) % 1000
    branch = re.sub(r"[^A-Za-z0-9._-]+", "-", meta.git_branch or "no-branch").strip("-.") or "no-branch"
    return f"{meta.scenario_key}/{branch}/{stamp}{millis:03d}-{(meta.git_sha or 'nosha')[:12]}.json"


def index_entry(result: RunResult, file: str) -> IndexEntry:
    meta = result.meta
    return IndexEntry(
        file=file,
        scenario_key=meta.scenario_key,
        load_key=meta.load_key,
        branch=meta.git_branch,
        sha=meta.git_sha,
        ended_at=meta.ended_at,
    )
