"""A judgement's renderings: ``report.md`` (the PR comment), ``report.json``, the terminal.

The ``Report`` itself is built by ``analysis.judge``; rendering goes through the
jinja2 templates in ``templates/``. Everything measured from the target —
endpoint names, error messages — is untrusted: the ``md`` and ``code`` filters
escape it for markdown and HTML, and neutralise ``@mentions``. Number formats
live in filters (``ms``, ``pct``, ``delta``, ``rps``) and nowhere else. The
markdown never exceeds GitHub's 65,536-character comment limit: tables are cut
and the cut is said.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from ci_perf.analysis.compare import METRICS
from ci_perf.analysis.judge import EndpointRow, Report, describe_change
from ci_perf.analysis.watch import WatchReport
from ci_perf.config import Comparison
from ci_perf.formatting import (
    flat_text,
    format_count,
    format_delta,
    format_ms,
    format_p,
    format_pct,
    format_points,
    format_rps,
    format_value,
    one_line,
)
from ci_perf.results import MEASURES

MARKER = "<!-- ci-perf -->"


def marker(suite: str | None) -> str:
    """The hidden line that finds a suite's comment: ``<!-- ci-perf -->``; ``<!-- ci-perf:api -->`` for ``id: api``."""
    return f"<!-- ci-perf:{suite} -->" if suite else MARKER


# the last line of every comment: what `comment: on-change` compares with the next run's
_FINGERPRINT_TAG = re.compile(r"<!-- ci-perf-fingerprint: ([0-9a-f]+) -->")
COMMENT_LIMIT = 65_536
MAX_NAME_CHARS = 120
SPARK_BARS = "▁▂▃▄▅▆▇█"
SPARK_MARK = "┆"  # a change point on main in a trend (not "|": the trend sits in a markdown table)


# -- formatting filters ------------------------------------------------------------------------


def fingerprint_tag(report: Report) -> str:
    return f"<!-- ci-perf-fingerprint: {report.fingerprint()} -->"


def fingerprint_in(markdown: str) -> str | None:
    """The fingerprint a rendered comment carries, if any."""
    match = _FINGERPRINT_TAG.search(markdown)
    return match[1] if match else None


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~:#!$])")  # $: GitHub renders $…$ as math
# what GitHub turns into a link or a notification in a comment's text, however escaped: @mentions, #123 and
# GH-123 references, bare URLs and www. addresses. A zero-width space after the first character disarms each.
_AUTOLINKED = re.compile(r"@|\\#|(?<=\\:)(?=//)|(?<=www)(?=\.)|(?<=gh)(?=-)", re.IGNORECASE)


def escape_markdown(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """Untrusted text → inert markdown: no HTML, no links, no emphasis, no table breaks, no mentions.

    One line (newlines, CR and U+2028 become spaces), no control or format characters (bidi and
    zero-width controls could reorder or hide what follows), at most ``limit`` characters.
    """
    escaped = html.escape(_MD_SPECIAL.sub(r"\\\1", flat_text(text, limit)), quote=False)
    return _AUTOLINKED.sub(lambda match: match[0] + "&#8203;", escaped)


def code(text: object, limit: int = MAX_NAME_CHARS) -> str:
    return f"<code>{escape_markdown(text, limit)}</code>"


def plain(text: object, limit: int = MAX_NAME_CHARS) -> str:
    """Untrusted text for the terminal and the log: one inert line (``formatting.one_line``)."""
    return one_line(text, limit)


def sparkline(values: Sequence[float | None], marks: Sequence[int] = ()) -> str:
    """Bars between the lowest and highest value; ``marks``: indices (into the values that are not None)
    where a new level starts, a change point on main (``SPARK_MARK`` before that bar)."""
    points = [v for v in values if v is not None]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = high - low
    flat = span <= 0 or span < 1e-9 * max(abs(high), 1.0)
    bars = [SPARK_BARS[3] if flat else SPARK_BARS[min(7, int((v - low) / span * 8))] for v in points]
    return "".join((SPARK_MARK if i in marks else "") + bar for i, bar in enumerate(bars))


def mermaid_label(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9._:-]", "", str(text))[:12] or "run"


# -- rendering ---------------------------------------------------------------------------------


def templates_dir() -> Path:
    """Templates ship inside the wheel (``ci_perf/templates``); in a checkout they are at the top."""
    packaged = Path(__file__).with_name("templates")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


_FILTERS: dict[str, Callable[..., str]] = {
    "ms": format_ms,
    "pct": format_pct,
    "rps": format_rps,
    "delta": format_delta,
    "points": format_points,
    "p": format_p,
    "count": format_count,
    "value": format_value,
    "md": escape_markdown,
    "code": code,
    "plain": plain,
    "spark": sparkline,
    "mermaid_label": mermaid_label,
}


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(  # noqa: S701 - markdown output; untrusted text goes through the md/code filters
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_FILTERS)
    env.globals.update(
        {
            "marker": marker,
            "MEASURES": MEASURES,
            "METRICS": METRICS,
            "describe_change": describe_change,
            "fingerprint_tag": fingerprint_tag,
        }
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
                + f"\n\n… cut to fit GitHub's {limit:,}-character limit; see report.json\n{marker(report.suite)}\n"
                + fingerprint_tag(report)
                + "\n"
            )
        shown_rows = _shrink(shown_rows)
        shown_checks = _shrink(shown_checks)


def _shrink(count: int) -> int:
    return 0 if count <= 5 else count * 3 // 4


def render_terminal(report: Report) -> str:
    return _environment().get_template("terminal.txt.j2").render(report=report, rows=report.endpoints)


def render_watch(watch: WatchReport, *, settings: Comparison, limit: int = 200) -> str:
    """``watch.md`` (``ci-perf watch``, the action's watch mode): the change points, newest first."""
    return _environment().get_template("watch.md.j2").render(watch=watch, settings=settings, limit=limit)


@dataclass(frozen=True)
class Rendered:
    """What every output of a run is made of: ``report.md``, ``report.json`` and the terminal view."""

    markdown: str
    json: str
    terminal: str


def render(report: Report, *, run_url: str | None = None) -> Rendered:
    return Rendered(
        markdown=render_markdown(report, run_url=run_url),
        json=report.model_dump_json(indent=2),
        terminal=render_terminal(report),
    )
