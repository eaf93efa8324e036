"""The pipeline every entry point runs: measure → history → judge → render → write (→ record).

``run_pipeline`` is ``ci-perf run`` (and the action's check and record paths, and the demo);
``conclude`` is the tail that ``compare`` and the action's report mode share with it. This
module wires the edges (Locust, the store, files, the terminal) to the pure core
(``analysis.judge``); every side effect it needs comes in as a parameter.
"""

from __future__ import annotations

import functools
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from ci_perf import __version__
from ci_perf.analysis.compare import ComparisonReport, compare_runs
from ci_perf.analysis.confirm import JUDGED, candidates, duet_first, rerun_path, wants_reruns
from ci_perf.analysis.judge import Judgement, Report, Unmatched, describe_change, judge
from ci_perf.analysis.noise import learn_run_noise
from ci_perf.analysis.stats import warm_up
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison, Config, Gate, check_http_url
from ci_perf.errors import InputError
from ci_perf.export import export_run
from ci_perf.formatting import one_line
from ci_perf.gitinfo import detect_git, detect_repository
from ci_perf.loadtest.protocol import ENV_VARIABLES
from ci_perf.loadtest.readiness import wait_until_ready
from ci_perf.loadtest.runner import check_header_variables, check_run, run_locust
from ci_perf.report import render
from ci_perf.results import History, RunResult, load_result, save_result
from ci_perf.servermetrics import check_queries, with_server_metrics
from ci_perf.store import BaselineStore
from ci_perf.store.local import LocalStore

PLAIN_PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class RunOutcome:
    result: RunResult
    judgement: Judgement
    markdown: str  # report.md, as published
    recorded_at: str | None

    @property
    def report(self) -> Report:
        return self.judgement.report

    @property
    def exit_code(self) -> int:
        return self.judgement.exit_code


class ProgressLine:
    """Live progress: one rewritten line on a terminal, one plain line every ~10 s in a CI log."""

    def __init__(self, stream: TextIO, *, interactive: bool) -> None:
        self.stream = stream
        self.interactive = interactive
        self.last_plain = 0.0
        self.drawn = False

    def __call__(self, p: Mapping[str, Any]) -> None:
        p95 = p.get("p95_ms")
        total = f"/{p['total']:.0f}" if p["total"] else ""  # 0: a locustfile's own shape decides the end
        line = (
            f"ci-perf: {p['elapsed']:.0f}{total} s  {p['rps']:.0f} rps  "
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
    suite: str | None = None,
    unmatched: Unmatched | None = None,
) -> RunOutcome:
    """Run one load test end to end and write ``result.json``, ``report.md`` and ``report.json``.

    ``store`` defaults to the local store of ``config.store.path``; ``prefer_sha`` is a pull
    request's merge-base commit (the history ends at its run when there is one);
    ``gate_changes`` are the settings a pull request changes (shown, not applied); ``suite`` and
    ``unmatched`` go to ``judge``. A candidate regression makes the load run again
    (``comparison.confirm_runs`` times, into ``confirm-N/``; never when recording).
    """
    forget_reruns(out_dir)
    again = functools.partial(measure, config, target=target, branch=branch, extra_args=extra_args, environ=environ)
    again = functools.partial(again, cwd=cwd, progress=progress, echo=echo)
    result = again(out_dir=out_dir)
    notes = export_run(result, config.export, out_dir=out_dir, repository=detect_repository(environ, cwd), echo=echo)
    store = store if store is not None else LocalStore(Path(config.store.path))
    history = baseline_history(store, result, config.gate.comparison, prefer_sha=prefer_sha)
    rerun = functools.partial(rerun_to_confirm, config, result, history, echo=echo)
    rerun_env = functools.partial(rerun_environment, config, environ)
    reruns = (
        [] if record else rerun(rerun=lambda i: again(out_dir=(out_dir / rerun_path(i)).parent, environ=rerun_env(i)))
    )
    judgement, markdown = conclude(
        config.gate,
        result,
        history=history,
        out_dir=out_dir,
        echo=echo,
        run_url=run_url,
        gate_changes=gate_changes,
        suite=suite,
        unmatched=unmatched if not history.runs and result.base is None else None,
        notes=notes,
        reruns=reruns,
    )
    recorded_at = _record(store, result, echo=echo) if record else None
    return RunOutcome(result=result, judgement=judgement, markdown=markdown, recorded_at=recorded_at)


def _record(store: BaselineStore, result: RunResult, *, echo: TextIO | None) -> str | None:
    """Append the run to the store as a baseline, unless it was unreliable."""
    if result.meta.reliable:
        return store.record(result)
    if echo is not None:
        echo.write("ci-perf: not recorded as a baseline: the run was unreliable\n")
    return None


