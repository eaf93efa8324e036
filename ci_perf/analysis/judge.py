"""The judgement: one run against its gate and its history → a report and an exit code.

Pure: a result, the gate settings (``config.Gate``) and the baseline history in, a ``Judgement``
out; no I/O, no clock. This is the one place where pass/fail and the exit code are decided:
the gate fails on budget violations and/or regressions, as ``comparison.fail_on`` says.
Every entry point — ``ci-perf run``, ``compare``, ``demo`` and the action's check, record and
report paths — calls ``judge`` and then renders its report (``report.py``, ``junit.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from ci_perf.analysis.budget import LOCUSTFILE, BudgetCheck, BudgetReport, check_budget
from ci_perf.analysis.compare import METRICS, ComparisonReport, EndpointComparison, MetricComparison, compare_runs
from ci_perf.analysis.confirm import Confirmation, confirm_reruns
from ci_perf.analysis.noise import learn_run_noise
from ci_perf.analysis.server import ServerReport, server_report
from ci_perf.config import Comparison, Gate
from ci_perf.errors import EXIT_ENVIRONMENT, EXIT_GATE_FAILED, EXIT_PASS
from ci_perf.formatting import format_delta, format_points, format_rps, format_value, plural
from ci_perf.models import Frozen
from ci_perf.results import (
    AGGREGATE,
    MEASURES,
    Capacity,
    EndpointResult,
    ErrorCount,
    History,
    OpenModelResult,
    RunMeta,
    RunResult,
    Stats,
    TaskException,
)

NO_BASELINE = "no baseline yet"
SINGLE_WARNS = (
    "{regressions} against a single baseline (1-2 runs) warn only and do not fail the check: record 3 or more "
    "baseline runs, or set comparison.gate_on_single_baseline: true to make them gate"
)


class Unmatched(Frozen):
    """A pull request whose load the base branch's history cannot judge: it changed the load, and the base
    branch's settings could not be run in its place."""

    why: str  # shown in the report: what changed, and that the base branch has runs of its own load only
    fails: bool  # the action's ``unmatched_baseline: fail``; else the run is inconclusive (a neutral check)


class EndpointRow(Frozen):
    name: str
    stats: Stats
    comparison: EndpointComparison | None
    budget: Literal["pass", "fail", "none"]
    errors: list[ErrorCount]  # the most frequent failure messages
    other_errors: int = 0  # failures with other messages: the failures table's "other" row

    @property
    def failures_shown(self) -> list[ErrorCount]:
        """The failures table's rows: ``errors`` and the rest as "other (N)", summing to the failures."""
        other = [ErrorCount(message=f"other ({self.other_errors:,})", count=self.other_errors)]
        return self.errors + (other if self.other_errors else [])


