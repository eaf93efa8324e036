from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci_perf.analysis.judge import judge
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Config, EndpointBudget, Gate, LoadSettings, PerformanceBudget
from ci_perf.report import (
    COMMENT_LIMIT,
    MARKER,
    escape_markdown,
    fingerprint_in,
    render_markdown,
    render_terminal,
    sparkline,
)
from ci_perf.results import History, RunResult
from tests.conftest import collected_run

GOLDEN = Path(__file__).parent / "golden"
LOAD = LoadSettings(users=10, duration=10, warmup=2)
CONFIG = Config(
    endpoints=["GET /api/products", "POST /api/orders"],  # type: ignore[list-item]
    performance_budget=PerformanceBudget(
        api_endpoints=EndpointBudget(p95_latency_ms=100, error_rate_percent=1, throughput_rps=50),
        endpoints={"POST /api/orders": EndpointBudget(p95_latency_ms=45)},
        database={"query_p95_ms": 50},
    ),
)


def _run(orders_ms: float, *, sha: str, failures: int = 0, start: float = 1_000.0, speed: float = 1.0) -> RunResult:
    collected = collected_run(
        endpoints={
            "GET /api/products": [speed * v for v in (10.0, 11.0, 12.0)] * 20,
            "POST /api/orders": [orders_ms * (1 + 0.01 * (i % 5 - 2)) for i in range(30)],
        },
        failures={"POST /api/orders": failures},
        start=start,
    )
    return summarize_run(collected, load=LOAD, target="http://127.0.0.1:8000", tool_version="t", git_sha=sha)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"rendering changed; review and run UPDATE_GOLDEN=1 ({path})"


def test_failing_report_matches_the_golden_markdown() -> None:
    history = [
        _run(40.0 * speed, sha=f"{i}" * 40, start=1_000.0 + 100 * i, speed=speed)
        for i, speed in enumerate((0.98, 1.02, 1.0), start=1)
    ]
    current = _run(52.0, sha="c" * 40, failures=3, start=2_000.0)
    report = judge(CONFIG.gate, current, history=History(runs=history)).report
    assert report.status == "fail"
    markdown = render_markdown(report)
    _check_golden("report_fail.md", markdown)
    _check_golden("report_fail.txt", render_terminal(report))


def test_passing_report_without_baseline_matches_the_golden_markdown() -> None:
    report = judge(CONFIG.gate, _run(30.0, sha="a" * 40), history=History()).report
    assert report.status == "pass"
    _check_golden("report_pass.md", render_markdown(report))


def test_report_names_the_violation_and_the_delta() -> None:
    history = [_run(40.0, sha="b" * 40)]
    report = judge(CONFIG.gate, _run(52.0, sha="c" * 40), history=History(runs=history)).report
    markdown = render_markdown(report)
    assert markdown.startswith(MARKER)
    assert "regressions, 1 budget violation" in markdown
    assert "| ❌ | <code>POST /api/orders</code> | p95 ≤ | 53.0 ms | 45.0 ms |" in markdown
    assert "- 🔴 POST /api/orders p50 +29.7 %" in markdown
    assert "single baseline" in markdown
    payload = json.loads(report.model_dump_json())
    assert payload["status"] == "fail"
    assert payload["budget"]["checks"]


@pytest.mark.parametrize(
    ("text", "forbidden", "expected"),
    [
        pytest.param("GET /a|b", ["a|b"], "a\\|b", id="table-pipe"),
        pytest.param("<script>alert(1)</script>", ["<script>"], "&lt;script&gt;", id="html"),
        pytest.param("ping @octocat now", ["@octocat"], "@&#8203;octocat", id="mention"),
        pytest.param("a `code` b", ["`code`"], "\\`code\\`", id="backticks"),
        pytest.param("[x](http://evil)", ["[x](http"], "\\[x\\]", id="link"),
        pytest.param("line\nbreak\r\n| row |", ["\n"], "line break", id="newlines"),
    ],
)
def test_untrusted_text_is_escaped_for_markdown(text: str, forbidden: list[str], expected: str) -> None:
    escaped = escape_markdown(text)
    for bad in forbidden:
        assert bad not in escaped
    assert expected in escaped


def test_hostile_endpoint_names_and_messages_cannot_break_the_comment() -> None:
    name = "GET /x|<img src=x onerror=alert(1)>@admin `y`"
    collected = collected_run(endpoints={name: [5.0] * 10}, failures={name: 1})
    failing = collected.windows[0].model_copy(
        update={"errors": [{"message": "boom <b>@team</b> | ![](http://t)", "count": 1}]}
    )
    collected = collected.model_copy(update={"windows": [failing, *collected.windows[1:]]})
    result = summarize_run(collected, load=LoadSettings(duration=10, warmup=0), target="http://x", tool_version="t")
    markdown = render_markdown(judge(CONFIG.gate, result, history=History()).report)
    for bad in ("<img", "@admin", "<b>", "@team", "![](", "`y`"):
        assert bad not in markdown


def test_the_comment_never_exceeds_githubs_limit_and_says_what_was_cut() -> None:
    many = {f"GET /api/item/{i:04d}/{'x' * 60}": [5.0, 6.0] for i in range(1_500)}
    result = summarize_run(collected_run(endpoints=many, windows=3), load=LOAD, target="http://x", tool_version="t")
    budget = Gate(performance_budget=PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=1)))
    report = judge(budget, result, history=History()).report
    markdown = render_markdown(report)
    assert len(markdown) <= COMMENT_LIMIT
    assert "more endpoints not shown" in markdown
    assert "more rules not shown" in markdown
    assert fingerprint_in(markdown) == report.fingerprint()  # on-change still works on a cut comment
    tiny = render_markdown(report, limit=2_000)  # even when nothing but the headline fits
    assert len(tiny) <= 2_000
    assert fingerprint_in(tiny) == report.fingerprint()


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([5.0]) == ""
    assert sparkline([2.0, 2.0]) == "▄▄"
