"""``ci-perf watch`` and the action's watch mode: the change points in a store's runs on the baseline branch.

Reads every scenario's recorded runs from a store (a local directory or the data branch), finds the
change points (``analysis.watch``), writes ``watch.md`` and ``watch.json`` and returns the lines to
print. No load is run and nothing is written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ci_perf.analysis.watch import WatchedChange, WatchReport, watch_runs
from ci_perf.config import Comparison
from ci_perf.errors import EnvironmentFailure, InputError
from ci_perf.formatting import format_delta, format_ms, one_line
from ci_perf.report import render_watch
from ci_perf.results import History
from ci_perf.store import IndexEntry
from ci_perf.store.local import LocalStore

WATCH_RUNS = 100  # runs of each scenario read (the data branch keeps 100)


class WatchedStore(Protocol):
    def entries(self) -> list[IndexEntry]:
        """Every recorded run, oldest first."""
        ...

    def history(
        self, *, scenario_key: str, load_key: str, branch: str, limit: int, prefer_sha: str | None = None
    ) -> History: ...


@dataclass(frozen=True)
class Watched:
    report: WatchReport
    markdown: str
    lines: list[str]


def watch_store(store: WatchedStore, *, branch: str, settings: Comparison, runs: int = WATCH_RUNS) -> Watched:
    """The change points of every scenario recorded on ``branch``, rendered."""
    newest: dict[str, IndexEntry] = {}
    for entry in store.entries():
        if entry.branch == branch:
            newest[entry.scenario_key] = entry  # entries are oldest first: the newest run of each scenario
    histories = [
        store.history(scenario_key=e.scenario_key, load_key=e.load_key, branch=branch, limit=runs).runs
        for e in newest.values()
    ]
    report = watch_runs([h for h in histories if h], branch=branch, settings=settings)
    return Watched(report, render_watch(report, settings=settings), [describe(c) for c in report.changes])


def watch_local(root: Path, *, branch: str, settings: Comparison, runs: int = WATCH_RUNS) -> Watched:
    """``ci-perf watch --baseline DIR``. Not a store, or no run on ``branch``: bad input (2); a store whose
    files cannot be read (an I/O error): an environment failure (3)."""
    store = LocalStore(root)
    if not store.index_path.is_file():
        raise InputError(f"{root}: not a ci-perf store (no index.jsonl); pass the folder `ci-perf run --record` fills")
    try:
        watched = watch_store(store, branch=branch, settings=settings, runs=runs)
    except UnicodeDecodeError as exc:
        raise InputError(f"{store.index_path}: not a ci-perf index (not UTF-8 text); remove or repair it") from exc
    except OSError as exc:
        raise EnvironmentFailure(f"{root}: the store could not be read ({exc.strerror or exc})") from exc
    if not watched.report.runs:
        raise InputError(f"{root}: no run recorded on branch '{branch}'; pass --branch or set baseline_branch")
    return watched


def write_watch(watched: Watched, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "watch.md").write_text(watched.markdown, encoding="utf-8")
    (out_dir / "watch.json").write_text(watched.report.model_dump_json(indent=2), encoding="utf-8")


def describe(change: WatchedChange) -> str:
    """One inert line: ``regression GET /a p95 +21.3 % (48.1 ms → 58.3 ms) in 1a2b3c4..5d6e7f8, 5 runs ago``."""
    commits = f"{(change.before_sha or '?')[:7]}..{(change.after_sha or '?')[:7]}"
    text = (
        f"{change.direction} {change.endpoint} {change.metric} {format_delta(change.change_percent)} "
        f"({format_ms(change.before_ms)} → {format_ms(change.after_ms)}) in {commits}, "
        f"{change.runs_since} run{'s' if change.runs_since != 1 else ''} at the new level "
        f"(scenario {change.scenario[:12]})"
    )
    return one_line(text, 400)
