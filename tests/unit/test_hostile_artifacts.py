"""Report mode reads ``result.json`` from an artifact that a pull request's run (a fork's) uploaded.

Every artifact of the corpus goes through what report mode does with it: ``parse_result``, then
``pipeline.conclude`` (judge, render, print the terminal text inside ``WorkflowLog.untrusted()``),
``junit.xml``, the job summary, the check run's title and the log's error line. It is either refused
with one readable sentence (``InputError``) or rendered so that no line of any output is a workflow
command, the comment's tables keep their cells, no HTML, link, mention or reference comes from the
artifact, and, for text, the rendering outside the text's own cell is the clean artifact's.

The corpus: ``hostile/payloads.json`` (text, tried in every free-text field at once, and combined in
every string field alone) and ``hostile/*.json`` (numbers, types, structure), plus results earlier
versions wrote (``recorded/``), which must still parse.
"""

from __future__ import annotations

import copy
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import EndpointBudget, Gate, LoadSettings, PerformanceBudget
from ci_perf.errors import InputError
from ci_perf.formatting import one_line
from ci_perf.github.workflow import WorkflowLog, append_summary
from ci_perf.junit import render_junit
from ci_perf.pipeline import conclude
from ci_perf.report import MARKER, escape_markdown
from ci_perf.results import History, RunResult, TaskException, parse_result
from tests.conftest import collected_run
from tests.support.workflow_commands import workflow_commands

HOSTILE = Path(__file__).parent / "hostile"
RECORDED = Path(__file__).parent / "recorded"
PAYLOADS: dict[str, str] = json.loads((HOSTILE / "payloads.json").read_text(encoding="utf-8"))["payloads"]
CASES = sorted(p for p in HOSTILE.glob("*.json") if p.name != "payloads.json")
COMBINED = "x\n::error::pwned <b>@octocat</b> [l](https://evil.example) #12 ##[error]pwned | `y`\u2028\u202ez"
RUN_URL = "https://github.com/o/r/actions/runs/2"
ADVISORY = "advisory: the numbers come from the pull request's own run"
# every budget rule fails whatever the endpoints are called, so text cannot change the verdict
GATE = Gate(performance_budget=PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=1, error_rate_percent=1)))
LOAD = LoadSettings(users=5, duration=12, warmup=2)
OUR_TAGS = {"sub", "details", "summary", "code"}


# -- the clean artifact and its history ---------------------------------------------------------


def _run(scale: float, *, start: float) -> RunResult:
    """``GET /a`` and ``POST /b`` (with failures), a task exception and requests to another host."""
    base = collected_run(
        endpoints={"GET /a": [scale * v for v in (5.0, 6.0, 7.0)] * 10, "POST /b": [scale * 20.0, scale * 24.0] * 10},
        failures={"POST /b": 2},
        start=start,
        windows=12,
    )
    cdn = [w.model_copy(update={"endpoint": "GET /lib.js", "host": "cdn.example.test"}) for w in base.windows[:12]]
    exception = TaskException(type="KeyError", message="'total'", count=3, where="locustfile.py:31")
    collected = base.model_copy(update={"windows": [*base.windows, *cdn], "exceptions": [exception]})
    return summarize_run(
        collected, load=LOAD, target="http://127.0.0.1:8000", tool_version="1.0.0", git_sha="a" * 40,
        git_branch="feature", warnings=["generator: a warning"],
    )  # fmt: skip


@cache
def _clean_document() -> str:
    document = json.loads(_run(1.5, start=2_000.0).model_dump_json())
    document["capacity"] = {
        "users": 10, "rps": 50.0, "broke_at_users": 20, "reason": "p95 over the limit",
        "limits": {"p95_latency_ms": 100.0},
        "steps": [{"index": 0, "users": 10, "start": 2_000.0, "rps": 50.0, "p95_ms": 9.0,
                   "error_rate_percent": 0.0, "within_limits": True}],
    }  # fmt: skip
    if document["schema_version"] >= 4:  # server-side metrics (issue 14): a query, a reason, requests per endpoint
        document["server"] = [
            {
                "name": "database.query_p95_ms",
                "query": "histogram_quantile(0.95, rate(q[1m]))",
                "unit": "ms",
                "value": 12.0,
                "series": [{"at": 2_001.0, "value": 12.0}],
            },
            {"name": "queue_depth", "query": "max(queue)", "value": None, "reason": "not measured: no data"},
        ]
        document["server_requests"] = {"GET /a": 300.0}
    return json.dumps(document)