def measure(
    config: Config,
    *,
    out_dir: Path,
    target: str | None,
    branch: str | None,
    extra_args: Sequence[str],
    environ: Mapping[str, str],
    cwd: Path,
    progress: ProgressLine | None,
    echo: TextIO | None,
) -> RunResult:
    """Readiness, the Locust run and its summary, saved as ``result.json``."""
    url = _target_flag(target) if target else config.target
    if not url:
        raise InputError("no target: set target: in the config or pass --target http://host:port")
    checked = check_run(config, extra_args=extra_args, environ=environ)  # Locust's settings, the locustfile
    check_header_variables(config, environ)  # before the readiness wait: exit 2 naming the variable
    check_server_metrics(config, environ=environ, echo=echo)  # a query that does not parse: exit 2, before any load
    baseline_target = config.gate.comparison.baseline_target
    wait_until_ready(url, config.readiness)
    if baseline_target:
        wait_until_ready(baseline_target, config.readiness)
    if config.load.workers and echo is not None:
        echo.write(_workers_wanted(config))
        echo.flush()
    warm_up()  # scipy's import overlaps with Locust's start instead of adding to the run's wall time
    try:
        load_run = run_locust(
            config,
            target=url,
            out_dir=out_dir,
            extra_args=extra_args,
            on_progress=progress,
            environ=environ,
            user_shape=checked.user_shape,
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
        load=load_run.load,  # a locustfile's own shape sets the duration
        target=url,
        tool_version=__version__,
        git_sha=sha,
        git_branch=branch or detected_branch,
        baseline_target=baseline_target,
        warnings=shared_host_warning(url, baseline_target) if baseline_target else (),
        break_on=config.break_limits() if config.load.profile == "breakpoint" else None,
    )
    result = measure_server_side(config, result, environ=environ)
    save_result(result, out_dir / "result.json")
    load_run.collected_path.unlink(missing_ok=True)  # result.json holds all of it now
    return result


def rerun_to_confirm(
    config: Config, result: RunResult, history: History, *, rerun: Callable[[int], RunResult], echo: TextIO | None
) -> list[RunResult]:
    """Run the load ``comparison.confirm_runs`` more times when the first run has a candidate regression.

    ``rerun(i)`` measures re-run i (from 1) into ``confirm-i/`` under the out dir (``rerun_environment``).
    """
    settings = config.gate.comparison
    if settings.confirm_runs == 0:
        return []
    first = compare_runs(
        result,
        history.runs,
        settings=settings,
        matched_on=history.matched_on,
        run_noise=learn_run_noise(history.others),
    )
    if not wants_reruns(first, result, history.runs, settings):
        return []
    if echo is not None:
        echo.write(
            f"ci-perf: candidate regression: {one_line(_candidates_named(first, settings), 300)}; running the load "
            f"{settings.confirm_runs} more time(s) to confirm it (comparison.confirm_runs)\n"
        )
        echo.flush()
    return [rerun(i) for i in range(1, settings.confirm_runs + 1)]


def rerun_environment(config: Config, environ: Mapping[str, str], index: int) -> Mapping[str, str]:
    """Re-run ``index``'s environment: in duet, which arm of each pair starts first alternates between re-runs."""
    if not config.gate.comparison.baseline_target:
        return environ
    return {**environ, ENV_VARIABLES["duet_first"]: duet_first(index)}


def _candidates_named(first: ComparisonReport, settings: Comparison) -> str:
    found = set(candidates(first, settings, extra_runs=settings.confirm_runs))
    named = [
        describe_change(e.endpoint, m)
        for e in first.endpoints
        for m in e.metrics.values()
        if (e.endpoint, m.metric) in found and m.metric in JUDGED
    ]
    return "; ".join(named) or "capacity below every baseline run"


def forget_reruns(out_dir: Path) -> None:
    """An earlier run's re-runs in the same out dir are not this run's."""
    for path in out_dir.glob("confirm-*/result.json"):
        path.unlink(missing_ok=True)


def read_reruns(
    out_dir: Path, result: RunResult, *, limit: int, read: Callable[[Path], RunResult] = load_result
) -> list[RunResult]:
    """The re-runs written beside ``result`` (``confirm-N/result.json``) of the same commit and scenario.

    ``read``: how a result file is read (report mode: an artifact's, size-checked).
    """
    reruns = []
    for index in range(1, limit + 1):
        path = out_dir / rerun_path(index)
        if not path.is_file():
            break
        rerun = read(path)
        if (rerun.meta.git_sha, rerun.meta.scenario_key) != (result.meta.git_sha, result.meta.scenario_key):
            raise InputError(f"{path}: a re-run of another commit or scenario than {out_dir / 'result.json'}")
        reruns.append(rerun)
    return reruns


