"""The composition root of ``ci-perf run``: readiness → Locust → summary → store → analysis → report.

This is the one place that wires edges (Locust, the store, files, the terminal)
to the pure core; every side effect it needs comes in as a parameter.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ci_perf import __version__
from ci_perf.analysis.budget import check_budget
from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Config, check_http_url
from ci_perf.errors import EXIT_GATE_FAILED, EXIT_PASS, InputError
from ci_perf.gitinfo import detect_git
from ci_perf.loadtest.readiness import wait_until_ready
from ci_perf.loadtest.runner import check_extra_args, check_locustfile, run_locust
from ci_perf.report import Report, build_report, render_markdown, render_terminal
from ci_perf.results import RunResult, load_result, save_result
from ci_perf.store import BaselineStore, History
from ci_perf.store.local import LocalStore

PLAIN_PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class RunOutcome:
    result: RunResult
    report: Report
    exit_code: int
    recorded_at: str | None


class ProgressLine:
    """Live progress: one rewritten line on a terminal, one plain line every ~10 s in a CI log."""

    def __init__(self, stream: TextIO, *, interactive: bool) -> None:
        self.stream = stream
        self.interactive = interactive
        self.last_plain = 0.0
        self.drawn = False

    def __call__(self, p: Mapping[str, Any]) -> None:
        p95 = p.get("p95_ms")
        line = (
            f"ci-perf: {p['elapsed']:.0f}/{p['total']:.0f} s  {p['rps']:.0f} rps  "
            f"{p['requests']:.0f} requests  {p['failures']:.0f} errors  p95 {'-' if p95 is None else f'{p95:.1f} ms'}"
        )
        if self.interactive:
            self.stream.write("\r\033[K" + line)
            self.drawn = True
        elif time.monotonic() - self.last_plain >= PLAIN_PROGRESS_EVERY_S:
            self.last_plain = time.monotonic()
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Clear the live line so that what follows starts on a clean line."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False


def run_pipeline(
    config: Config,
    *,
    out_dir: Path,
    target: str | None = None,
    record: bool = False,
    branch: str | None = None,
    extra_args: Sequence[str] = (),
    environ: Mapping[str, str],
    cwd: Path,
    progress: ProgressLine | None = None,
    echo: TextIO | None = sys.stdout,
    store: BaselineStore | None = None,
    prefer_sha: str | None = None,
    gate_changes: Sequence[str] = (),
    run_url: str | None = None,
) -> RunOutcome:
    """Run one load test end to end and write ``result.json``, ``report.md`` and ``report.json``.

    ``store`` defaults to the local store of ``config.store.path``; ``prefer_sha`` is a pull
    request's merge-base commit (the history ends at its run when there is one);
    ``gate_changes`` are the budget/comparison settings a pull request changes (shown, not applied).
    """
    url = _target_flag(target) if target else config.target
    if not url:
        raise InputError("no target: set target: in the config or pass --target http://host:port")
    check_extra_args(extra_args)
    if config.locustfile:
        check_locustfile(Path(config.locustfile))
    baseline_target = config.comparison.baseline_target
    wait_until_ready(url, config.readiness)
    if baseline_target:
        wait_until_ready(baseline_target, config.readiness)
    if config.load.workers and echo is not None:
        load = config.load
        echo.write(
            f"ci-perf: waiting up to {load.worker_timeout:g} s for {load.workers} Locust worker(s) on "
            f"{load.master_host}:{load.master_port}; start each with `ci-perf worker --config <this config> "
            f"--master <this host>:{load.master_port}"
            + (f" --baseline-target {baseline_target}" if baseline_target else "")
            + "`\n"
        )
        echo.flush()
    try:
        load_run = run_locust(
            config, target=url, out_dir=out_dir, extra_args=extra_args, on_progress=progress, environ=environ
        )
    finally:
        if progress is not None:
            progress.end()
    sha, detected_branch = detect_git(environ, cwd)
    if not load_run.collected.windows:
        raise InputError(
            f"the run recorded no requests; check that the locustfile's users have tasks (see {load_run.log_path})"
        )
    result = summarize_run(
        load_run.collected,
        load=config.load,
        target=url,
        tool_version=__version__,
        git_sha=sha,
        git_branch=branch or detected_branch,
        baseline_target=baseline_target,
        warnings=shared_host_warning(url, baseline_target) if baseline_target else (),
        break_on=config.break_limits() if config.load.profile == "breakpoint" else None,
    )
    save_result(result, out_dir / "result.json")
    load_run.collected_path.unlink(missing_ok=True)  # result.json holds all of it now
    if store is None:
        store = LocalStore(Path(config.store.path))
    history = (
        History()  # duet: the baseline is the base deployment, measured in this very run
        if result.base is not None
        else store.history(
            scenario_key=result.meta.scenario_key,
            load_key=result.meta.load_key,
            branch=config.comparison.baseline_branch,
            limit=config.comparison.history,
            prefer_sha=prefer_sha,
        )
    )
    report = analyse(config, result, history=history, gate_changes=gate_changes)
    write_reports(report, out_dir, run_url=run_url)
    if echo is not None:
        echo.write(render_terminal(report))
        echo.flush()
    recorded_at = None
    if record:
        if not result.meta.reliable:
            if echo is not None:
                echo.write("ci-perf: not recorded as a baseline: the run was unreliable\n")
        else:
            recorded_at = store.record(result)
    exit_code = EXIT_GATE_FAILED if report.status == "fail" else EXIT_PASS  # the one place both are decided
    return RunOutcome(result=result, report=report, exit_code=exit_code, recorded_at=recorded_at)


def compare_offline(config: Config, *, baseline: Path, current: Path, out_dir: Path, echo: TextIO | None) -> Report:
    """``ci-perf compare``: the same analysis as ``run`` on results already recorded.

    ``baseline`` is a store directory (its runs of the current run's scenario on the baseline
    branch, else of the same load) or a single result file.
    """
    result = load_result(current)
    if baseline.is_dir():
        store = LocalStore(baseline)
        if not store.entries():
            raise InputError(f"{baseline}: no recorded runs (expected a ci-perf store with index.jsonl)")
        history = store.history(
            scenario_key=result.meta.scenario_key,
            load_key=result.meta.load_key,
            branch=config.comparison.baseline_branch,
            limit=config.comparison.history,
        )
        if not history.runs:
            raise InputError(
                f"{baseline}: no run of this scenario on branch '{config.comparison.baseline_branch}'; "
                "set comparison.baseline_branch or pass one result file"
            )
    else:
        history = History(runs=[load_result(baseline)])
    report = analyse(config, result, history=history)
    write_reports(report, out_dir)
    if echo is not None:
        echo.write(render_terminal(report))
    return report


def shared_host_warning(target: str, baseline_target: str) -> list[str]:
    """Duet arms on one host compete for its CPU: still fair (both slow down alike), but say so."""
    hosts = [urlsplit(u).hostname or "" for u in (target, baseline_target)]
    try:
        addresses = [socket.gethostbyname(h) for h in hosts]
    except OSError:
        addresses = hosts
    if addresses[0] != addresses[1]:
        return []
    warning = (
        f"duet: the target and the base deployment are on the same host ({hosts[0]}); they compete for its "
        "CPU and memory, which both arms feel alike but which lowers the load each can take"
    )
    return [warning]


def _target_flag(target: str) -> str:
    try:
        return check_http_url(target)
    except ValueError as exc:
        raise InputError(f"--target: {exc}") from exc


def analyse(config: Config, result: RunResult, *, history: History, gate_changes: Sequence[str] = ()) -> Report:
    """The pure core: budget and comparison of one result with its history."""
    comparison = compare_runs(result, history.runs, settings=config.comparison, matched_on=history.matched_on)
    budget = check_budget(config.performance_budget, result)
    return build_report(
        meta=result.meta,
        aggregate=result.aggregate,
        endpoint_stats=[(e.name, e.stats, e.errors) for e in result.endpoints],
        budget=budget,
        comparison=comparison,
        settings=config.comparison,
        baseline_anchor=history.anchor_sha,
        gate_changes=gate_changes,
        capacity=result.capacity,
        open_model=result.open_model,
    )


def write_reports(report: Report, out_dir: Path, *, run_url: str | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(render_markdown(report, run_url=run_url), encoding="utf-8")
    (out_dir / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