@cache
def _history_documents() -> tuple[str, ...]:
    return tuple(_run(scale, start=1_000.0 + 20 * i).model_dump_json() for i, scale in enumerate((1.0, 1.05, 0.95)))


def _history(renamed: dict[str, str]) -> History:
    """The trusted history, its endpoints renamed as the artifact's were (so the same tests are made)."""
    runs = []
    for text in _history_documents():
        document = json.loads(text)
        for endpoint in document["endpoints"]:
            endpoint["name"] = renamed.get(endpoint["name"], endpoint["name"])
        runs.append(RunResult.model_validate(document))
    return History(runs=runs)


# -- building an artifact -------------------------------------------------------------------------


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [leaf for index, value in enumerate(node) for leaf in _leaves(value, (*path, index))]
    return [(path, node)]


def _parse_path(dotted: str) -> tuple[str | int, ...]:
    head, _, last = dotted.rpartition(".")  # the last key may hold dots of its own only when it is new
    parts = [int(p) if p.isdigit() else p for p in head.split(".")] if head else []
    return (*parts, int(last) if last.isdigit() else last)


def _put(document: Any, path: tuple[str | int, ...], value: Any) -> None:
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _raw(value: Any) -> Any:
    """``__RAW__text`` is written into the JSON as it is; ``__DEEP__n`` is n nested lists."""
    if isinstance(value, str) and value.startswith("__DEEP__"):
        depth = int(value.removeprefix("__DEEP__"))
        return "__RAW__" + "[" * depth + "]" * depth
    return value


def _dumps(document: Any) -> str:
    text = json.dumps(document)
    return re.sub(r'"__RAW__((?:[^"\\]|\\.)*)"', lambda m: json.loads(f'"{m[1]}"'), text)


def _artifact(spec: dict[str, Any]) -> str:
    """The clean artifact changed as a corpus file says."""
    if "text" in spec:
        return str(spec["text"])
    document = json.loads(_clean_document())
    for dotted, value in spec.get("set", {}).items():
        _put(document, _parse_path(dotted), _raw(value))
    for dotted in spec.get("delete", []):
        path = _parse_path(dotted)
        node = document
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    if "multiply" in spec:  # the list's first entry, many times over (names and messages kept distinct)
        key, times = spec["multiply"]
        first = document[key][0]
        unique = "name" if "name" in first else "message"
        document[key] = [{**first, unique: f"{first[unique]} {i}"} for i in range(times)]
    if "duet_target" in spec:  # a base arm measured in the same run, at a URL the artifact names
        arm = {"target": spec["duet_target"], "aggregate": document["aggregate"], "endpoints": document["endpoints"]}
        document["base"] = arm
        document["meta"]["baseline_target"] = spec["duet_target"]
    text = _dumps(document)
    if "duplicate" in spec:  # the key again, later in the same object: a reader that keeps the last sees it
        key = _parse_path(spec["duplicate"])[-1]
        text = text.replace(f'"{key}": ', f'"{key}": "http://first", "{key}": ', 1)
    return spec.get("text_prefix", "") + text


# -- what report mode makes of it ---------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    markdown: str
    log: str  # what the step prints: the terminal text inside untrusted(), the error line
    terminal: str
    junit: str
    summary: str
    check_title: str
    verdict: str


def _report_mode(text: str, tmp_path: Path, *, renamed: dict[str, str] | None = None) -> Outputs:
    result = parse_result(text, source="artifact/result.json")
    stream = io.StringIO()
    out = WorkflowLog(stream, on_actions=True)
    with out.untrusted():
        judgement, markdown = conclude(
            GATE, result, history=_history(renamed or {}), out_dir=tmp_path, echo=stream, run_url=RUN_URL,
            advisory=ADVISORY,
        )  # fmt: skip
    report = judgement.report
    out.error(f"ci-perf {report.headline}")  # as the action ends a failed run
    summary_path = tmp_path / "summary.md"
    append_summary(summary_path, markdown)
    return Outputs(
        markdown=markdown,
        log=stream.getvalue(),
        terminal=_terminal_of(stream.getvalue()),
        junit=render_junit(report),
        summary=summary_path.read_text(encoding="utf-8"),
        check_title=one_line(report.headline, 200),
        verdict=report.verdict,
    )


def _terminal_of(log: str) -> str:
    """The terminal text: what the log holds between the stop and the resume line."""
    lines = log.splitlines(keepends=True)
    return "".join(lines[1:-2])


