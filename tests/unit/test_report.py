from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci_perf import sketches
from ci_perf.analysis.judge import judge
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison, Config, EndpointBudget, Gate, LoadSettings, PerformanceBudget
from ci_perf.errors import InputError
from ci_perf.report import (
    COMMENT_LIMIT,
    MARKER,
    escape_markdown,
    fingerprint_in,
    render_markdown,
    render_terminal,
    sparkline,
)
from ci_perf.results import Capacity, ErrorCount, History, RunResult, TaskException, parse_result
from tests.conftest import collected_run
from tests.support.runs import noisy_history, two_endpoint_run
from tests.unit.test_duet import duet_run

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
    assert "failed\\: 1 budget violation" in markdown  # one baseline run: its regressions warn only
    assert "| ❌ | <code>POST /api/orders</code> | p95 ≤ | 53.0 ms | 45.0 ms |" in markdown
    assert "- 🔴 POST /api/orders p50 +31.0 %" in markdown
    assert "single baseline" in markdown
    assert "warn only and do not fail the check" in markdown
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


def test_an_artifacts_load_settings_are_numbers_not_text() -> None:
    """Report mode reads result.json from a pull request's run: meta.load is a typed model, not a free dict."""
    result = summarize_run(
        collected_run(endpoints={"GET /a": [5.0] * 10}), load=LOAD, target="http://x", tool_version="t"
    )
    document = json.loads(result.model_dump_json())
    document["meta"]["load"]["users"] = "<img src=x onerror=alert(1)>@team"
    with pytest.raises(InputError, match=r"meta\.load\.users: Input should be a valid integer"):
        parse_result(json.dumps(document), source="result.json")


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


# -- nothing broken passes by default (issue 11, item 1) ---------------------------------------


def _service_run(failing: dict[str, dict[str, int]], *, ok: tuple[str, ...] = (), requests: int = 50) -> RunResult:
    """Endpoints that fail with the given messages (counts per run) and endpoints in ``ok`` that never fail."""
    collected = collected_run(endpoints={name: [5.0] * requests for name in (*failing, *ok)}, windows=1)
    windows = [
        w.model_copy(
            update={
                "failures": sum(failing[w.endpoint].values()),
                "errors": [ErrorCount(message=m, count=c) for m, c in failing[w.endpoint].items()],
            }
        )
        if w.endpoint in failing
        else w
        for w in collected.windows
    ]
    collected = collected.model_copy(update={"windows": windows})
    load = LoadSettings(users=2, duration=10, warmup=0)
    return summarize_run(collected, load=load, target="http://127.0.0.1:8000", tool_version="t")


NO_RULES = Gate()
SEVEN_MESSAGES = {f"HTTPError {500 + i}: Server Error": count for i, count in enumerate((9, 5, 4, 3, 2, 1, 1))}
NOTHING = Gate(performance_budget=PerformanceBudget(default_error_rate_percent=None))


def test_a_service_failing_every_request_fails_by_default() -> None:
    result = _service_run({"GET /api/x": {"HTTPError: 500": 50}})
    judgement = judge(NO_RULES, result, history=History())
    report = judgement.report
    assert judgement.exit_code == 1
    assert report.verdict == "fail"
    assert report.headline == "failed: 1 budget violation (GET /api/x error rate 100.00 % > 1.00 % (default limit))"
    assert [(c.rule, c.source, c.limit) for c in report.budget.checks] == [("error_rate_percent", "default", 1.0)]
    assert json.loads(report.model_dump_json())["budget"]["checks"][0]["source"] == "default"
    markdown = render_markdown(report)
    assert "| 100.00 % | 1.00 % (default limit) |" in markdown
    assert "Set `performance_budget.default_error_rate_percent` to change it, or to `null`" in markdown
    assert "1.00 % (default limit)" in render_terminal(report)