def check_server_metrics(config: Config, *, environ: Mapping[str, str], echo: TextIO | None) -> None:
    """Have Prometheus parse every server-side query (``ConfigError`` if one does not); a Prometheus that
    cannot be asked now is a warning: the run goes on, and its metrics will say why they are missing."""
    if config.server_metrics is None:
        return
    budget = config.gate.performance_budget
    warning = check_queries(config.server_metrics, budget, environ=environ, now=time.time())
    if warning and echo is not None:
        echo.write(f"ci-perf: warning: {warning}\n")
        echo.flush()


def measure_server_side(config: Config, result: RunResult, *, environ: Mapping[str, str]) -> RunResult:
    """The run's server-side metrics (``server_metrics``) over its measured window, known only now."""
    if config.server_metrics is None:
        return result
    return with_server_metrics(result, config.server_metrics, config.gate.performance_budget, environ=environ)


def _workers_wanted(config: Config) -> str:
    load, baseline_target = config.load, config.gate.comparison.baseline_target
    return (
        f"ci-perf: waiting up to {load.worker_timeout:g} s for {load.workers} Locust worker(s) on "
        f"{load.master_host}:{load.master_port}; start each with `ci-perf worker --config <this config> "
        f"--master <this host>:{load.master_port}"
        + (f" --baseline-target {baseline_target}" if baseline_target else "")
        + "`\n"
    )


def baseline_history(
    store: BaselineStore, result: RunResult, comparison: Comparison, *, prefer_sha: str | None = None
) -> History:
    """The runs ``result`` is compared with; none in duet mode (the base arm of the same run is the baseline)."""
    if result.base is not None:
        return History()
    return store.history(
        scenario_key=result.meta.scenario_key,
        load_key=result.meta.load_key,
        branch=comparison.baseline_branch,
        limit=comparison.history,
        prefer_sha=prefer_sha,
    )


def conclude(
    gate: Gate,
    result: RunResult,
    *,
    history: History,
    out_dir: Path,
    echo: TextIO | None,
    run_url: str | None = None,
    gate_changes: Sequence[str] = (),
    advisory: str | None = None,
    suite: str | None = None,
    unmatched: Unmatched | None = None,
    notes: Sequence[str] = (),
    reruns: Sequence[RunResult] = (),
) -> tuple[Judgement, str]:
    """The common tail of every entry point: judge, render, write ``report.md``/``report.json``, print.

    ``notes``: what went wrong beside the verdict (a failed export), added to the report's notes.
    ``reruns``: the load run again to confirm a candidate regression (``judge``).
    Returns the judgement and the rendered markdown (what the comment, check and summary publish).
    """
    judgement = judge(
        gate,
        result,
        history=history,
        gate_changes=gate_changes,
        advisory=advisory,
        suite=suite,
        unmatched=unmatched,
        reruns=reruns,
    )
    if notes:
        report = judgement.report
        judgement = Judgement(report=report.model_copy(update={"notes": [*report.notes, *notes]}))
    rendered = render(judgement.report, run_url=run_url)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(rendered.markdown, encoding="utf-8")
    (out_dir / "report.json").write_text(rendered.json, encoding="utf-8")
    if echo is not None:
        echo.write(rendered.terminal)
        echo.flush()
    return judgement, rendered.markdown


def compare_offline(gate: Gate, *, baseline: Path, current: Path, out_dir: Path, echo: TextIO | None) -> Judgement:
    """``ci-perf compare``: the same judgement as ``run`` on results already recorded.

    ``baseline`` is a store directory (its runs of the current run's scenario on the baseline
    branch, else of the same load) or a single result file.
    """
    result = load_result(current)
    if baseline.is_dir():
        store = LocalStore(baseline)
        if not store.entries():
            raise InputError(f"{baseline}: no recorded runs (expected a ci-perf store with index.jsonl)")
        history = baseline_history(store, result, gate.comparison)
        if not history.runs and result.base is None:
            raise InputError(
                f"{baseline}: no run of this scenario on branch '{gate.comparison.baseline_branch}'; "
                "set comparison.baseline_branch or pass one result file"
            )
    else:
        history = History(runs=[load_result(baseline)])
    reruns = read_reruns(current.parent, result, limit=gate.comparison.confirm_runs)
    judgement, _ = conclude(gate, result, history=history, out_dir=out_dir, echo=echo, reruns=reruns)
    return judgement


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