class Report(Frozen):
    status: Literal["pass", "fail"]
    headline: str
    gate_reasons: list[str]
    comparison_settings: Comparison
    meta: RunMeta
    aggregate: EndpointRow
    endpoints: list[EndpointRow]
    budget: BudgetReport
    comparison: ComparisonReport | None
    notes: list[str]
    baseline_anchor: str | None = None  # the merge-base commit whose run ends the history
    capacity: Capacity | None = None  # breakpoint runs
    open_model: OpenModelResult | None = None  # arrival-rate runs
    gate_changes: list[str] = []  # budget/comparison settings a pull request changes (shown, not applied)
    advisory: str | None = None  # why the verdict only advises (report mode: the numbers came from the PR's run)
    exceptions: list[TaskException] = []  # the users' unhandled task exceptions (named in the headline)
    other_hosts: list[EndpointResult] = []  # requests to other hosts (no windows): shown, never gated
    suite: str | None = None  # the action's ``id``: which of a repository's suites this is (names the report)
    unmatched_baseline: str | None = None  # why the base branch's history cannot judge this run (it changed the load)
    server: ServerReport | None = None  # server-side metrics from Prometheus (server_metrics), when the run has them
    confirmation: Confirmation | None = None  # candidate regressions measured again (comparison.confirm_runs)

    @property
    def verdict(self) -> Literal["pass", "fail", "inconclusive"]:
        """The action's output: ``inconclusive`` when the gate passed but could not judge.

        That is an unreliable run (no regression verdicts), or a run where nothing gated: no
        budget rule (the default error limit included) and no baseline, as ``fail_on`` counts them.
        """
        if self.status == "fail":
            return "fail"
        if self.unmatched_baseline:
            return "inconclusive"
        fail_on = gating_fail_on(self.comparison_settings, self.comparison)
        gated = any(_gates(self.budget, self.comparison, meta=self.meta, fail_on=fail_on))
        return "pass" if self.meta.reliable and gated else "inconclusive"

    @property
    def regressions(self) -> list[tuple[str, MetricComparison]]:
        return self.comparison.with_verdict("regression") if self.comparison else []

    def fingerprint(self) -> str:
        """What ``comment: on-change`` compares: the gate, each budget rule's status, each verdict."""
        parts: list[str] = [self.status]
        parts += sorted(f"{c.endpoint}|{c.rule}|{c.status}" for c in self.budget.checks)
        if self.comparison:
            parts += sorted(
                f"{e.endpoint}|{m.metric}|{m.verdict}" for e in self.comparison.endpoints for m in e.metrics.values()
            )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_report(
    *,
    meta: RunMeta,
    aggregate: Stats,
    endpoint_stats: Sequence[tuple[str, Stats, list[ErrorCount]]],
    budget: BudgetReport,
    comparison: ComparisonReport | None,
    settings: Comparison,
    baseline_anchor: str | None = None,
    gate_changes: Sequence[str] = (),
    capacity: Capacity | None = None,
    open_model: OpenModelResult | None = None,
) -> Report:
    """Decide pass/fail from the budget and the regressions (per ``fail_on``) and word the headline."""
    failing = {c.endpoint for c in budget.violations}
    checked = {c.endpoint for c in budget.checks}

    def row(name: str, stats: Stats, errors: list[ErrorCount]) -> EndpointRow:
        return EndpointRow(
            name=name,
            stats=stats,
            comparison=comparison.for_endpoint(name) if comparison else None,
            budget="fail" if name in failing else "pass" if name in checked else "none",
            errors=errors,
            other_errors=max(0, stats.failures - sum(e.count for e in errors)),
        )

    rows = [row(name, stats, errors) for name, stats, errors in endpoint_stats]
    aggregate_row = row(AGGREGATE, aggregate, [])
    fail_on, baseline_branch = gating_fail_on(settings, comparison), settings.baseline_branch
    regressions = comparison.with_verdict("regression") if comparison else []
    reasons = []
    if "regression" in fail_on and regressions:
        reasons.append(plural(len(regressions), "regression"))
    if "budget" in fail_on and budget.violations:
        reasons.append(plural(len(budget.violations), "budget violation"))
    notes = _notes(meta=meta, budget=budget, comparison=comparison, baseline_branch=baseline_branch)
    notes += _warned_only(regressions, settings=settings, fail_on=fail_on)
    status: Literal["pass", "fail"] = "fail" if reasons else "pass"
    return Report(
        status=status,
        headline=_shape_prefix(capacity, open_model)
        + (
            _failed(reasons, budget=budget, comparison=comparison)
            if reasons
            else _passed(budget=budget, aggregate=aggregate_row, comparison=comparison, meta=meta, fail_on=fail_on)
        ),
        gate_reasons=reasons,
        comparison_settings=settings,
        meta=meta,
        aggregate=aggregate_row,
        endpoints=rows,
        budget=budget,
        comparison=comparison,
        notes=notes,
        baseline_anchor=baseline_anchor,
        gate_changes=list(gate_changes),
        capacity=capacity,
        open_model=open_model,
    )


def _warned_only(
    regressions: Sequence[tuple[str, MetricComparison]], *, settings: Comparison, fail_on: Sequence[str]
) -> list[str]:
    """The note on regressions that ``gating_fail_on`` keeps from failing the check."""
    if regressions and "regression" in settings.fail_on and "regression" not in fail_on:
        return [SINGLE_WARNS.format(regressions=plural(len(regressions), "regression"))]
    return []


def gating_fail_on(settings: Comparison, comparison: ComparisonReport | None) -> list[str]:
    """``comparison.fail_on``, less ``regression`` against a single baseline (1-2 runs) unless
    ``comparison.gate_on_single_baseline``: a baseline of one run cannot show this scenario's run-to-run
    noise, so its regressions warn (the report names them) and do not fail the check."""
    single = comparison is not None and comparison.mode == "single" and not settings.gate_on_single_baseline
    return [reason for reason in settings.fail_on if not (single and reason == "regression")]