def test_a_service_failing_everywhere_but_health_fails_by_default() -> None:
    result = _service_run({"GET /api/a": {"500": 50}, "POST /api/b": {"500": 50}}, ok=("GET /health",))
    report = judge(NO_RULES, result, history=History()).report
    assert report.status == "fail"
    statuses = {c.endpoint: c.status for c in report.budget.checks}
    assert statuses == {"GET /api/a": "fail", "POST /api/b": "fail", "GET /health": "pass"}
    assert report.headline.startswith("failed: 2 budget violations (GET /api/a error rate 100.00 % > 1.00 % (default")


@pytest.mark.parametrize(
    ("budget", "source"),
    [
        pytest.param(EndpointBudget(error_rate_percent=100), "api_endpoints", id="api-endpoints-rule"),
        pytest.param(EndpointBudget(p95_latency_ms=1_000), "default", id="latency-rule-only"),
    ],
)
def test_an_error_rule_of_the_budget_replaces_the_default(budget: EndpointBudget, source: str) -> None:
    gate = Gate(performance_budget=PerformanceBudget(api_endpoints=budget))
    report = judge(gate, _service_run({"GET /api/x": {"500": 50}}), history=History()).report
    assert [c.source for c in report.budget.checks if c.rule == "error_rate_percent"] == [source]
    assert report.status == ("fail" if source == "default" else "pass")


def test_a_healthy_run_with_only_the_default_limit_says_so() -> None:
    report = judge(NO_RULES, _service_run({}, ok=("GET /a",)), history=History()).report
    assert report.verdict == "pass"
    assert report.headline.startswith("passed: error rate ≤ 1.00 % on every endpoint (default limit); p95 ")


def test_a_run_nothing_gates_says_so_and_is_inconclusive() -> None:
    judgement = judge(NOTHING, _service_run({"GET /api/x": {"500": 50}}), history=History())
    report = judgement.report
    assert judgement.exit_code == 0
    assert report.verdict == "inconclusive"
    assert report.budget.checks == []
    assert report.headline.startswith(
        "nothing was gated (no budget rule, default error limit disabled, no baseline yet): p95 "
    )
    assert "passed" not in report.headline
    assert render_markdown(report).splitlines()[1].startswith("## ⚠️ ci-perf nothing was gated")
    assert render_terminal(report).startswith("INCONCLUSIVE  ci-perf nothing was gated")


def test_a_budget_left_out_of_fail_on_does_not_gate() -> None:
    gate = Gate(comparison=Comparison(fail_on=["regression"]))
    report = judge(gate, _service_run({"GET /api/x": {"500": 50}}), history=History()).report
    assert report.status == "pass"
    assert report.verdict == "inconclusive"
    assert report.headline.startswith(
        "nothing was gated (the budget is not in comparison.fail_on, no baseline yet): 1 budget violation (not gating)"
    )


def test_an_unreliable_run_never_headlines_passed() -> None:
    history = noisy_history(5, cv=0.01)
    saturated = two_endpoint_run(1.0, start=5_000.0, cpu=99.0)
    assert not saturated.meta.reliable
    report = judge(NO_RULES, saturated, history=History(runs=history)).report
    assert report.status == "pass"
    assert report.verdict == "inconclusive"
    assert report.headline.startswith("unreliable run, regressions not judged: error rate ≤ 1.00 % on every endpoint")
    assert "passed" not in report.headline
    assert render_markdown(report).splitlines()[1].startswith("## ⚠️ ")


def test_an_unreliable_duet_run_never_headlines_passed() -> None:
    run = duet_run(base_requests=0.8)
    assert not run.meta.reliable
    report = judge(NOTHING, run, history=History()).report
    assert report.verdict == "inconclusive"
    assert report.headline.startswith("unreliable run, nothing was gated (no budget rule, default error limit")
    assert report.headline.split(": ")[0].endswith("regressions not judged)")


# -- the failures table sums to the failures (issue 11, item 9) --------------------------------


