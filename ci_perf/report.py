"""The ``Report`` model and its renderings: ``report.md`` (the PR comment), ``report.json``, the terminal.

Building the report is pure (``build_report``); rendering goes through the
jinja2 templates in ``templates/``. Everything measured from the target —
endpoint names, error messages — is untrusted: the ``md`` and ``code`` filters
escape it for markdown and HTML, and neutralise ``@mentions``. Number formats
live in filters (``ms``, ``pct``, ``delta``, ``rps``) and nowhere else. The
markdown never exceeds GitHub's 65,536-character comment limit: tables are cut
and the cut is said.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import jinja2

from ci_perf.analysis.budget import BudgetReport
from ci_perf.analysis.compare import METRICS, ComparisonReport, EndpointComparison, MetricComparison
from ci_perf.config import Comparison
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, MEASURES, Capacity, ErrorCount, OpenModelResult, RunMeta, Stats

MARKER = "<!-- ci-perf -->"
# the last line of every comment: what `comment: on-change` compares with the next run's
_FINGERPRINT_TAG = re.compile(r"<!-- ci-perf-fingerprint: ([0-9a-f]+) -->")
COMMENT_LIMIT = 65_536
MAX_NAME_CHARS = 120
SPARK_BARS = "▁▂▃▄▅▆▇█"


class EndpointRow(Frozen):
    name: str
    stats: Stats
    comparison: EndpointComparison | None
    budget: Literal["pass", "fail", "none"]
    errors: list[ErrorCount]


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

    @property
    def verdict(self) -> Literal["pass", "fail", "inconclusive"]:
        """The action's output: ``inconclusive`` when the gate passed but could not judge.

        That is an unreliable run (no regression verdicts), or a run with neither a budget
        rule nor a baseline to be checked against.
        """
        if self.status == "fail":
            return "fail"
        nothing_checked = not self.budget.checks and (self.comparison is None or self.comparison.mode == "none")
        return "inconclusive" if not self.meta.reliable or nothing_checked else "pass"

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
        )

    rows = [row(name, stats, errors) for name, stats, errors in endpoint_stats]
    aggregate_row = row(AGGREGATE, aggregate, [])
    fail_on, baseline_branch = settings.fail_on, settings.baseline_branch
    regressions = comparison.with_verdict("regression") if comparison else []
    reasons = []
    if "regression" in fail_on and regressions:
        reasons.append(_plural(len(regressions), "regression"))
    if "budget" in fail_on and budget.violations:
        reasons.append(_plural(len(budget.violations), "budget violation"))
    notes = _notes(meta=meta, budget=budget, comparison=comparison, baseline_branch=baseline_branch)
    status: Literal["pass", "fail"] = "fail" if reasons else "pass"
    return Report(
        status=status,
        headline=_shape_prefix(capacity, open_model)
        + _headline(status, reasons, budget=budget, aggregate=aggregate_row, comparison=comparison),
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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


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


def _headline(
    status: str,
    reasons: list[str],
    *,
    budget: BudgetReport,
    aggregate: EndpointRow,
    comparison: ComparisonReport | None,
) -> str:
    """Plain text (escaped when rendered): what happened, in one line."""
    if status == "fail":
        regressions = comparison.with_verdict("regression") if comparison else []
        named = [describe_change(e, m) for e, m in regressions[:3]]
        named += [
            f"{c.endpoint} {c.label} {format_value(c.measured, c.unit)} {'>' if c.upper_bound else '<'} "
            f"{format_value(c.limit, c.unit)}"
            for c in budget.violations[: max(0, 3 - len(named))]
        ]
        hidden = len(regressions) + len(budget.violations) - len(named)
        more = f" and {hidden} more" if hidden > 0 else ""
        return f"failed: {', '.join(reasons)} ({'; '.join(named)}{more})"
    p95 = aggregate.stats.p95_ms
    summary = f"p95 {format_value(p95, 'ms')}, {format_value(aggregate.stats.rps, 'rps')}"
    metric = aggregate.comparison.metrics.get("p95") if aggregate.comparison else None
    if metric is not None and metric.delta_percent is not None:
        summary += f" ({format_delta(metric.delta_percent)} p95 vs baseline)"
    within = f"{len(budget.checks)} budget rules met; " if budget.checks else ""
    verdicts = ""
    if comparison is not None and comparison.mode != "none":
        found = len(comparison.with_verdict("regression"))
        unclear = len(comparison.with_verdict("inconclusive"))
        verdicts = f"{_plural(found, 'regression')} (not gating)" if found else "no regression found"
        verdicts += f", {unclear} tests inconclusive; " if unclear else "; "
    return f"passed: {within}{verdicts}{summary}"


def _notes(
    *, meta: RunMeta, budget: BudgetReport, comparison: ComparisonReport | None, baseline_branch: str
) -> list[str]:
    notes = [f"unreliable run: {reason}" for reason in meta.unreliable_reasons]
    notes += [w for w in meta.generator.warnings if w not in meta.unreliable_reasons]
    notes += [f"budget override '{p}' matched no endpoint" for p in budget.unmatched_patterns]
    if comparison is None or comparison.baseline_runs == 0:
        notes.append(
            f"no baseline yet: runs recorded on '{baseline_branch}' become it (the action records on pushes there; "
            "locally `ci-perf run --record`)"
        )
    elif comparison.matched_on == "load":
        notes.append("the endpoint set changed since the baseline; endpoints are compared one by one")
    return notes


# -- formatting filters ------------------------------------------------------------------------


def fingerprint_tag(report: Report) -> str:
    return f"<!-- ci-perf-fingerprint: {report.fingerprint()} -->"


def fingerprint_in(markdown: str) -> str | None:
    """The fingerprint a rendered comment carries, if any."""
    match = _FINGERPRINT_TAG.search(markdown)
    return match[1] if match else None


def format_value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "rps":
        return f"{value:.1f} rps" if value < 100 else f"{value:,.0f} rps"
    return f"{value:g}"


def format_ms(value: float | None) -> str:
    return format_value(value, "ms")


def format_pct(value: float | None) -> str:
    return format_value(value, "%")


def format_rps(value: float | None) -> str:
    return format_value(value, "rps")


def format_delta(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f} %"


def format_points(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f} pp"


def format_p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}" if value < 0.01 else f"{value:.2f}"


def format_count(value: int) -> str:
    return f"{value:,}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~:#!])")


def escape_markdown(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """Untrusted text → inert markdown: no HTML, no links, no emphasis, no table breaks, no mentions."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    escaped = html.escape(_MD_SPECIAL.sub(r"\\\1", flat), quote=False)
    return escaped.replace("@", "@&#8203;")