def describe_change(endpoint: str, metric: MetricComparison) -> str:
    """``GET /api/orders p95 +18.0 % [+11.0 %, +26.0 %]`` (points for error rates)."""
    label = MEASURES[METRICS[metric.metric]][0]
    fmt = format_points if metric.scale == "points" else format_delta
    return f"{endpoint} {label} {fmt(metric.effect)} [{fmt(metric.ci_low)}, {fmt(metric.ci_high)}]"


def _shape_prefix(capacity: Capacity | None, open_model: OpenModelResult | None) -> str:
    """Breakpoint and arrival-rate runs lead with what they are for."""
    if capacity is not None:
        found = f"{capacity.users} users, {format_rps(capacity.rps)}" if capacity.users else "below the first step"
        return f"capacity {found}; "
    if open_model is not None:
        return f"{format_rps(open_model.achieved_rps)} of {format_rps(open_model.target_rps)} asked; "
    return ""


def _gates(
    budget: BudgetReport, comparison: ComparisonReport | None, *, meta: RunMeta, fail_on: Sequence[str]
) -> tuple[bool, bool]:
    """(budget, regressions): whether each could have failed this run, as ``fail_on`` counts them."""
    by_budget = "budget" in fail_on and any(c.status != "no-data" for c in budget.checks)
    compared = comparison is not None and comparison.mode != "none"
    return by_budget, "regression" in fail_on and compared and meta.reliable


def _failed(reasons: list[str], *, budget: BudgetReport, comparison: ComparisonReport | None) -> str:
    """Plain text (escaped when rendered): what failed, the first three named."""
    regressions = comparison.with_verdict("regression") if comparison else []
    named = [describe_change(e, m) for e, m in regressions[:3]]
    named += [_violation(c) for c in budget.violations[: max(0, 3 - len(named))]]
    hidden = len(regressions) + len(budget.violations) - len(named)
    more = f" and {hidden} more" if hidden > 0 else ""
    return f"failed: {', '.join(reasons)} ({'; '.join(named)}{more})"


def _violation(check: BudgetCheck) -> str:
    """``GET /x p95 120.0 ms > 100.0 ms``; the run's task exceptions are nobody's endpoint."""
    where = "" if check.endpoint == LOCUSTFILE else f"{check.endpoint} "
    if check.reason:  # a server-side rule Prometheus could not measure, with on_unmeasured: fail
        return f"{where}{check.label} {check.reason}"
    return (
        f"{where}{check.label} {format_value(check.measured, check.unit)} {'>' if check.upper_bound else '<'} "
        f"{format_value(check.limit, check.unit)}{' (default limit)' if check.by_default else ''}"
    )


def _passed(
    *,
    budget: BudgetReport,
    aggregate: EndpointRow,
    comparison: ComparisonReport | None,
    meta: RunMeta,
    fail_on: Sequence[str],
) -> str:
    """Plain text (escaped when rendered): "passed" only when something gated and the run was reliable."""
    by_budget, by_regression = _gates(budget, comparison, meta=meta, fail_on=fail_on)
    compared = comparison is not None and comparison.mode != "none"
    parts = [_budget_phrase(budget, gating="budget" in fail_on)]
    parts.append(_verdict_phrase(comparison) if compared and meta.reliable else "")
    parts.append(_summary(aggregate))
    if not (by_budget or by_regression):
        lead = f"nothing was gated ({', '.join(_ungated_because(budget, comparison, meta=meta, fail_on=fail_on))})"
        lead = lead if meta.reliable else f"unreliable run, {lead}"
    elif not meta.reliable:
        lead = "unreliable run, regressions not judged" if compared else "unreliable run, judged by the budget only"
    else:
        lead = "passed"
    return f"{lead}: {'; '.join(p for p in parts if p)}"


def _budget_phrase(budget: BudgetReport, *, gating: bool) -> str:
    """``5 budget rules met (2 of them the default error limit)``; empty without rules."""
    if not budget.checks:
        return ""
    if budget.violations:  # a passing run has violations only when the budget does not gate
        return f"{plural(len(budget.violations), 'budget violation')} (not gating)"
    defaults = budget.default_checks
    if len(defaults) == len(budget.checks):
        phrase = f"error rate ≤ {format_value(defaults[0].limit, '%')} on every endpoint (default limit)"
    else:
        phrase = f"{plural(len(budget.checks), 'budget rule')} met"
        phrase += f" ({len(defaults)} of them the default error limit)" if defaults else ""
    return phrase if gating else f"{phrase} (not gating)"