def _tables(markdown: str) -> list[tuple[str, list[int]]]:
    """Each table's header and the number of cells of each of its rows (unescaped pipes)."""
    tables: list[tuple[str, list[int]]] = []
    previous_was_row = False
    for line in markdown.splitlines():
        is_row = line.startswith("|")
        if is_row:
            cells = len(re.findall(r"(?<!\\)\|", line))
            if previous_was_row:
                tables[-1][1].append(cells)
            else:
                tables.append((line, [cells]))
        previous_was_row = is_row
    return tables


def _tags(markdown: str) -> Counter[str]:
    return Counter(m[1].lower() for m in re.finditer(r"</?([A-Za-z][A-Za-z0-9-]*)", markdown))


def _check_outputs(outputs: Outputs, clean: Outputs, *, text_only: bool) -> None:
    markdown = outputs.markdown
    for name, text in [("log", outputs.log), ("terminal", outputs.terminal), ("junit", outputs.junit),
                       ("markdown", markdown), ("check title", outputs.check_title)]:  # fmt: skip
        commands = workflow_commands(text)
        ours = [
            c for c in commands if c.startswith(("::stop-commands::ci-perf-", "::ci-perf-", "::error title=ci-perf::"))
        ]
        assert commands == ours, f"{name}: {commands}"
    assert len(workflow_commands(outputs.log)) == 3  # stop, resume, the error line: nothing else
    assert "\n" not in outputs.check_title
    assert len(outputs.check_title) <= 200
    ET.fromstring(outputs.junit.split("?>", 1)[1])  # well-formed XML (no control characters)
    assert outputs.summary == markdown + "\n"
    for header, rows in _tables(markdown):
        assert rows == [rows[0]] * len(rows), f"a row of {header!r} has other cells than its header"
    assert set(_tags(markdown)) <= OUR_TAGS, _tags(markdown)
    assert markdown.count(MARKER) == 1
    assert markdown.count("<!-- ci-perf-fingerprint:") == 1
    assert len(re.findall(r"(?<!\\)\]\(", markdown)) == 1  # the workflow run's link, ours
    without_ours = markdown.replace(f"]({RUN_URL})", "")
    assert not re.search(r"https?://|www\.", without_ours, re.IGNORECASE), "a live link from the artifact"
    assert not re.search(r"@(?!&#8203;)", markdown), "a live @mention"
    assert not re.search(r"(?<![&\\])#\d|\bgh-\d", markdown, re.IGNORECASE), "a live issue reference"
    assert not re.search(r"(?<!\\)\$", markdown), "math from the artifact"
    if text_only:
        assert outputs.verdict == clean.verdict
        assert _heading(markdown) == _heading(clean.markdown)  # the verdict's own rendering
        assert len(markdown.splitlines()) == len(clean.markdown.splitlines())
        assert [(h, len(r)) for h, r in _tables(markdown)] == [(h, len(r)) for h, r in _tables(clean.markdown)]
        assert _tags(markdown) == _tags(clean.markdown)


def _heading(markdown: str) -> str:
    """The verdict's heading up to the headline (which names endpoints): ``## ❌ ci-perf``."""
    line = next(line for line in markdown.splitlines() if line.startswith("## "))
    return line[: line.index("ci-perf") + len("ci-perf")]


def _check_refusal(error: InputError) -> None:
    message = str(error)
    assert message.startswith("artifact/result.json: "), message
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert len(message) < 600, message
    assert workflow_commands(f"ci-perf: error: {message}") == [], message
    summary = escape_markdown(message, 500)  # the action's job summary of a run that could not happen
    assert not _tags(summary), summary
    assert not re.search(r"@(?!&#8203;)|https?://", summary), summary


@cache
def _clean_outputs(tmp: str) -> Outputs:
    return _report_mode(_clean_document(), Path(tmp))