def test_the_failures_table_adds_an_other_row_so_rows_sum_to_the_failures() -> None:
    report = judge(NO_RULES, _service_run({"GET /api/x": SEVEN_MESSAGES}), history=History()).report
    row = report.endpoints[0]
    assert row.stats.failures == 25
    assert [e.count for e in row.failures_shown] == [9, 5, 4, 3, 2, 2]
    assert row.failures_shown[-1].message == "other (2)"
    markdown = render_markdown(report)
    assert "<summary>Failures (25)</summary>" in markdown
    assert "| <code>GET /api/x</code> | 2 | other (2) |" in markdown  # the top five and the rest: 25 in all
    assert "GET /api/x  2×  other (2)" in render_terminal(report)
    assert json.loads(report.model_dump_json())["endpoints"][0]["other_errors"] == 2


def test_default_limit_failures_and_other_row_match_the_golden_report() -> None:
    failing = {"GET /api/x": SEVEN_MESSAGES, "POST /api/y": {"ConnectionRefusedError": 50}}
    result = _service_run(failing, ok=("GET /health",))
    report = judge(NO_RULES, result, history=History()).report
    _check_golden("report_default_limit.md", render_markdown(report))
    _check_golden("report_default_limit.txt", render_terminal(report))


def test_an_ungated_run_matches_the_golden_report() -> None:
    report = judge(NOTHING, _service_run({}, ok=("GET /a",)), history=History()).report
    _check_golden("report_ungated.md", render_markdown(report))


def _side_findings_run() -> RunResult:
    """A run with a hung endpoint, task exceptions and requests to a CDN next to the target."""
    base = collected_run(endpoints={"GET /api/products": [10.0, 11.0, 12.0] * 20}, start=1_000.0)
    hung = base.windows[-1].model_copy(
        update={
            "endpoint": "GET /api/export",
            "requests": 0,
            "latency": sketches.EMPTY,
            "in_flight_ms": [9_500.0, 7_200.0],
        }
    )
    cdn = [
        w.model_copy(update={"endpoint": "GET /lib.js", "host": "cdn.example.test", "requests": 2})
        for w in base.windows
    ]
    exceptions = [
        TaskException(type="KeyError", message="'total'", count=12, where="locustfile.py:31"),
        TaskException(type="ZeroDivisionError", message="division by zero", count=1, where=None),
    ]
    collected = base.model_copy(
        update={"windows": [*base.windows, hung, *cdn], "exceptions": exceptions, "peak_users": 10}
    )
    return summarize_run(collected, load=LOAD, target="http://127.0.0.1:8000", tool_version="t", git_sha="d" * 40)


def test_unfinished_requests_exceptions_and_other_hosts_match_the_golden_report() -> None:
    report = judge(CONFIG.gate, _side_findings_run(), history=History()).report
    assert report.status == "fail"  # the hung endpoint's unfinished requests are failures
    assert "13 task exceptions (KeyError at locustfile.py:31 and 1 other kind)" in report.headline
    assert all(c.endpoint != "GET /lib.js" for c in report.budget.checks)
    _check_golden("report_side_findings.md", render_markdown(report))
    _check_golden("report_side_findings.txt", render_terminal(report))


def test_a_breakpoint_run_without_rules_says_it_has_no_default_limit() -> None:
    capacity = Capacity(users=8, rps=100.0, broke_at_users=10, reason="errors", limits={}, steps=[])
    run = _service_run({"GET /api/x": {"503": 25}})
    meta = run.meta.model_copy(update={"load": run.meta.load.model_copy(update={"profile": "breakpoint"})})
    report = judge(NO_RULES, run.model_copy(update={"capacity": capacity, "meta": meta}), history=History()).report
    assert report.headline.startswith(
        "capacity 8 users, 100 rps; nothing was gated (no budget rule; a breakpoint run has no default error limit, "
        "no baseline yet)"
    )