def _verdict_phrase(comparison: ComparisonReport | None) -> str:
    """``no regression found``, ``2 regressions (not gating), 3 tests inconclusive``."""
    if comparison is None:
        return ""
    found = len(comparison.with_verdict("regression"))
    unclear = len(comparison.with_verdict("inconclusive"))
    phrase = f"{plural(found, 'regression')} (not gating)" if found else "no regression found"
    return phrase + (f", {unclear} tests inconclusive" if unclear else "")


def _summary(aggregate: EndpointRow) -> str:
    """``p95 12.0 ms, 85.0 rps (+3.1 % p95 vs baseline)``."""
    summary = f"p95 {format_value(aggregate.stats.p95_ms, 'ms')}, {format_value(aggregate.stats.rps, 'rps')}"
    metric = aggregate.comparison.metrics.get("p95") if aggregate.comparison else None
    if metric is not None and metric.delta_percent is not None:
        summary += f" ({format_delta(metric.delta_percent)} p95 vs baseline)"
    return summary


def _ungated_because(
    budget: BudgetReport, comparison: ComparisonReport | None, *, meta: RunMeta, fail_on: Sequence[str]
) -> list[str]:
    """Why nothing could fail the run: ``no budget rule, default error limit disabled, no baseline yet``."""
    why = []
    if not budget.checks:
        if budget.default_error_rate_percent is None:
            why.append("no budget rule, default error limit disabled")
        elif meta.load.profile == "breakpoint":
            why.append("no budget rule; a breakpoint run has no default error limit")
        else:
            why.append("no budget rule")
    elif "budget" not in fail_on:
        why.append("the budget is not in comparison.fail_on")
    else:
        why.append("no data for the budget rules")
    if comparison is None or comparison.mode == "none":
        why.append("no baseline yet")
    elif "regression" not in fail_on and comparison.mode == "single":
        why.append("regressions against 1-2 baseline runs warn only (comparison.gate_on_single_baseline)")
    elif "regression" not in fail_on:
        why.append("regressions are not in comparison.fail_on")
    elif not meta.reliable:
        why.append("regressions not judged")
    return why


def _notes(
    *, meta: RunMeta, budget: BudgetReport, comparison: ComparisonReport | None, baseline_branch: str
) -> list[str]:
    notes = [f"unreliable run: {reason}" for reason in meta.unreliable_reasons]
    notes += [w for w in meta.generator.warnings if w not in meta.unreliable_reasons]
    notes += [f"budget override '{p}' matched no endpoint" for p in budget.unmatched_patterns]
    if comparison is None or comparison.baseline_runs == 0:
        notes.append(
            f"{NO_BASELINE}: runs recorded on '{baseline_branch}' become it (the action records on pushes there; "
            "locally `ci-perf run --record`)"
        )
    elif comparison.matched_on == "load":
        notes.append("the endpoint set changed since the baseline; endpoints are compared one by one")
    return notes


class Judgement(Frozen):
    """The verdict on one run: the report every rendering shows, and the exit code."""

    report: Report

    @property
    def exit_code(self) -> int:
        """0 when the gate passed (warnings included), 1 when it failed."""
        return EXIT_GATE_FAILED if self.report.status == "fail" else EXIT_PASS

    def exit_code_after_publishing(self, *, failed: bool) -> int:
        """GitHub failing after retries makes a pass exit 3; a failed gate stays 1 (the verdict wins)."""
        return EXIT_ENVIRONMENT if failed and self.exit_code == EXIT_PASS else self.exit_code