def code(text: object, limit: int = MAX_NAME_CHARS) -> str:
    return f"<code>{escape_markdown(text, limit)}</code>"


def plain(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """Untrusted text for the terminal: one line, no control characters."""
    flat = "".join(ch if ch.isprintable() else " " for ch in " ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def sparkline(values: Sequence[float | None]) -> str:
    points = [v for v in values if v is not None]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = high - low
    if span <= 0 or span < 1e-9 * max(abs(high), 1.0):
        return SPARK_BARS[3] * len(points)
    return "".join(SPARK_BARS[min(7, int((v - low) / span * 8))] for v in points)


def mermaid_label(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9._:-]", "", str(text))[:12] or "run"


# -- rendering ---------------------------------------------------------------------------------


def templates_dir() -> Path:
    """Templates ship inside the wheel (``ci_perf/templates``); in a checkout they are at the top."""
    packaged = Path(__file__).with_name("templates")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(  # noqa: S701 - markdown output; untrusted text goes through the md/code filters
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        ms=format_ms,
        pct=format_pct,
        rps=format_rps,
        delta=format_delta,
        points=format_points,
        p=format_p,
        count=format_count,
        value=format_value,
        md=escape_markdown,
        code=code,
        plain=plain,
        spark=sparkline,
        mermaid_label=mermaid_label,
    )
    env.globals.update(
        MARKER=MARKER,
        MEASURES=MEASURES,
        METRICS=METRICS,
        describe_change=describe_change,
        fingerprint_tag=fingerprint_tag,
    )
    return env


def _ordered_rows(report: Report) -> list[EndpointRow]:
    """Most important first when a table must be cut: budget failures, then the biggest p95 changes."""

    def weight(row: EndpointRow) -> tuple[int, float, str]:
        metric = row.comparison.metrics.get("p95") if row.comparison else None
        change = abs(metric.delta_percent) if metric and metric.delta_percent is not None else 0.0
        return (0 if row.budget == "fail" else 1, -change, row.name)

    return sorted(report.endpoints, key=weight)


def render_markdown(report: Report, *, run_url: str | None = None, limit: int = COMMENT_LIMIT) -> str:
    """``report.md``: the PR comment. Cuts tables (and says so) to stay within ``limit`` characters."""
    template = _environment().get_template("comment.md.j2")
    rows = _ordered_rows(report)
    checks = sorted(report.budget.checks, key=lambda c: (c.status != "fail", c.status != "no-data"))
    shown_rows, shown_checks = len(rows), len(checks)
    while True:
        text = template.render(
            report=report,
            rows=rows[:shown_rows],
            hidden_rows=len(rows) - shown_rows,
            checks=checks[:shown_checks],
            hidden_checks=len(checks) - shown_checks,
            run_url=run_url,
        )
        if len(text) <= limit:
            return text
        if shown_rows == 0 and shown_checks == 0:
            return (
                text[: limit - 200]
                + f"\n\n… cut to fit GitHub's {limit:,}-character limit; see report.json\n{MARKER}\n"
                + fingerprint_tag(report)
                + "\n"
            )
        shown_rows = _shrink(shown_rows)
        shown_checks = _shrink(shown_checks)


def _shrink(count: int) -> int:
    return 0 if count <= 5 else count * 3 // 4


def render_terminal(report: Report) -> str:
    return _environment().get_template("terminal.txt.j2").render(report=report, rows=report.endpoints)