@pytest.fixture
def clean(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    return _clean_outputs(str(tmp_path_factory.getbasetemp() / "clean"))


# -- the corpus -----------------------------------------------------------------------------------


def _text_paths() -> list[tuple[str | int, ...]]:
    """The clean artifact's free-text fields: those that take any text (names, messages, hosts, …)."""
    document = json.loads(_clean_document())
    found = []
    for path, value in _leaves(document):
        if not isinstance(value, str):
            continue
        changed = copy.deepcopy(document)
        _put(changed, path, "free <text> 1")
        try:
            parse_result(json.dumps(changed), source="probe")
        except InputError:
            continue
        found.append(path)
    return found


TEXT_PATHS = _text_paths()
STRING_PATHS = [path for path, value in _leaves(json.loads(_clean_document())) if isinstance(value, str)]


def _with_text(paths: list[tuple[str | int, ...]], text: str) -> tuple[str, dict[str, str]]:
    """The clean artifact with ``text`` (made unique per field) in each of ``paths``; endpoint renames."""
    document = json.loads(_clean_document())
    renamed = {}
    for number, path in enumerate(paths):
        value = f"{text} {number}"
        if path[0] == "endpoints" and path[-1] == "name":
            renamed[document["endpoints"][path[1]]["name"]] = value
        _put(document, path, value)
    return json.dumps(document), renamed


def test_the_corpus_covers_every_string_field_and_each_kind_of_attack() -> None:
    assert len(TEXT_PATHS) >= 20  # names, messages, types, places, hosts, targets, reasons, warnings, branch
    assert {p[-1] for p in TEXT_PATHS} >= {"name", "message", "type", "where", "host", "target", "reason"}
    corpus = len(PAYLOADS) + len(STRING_PATHS) + len(CASES) + len(list(RECORDED.glob("*.json")))
    assert corpus >= 120, corpus


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_hostile_text_in_every_free_text_field_renders_inert(payload: str, clean: Outputs, tmp_path: Path) -> None:
    text, renamed = _with_text(TEXT_PATHS, PAYLOADS[payload])
    outputs = _report_mode(text, tmp_path, renamed=renamed)
    _check_outputs(outputs, clean, text_only=True)
    if "pwned" in PAYLOADS[payload]:
        assert "pwned" in outputs.log  # shown, as text


@pytest.mark.parametrize("path", STRING_PATHS, ids=[".".join(map(str, p)) for p in STRING_PATHS])
def test_hostile_text_in_any_one_string_field_is_refused_or_inert(
    path: tuple[str | int, ...], clean: Outputs, tmp_path: Path
) -> None:
    text, renamed = _with_text([path], COMBINED)
    if path not in TEXT_PATHS:  # versions, keys, commit ids, the profile: a pattern or a choice, never free text
        with pytest.raises(InputError) as raised:
            _report_mode(text, tmp_path, renamed=renamed)
        _check_refusal(raised.value)
        return
    _check_outputs(_report_mode(text, tmp_path, renamed=renamed), clean, text_only=True)


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_a_hostile_artifact_is_refused_in_one_sentence_or_rendered_inert(
    case: Path, clean: Outputs, tmp_path: Path
) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    text = _artifact(spec)
    if spec["expect"] == "rejected":
        with pytest.raises(InputError) as raised:
            _report_mode(text, tmp_path)
        _check_refusal(raised.value)
    else:
        _check_outputs(_report_mode(text, tmp_path), clean, text_only=False)


@pytest.mark.parametrize("recorded", sorted(RECORDED.glob("*.json")), ids=lambda p: p.stem)
def test_results_that_earlier_versions_recorded_still_parse(recorded: Path, tmp_path: Path) -> None:
    result = parse_result(recorded.read_text(encoding="utf-8"), source=str(recorded))
    assert result.meta.peak_users in {0, 5}  # 0: not recorded yet (version 1 and 2)
    assert [e.name for e in result.endpoints] == ["GET /a", "POST /b"]
    conclude(GATE, result, history=History(), out_dir=tmp_path, echo=None)


def test_a_refusal_names_the_field_and_quotes_a_foreign_key_inertly() -> None:
    document = json.loads(_clean_document())
    document["meta"]["load"]["x\n::error::pwned"] = 1
    with pytest.raises(InputError) as raised:
        parse_result(json.dumps(document), source="result.json")
    message = str(raised.value)
    assert message.startswith('result.json: not a ci-perf result (meta.load["x\\n:\u200b:error')
    assert "Extra inputs are not permitted" in message
    assert workflow_commands(message) == []


def test_a_refusal_counts_the_other_problems() -> None:
    document = json.loads(_clean_document())
    document["aggregate"]["requests"] = -1
    document["aggregate"]["failures"] = -1
    with pytest.raises(
        InputError, match=r"aggregate\.requests: Input should be greater than or equal to 0; and 1 more"
    ):
        parse_result(json.dumps(document), source="result.json")


@pytest.mark.parametrize("payload", ["error-command", "v1-mid-line", "newline-command", "cr-command", "stop-commands"])
def test_a_plain_log_line_that_quotes_hostile_text_is_no_command(payload: str) -> None:
    """``WorkflowLog.info`` quotes commit ids, endpoints and paths outside ``untrusted()``."""
    stream = io.StringIO()
    WorkflowLog(stream, on_actions=True).info(f"the artifact's result is of commit {PAYLOADS[payload]}")
    assert workflow_commands(stream.getvalue()) == []
    assert "pwned" in stream.getvalue()