def judge(
    gate: Gate,
    result: RunResult,
    *,
    history: History,
    gate_changes: Sequence[str] = (),
    advisory: str | None = None,
    suite: str | None = None,
    unmatched: Unmatched | None = None,
    reruns: Sequence[RunResult] = (),
) -> Judgement:
    """Budget and comparison of one result with its history (or its own base arm, in duet mode).

    ``advisory``: why the verdict can only advise (shown above the report; the check run does not pass it).
    ``suite`` names the report (the action's ``id``); ``unmatched``: a changed load without a baseline.
    ``reruns``: the load run again to confirm candidate regressions (``analysis.confirm``); only confirmed
    ones are regressions. The budget is judged on ``result`` alone.
    """
    noise = learn_run_noise(history.others)  # single mode's run-to-run noise, from the store
    comparison = compare_runs(
        result, history.runs, settings=gate.comparison, matched_on=history.matched_on, run_noise=noise
    )
    confirmation = None
    if reruns:
        comparison, confirmation = confirm_reruns(
            comparison,
            result,
            reruns,
            baseline=history.runs,
            settings=gate.comparison,
            matched_on=history.matched_on,
            run_noise=noise,
        )
    budget = check_budget(gate.performance_budget, result, gate.server_metrics)
    report = build_report(
        meta=result.meta,
        aggregate=result.aggregate,
        endpoint_stats=[(e.name, e.stats, e.errors) for e in result.endpoints],
        budget=budget,
        comparison=comparison,
        settings=gate.comparison,
        baseline_anchor=history.anchor_sha,
        gate_changes=gate_changes,
        capacity=result.capacity,
        open_model=result.open_model,
    )
    server = server_report(result, history.runs, budget=budget, settings=gate.comparison, server=gate.server_metrics)
    report = _with_server(_with_side_findings(report, result), server)
    report = report.model_copy(update={"advisory": advisory, "suite": suite or None, "confirmation": confirmation})
    if confirmation is not None and (unconfirmed := len(confirmation.tests) - len(confirmation.confirmed)):
        note = f"{plural(unconfirmed, 'candidate regression')} {'was' if unconfirmed == 1 else 'were'} not confirmed "
        note += f"by {plural(len(confirmation.runs) - 1, 're-run')} and did not gate (see Confirmation)"
        report = report.model_copy(update={"notes": [*report.notes, note]})
    return Judgement(report=_without_baseline(report, unmatched) if unmatched else report)


def _without_baseline(report: Report, unmatched: Unmatched) -> Report:
    """A changed load with no history of its own: never a pass; a failure when the workflow says so."""
    notes = [note for note in report.notes if not note.startswith(NO_BASELINE)] + [unmatched.why]
    update: dict[str, object] = {"unmatched_baseline": unmatched.why, "notes": notes}
    if report.status == "pass" and unmatched.fails:
        reason = "no baseline for the changed load"
        update |= {"status": "fail", "gate_reasons": [reason], "headline": f"failed: {reason}"}
    elif report.status == "pass":
        budget = _budget_phrase(report.budget, gating="budget" in report.comparison_settings.fail_on)
        update["headline"] = "not compared: no baseline for the changed load" + (f"; {budget}" if budget else "")
    return report.model_copy(update=update)


def _with_server(report: Report, server: ServerReport | None) -> Report:
    """The "Server side" section; its regressions (history mode) gate like the endpoints' (``fail_on``)."""
    if server is None:
        return report
    update: dict[str, object] = {"server": server}
    regressions = server.regressions
    if regressions and "regression" in report.comparison_settings.fail_on and report.meta.reliable:
        reason = plural(len(regressions), "server-side regression")
        named = "; ".join(f"{row.name} {format_delta(row.delta_percent)}" for row in regressions[:3])
        headline = (
            f"{report.headline}; {reason} ({named})" if report.status == "fail" else f"failed: {reason} ({named})"
        )
        update |= {"status": "fail", "gate_reasons": [*report.gate_reasons, reason], "headline": headline}
    return report.model_copy(update=update)


def _with_side_findings(report: Report, result: RunResult) -> Report:
    """What the run showed beside its endpoints: task exceptions (the headline names them) and other hosts."""
    if not result.exceptions and not result.other_hosts:
        return report
    return report.model_copy(
        update={
            "headline": report.headline + exceptions_phrase(result.exceptions),
            "exceptions": result.exceptions,
            "other_hosts": [e.model_copy(update={"windows": []}) for e in result.other_hosts],
        }
    )


def exceptions_phrase(exceptions: Sequence[TaskException]) -> str:
    """``; 12 task exceptions (ValueError at locustfile.py:20 and 2 other kinds)``; empty without any."""
    if not exceptions:
        return ""
    top = exceptions[0]
    named = f"{top.type} at {top.where}" if top.where else top.type
    others = f" and {plural(len(exceptions) - 1, 'other kind')}" if len(exceptions) > 1 else ""
    return f"; {plural(sum(e.count for e in exceptions), 'task exception')} ({named}{others})"
