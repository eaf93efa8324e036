"""The action's pure parts: the decision table, reading the runner's environment, runner commands, junit.xml."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ci_perf.action import with_inputs
from ci_perf.activities import decide
from ci_perf.analysis.judge import judge
from ci_perf.config import Config, EndpointBudget, Gate, LoadSettings, PerformanceBudget, gate_changes, setting_changes
from ci_perf.errors import InputError
from ci_perf.github.context import ActionContext, ActionInputs
from ci_perf.github.workflow import WorkflowLog, write_outputs
from ci_perf.junit import render_junit
from ci_perf.loadtest.readiness import is_loopback
from ci_perf.results import History
from tests.support.runs import recorded_run
from tests.support.workflow_commands import workflow_commands


@pytest.mark.parametrize(
    ("mode", "event", "ref", "has_change", "activity"),
    [
        pytest.param("auto", "pull_request", "refs/pull/7/merge", True, "check-pr", id="pr"),
        pytest.param("auto", "pull_request_target", "refs/heads/main", True, "check-pr", id="pr-target"),
        pytest.param("auto", "push", "refs/heads/main", False, "record-baseline", id="push-default"),
        pytest.param("auto", "push", "refs/heads/feature", False, "local", id="push-other-branch"),
        pytest.param("auto", "workflow_run", "refs/heads/main", False, "report-only", id="workflow-run"),
        pytest.param("auto", "schedule", "refs/heads/main", False, "local", id="schedule"),
        pytest.param("record", "schedule", "refs/heads/main", False, "record-baseline", id="forced-record"),
        pytest.param("check", "push", "refs/heads/main", False, "local", id="check-without-pr"),
        pytest.param("report", "pull_request", "refs/pull/7/merge", True, "report-only", id="forced-report"),
        pytest.param("auto", "merge_group", "refs/heads/gh-readonly-queue/main/pr-7", True, "check-pr", id="queue"),
        pytest.param("check", "merge_group", "refs/heads/gh-readonly-queue/main/pr-7", True, "check-pr", id="q-check"),
    ],
)
def test_the_activity_follows_the_event_and_the_mode(
    mode: str, event: str, ref: str, has_change: bool, activity: str
) -> None:
    decision = decide(mode=mode, event_name=event, ref=ref, default_branch="main", has_change=has_change)
    assert decision.activity == activity
    assert decision.why


def test_a_pull_request_run_never_records_the_baseline_whatever_its_branch() -> None:
    for ref in ("refs/heads/main", "refs/pull/1/merge"):
        assert decide(
            mode="auto", event_name="pull_request", ref=ref, default_branch="main", has_change=True
        ).activity == ("check-pr")


def _environ(tmp_path: Path, event: dict[str, object] | None = None, **inputs: str) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event or {}))
    environ = {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "42",
        "GITHUB_WORKSPACE": str(tmp_path),
    }
    environ.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    return environ


def test_inputs_and_the_event_are_read_from_the_environment(tmp_path: Path) -> None:
    event = {
        "repository": {"default_branch": "trunk"},
        "pull_request": {
            "number": 7,
            "head": {"sha": "h" * 40, "ref": "feature", "repo": {"full_name": "fork/shop"}},
            "base": {"sha": "b" * 40, "ref": "trunk", "repo": {"full_name": "acme/shop"}},
        },
    }
    environ = _environ(
        tmp_path, event, fail_on="budget", comment="on-change", extra_args="--tags 'a b'", trust_pr_config="true"
    )
    context = ActionContext.from_environ(environ, cwd=Path("/"))
    assert context.inputs.fail_on == ("budget",)
    assert context.inputs.comment == "on-change"
    assert context.inputs.extra_args == ("--tags", "a b")
    assert context.inputs.trust_pr_config is True
    assert context.default_branch == "trunk"
    assert context.change is not None
    assert context.change.fork is True
    assert context.change.number == 7
    assert context.run_url == "https://github.com/acme/shop/actions/runs/42"
    assert context.resolve("perf/ci-perf.yml") == tmp_path / "perf/ci-perf.yml"


def test_a_merge_group_is_a_change_without_a_pull_request_judged_against_its_base_branch(tmp_path: Path) -> None:
    event = {
        "merge_group": {
            "head_sha": "h" * 40,
            "head_ref": "refs/heads/gh-readonly-queue/main/pr-7-" + "b" * 40,
            "base_sha": "b" * 40,
            "base_ref": "refs/heads/main",
        }
    }
    context = ActionContext.from_environ(
        {**_environ(tmp_path, event), "GITHUB_EVENT_NAME": "merge_group"}, cwd=tmp_path
    )
    assert context.change is not None
    assert context.change.number is None
    assert (context.change.head_sha, context.change.base_sha) == ("h" * 40, "b" * 40)
    assert (context.change.base_ref, context.change.head_ref) == ("main", "gh-readonly-queue/main/pr-7-" + "b" * 40)


def test_the_suite_id_and_the_opt_ins_are_read(tmp_path: Path) -> None:
    environ = _environ(tmp_path, id="checkout-api", allow_pull_request_target="true", unmatched_baseline="FAIL")
    inputs = ActionContext.from_environ(environ, cwd=tmp_path).inputs
    assert (inputs.id, inputs.allow_pull_request_target, inputs.unmatched_baseline) == ("checkout-api", True, "fail")
    defaults = ActionContext.from_environ(_environ(tmp_path), cwd=tmp_path).inputs
    assert (defaults.id, defaults.allow_pull_request_target, defaults.unmatched_baseline) == ("", False, "neutral")


def test_empty_inputs_take_the_defaults(tmp_path: Path) -> None:
    context = ActionContext.from_environ(_environ(tmp_path, mode="", comment="", fail_on=""), cwd=tmp_path)
    assert (context.inputs.mode, context.inputs.comment, context.inputs.fail_on) == ("auto", "always", None)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param({"mode": "publish"}, "input mode: 'publish' is not one of auto, check, record, report", id="mode"),
        pytest.param({"comment": "sometimes"}, "input comment", id="comment"),
        pytest.param({"fail_on": "budget,latency"}, "input fail_on: 'latency'", id="fail-on"),
        pytest.param({"keep_runs": "0"}, "input keep_runs", id="keep-runs"),
        pytest.param({"trust_pr_config": "maybe"}, "input trust_pr_config", id="boolean"),
        pytest.param({"extra_args": "--tags 'open"}, "input extra_args", id="unbalanced-quote"),
        pytest.param({"id": "../main"}, "input id: '../main' must be", id="id-path"),
        pytest.param({"id": "a b"}, "input id", id="id-space"),
        pytest.param({"id": "x" * 41}, "input id", id="id-long"),
        pytest.param({"unmatched_baseline": "pass"}, "input unmatched_baseline: 'pass' is not one of", id="unmatched"),
        pytest.param({"allow_pull_request_target": "sure"}, "input allow_pull_request_target", id="opt-in"),
    ],
)
def test_bad_inputs_are_bad_input_naming_the_input(tmp_path: Path, inputs: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        ActionContext.from_environ(_environ(tmp_path, **inputs), cwd=tmp_path)


def test_outputs_are_written_as_delimited_blocks(tmp_path: Path) -> None:
    path = tmp_path / "output"
    write_outputs(path, {"verdict": "fail", "comment_url": ""})
    lines = path.read_text().splitlines()
    assert lines[0].startswith("verdict<<ci_perf_")
    assert lines[1] == "fail"
    assert lines[2] == lines[0].split("<<")[1]
    assert lines[4] == ""


def test_config_problems_become_annotations_with_file_and_line_relative_to_the_workspace(tmp_path: Path) -> None:
    stream = io.StringIO()
    message = f"{tmp_path}/perf/ci-perf.yml:12: load.users: expected a number\n{tmp_path}/ci-perf.yml: invalid"
    WorkflowLog(stream, on_actions=True).config_problems(message, workspace=tmp_path)
    first, second = stream.getvalue().splitlines()
    assert first == "::error file=perf/ci-perf.yml,line=12,title=ci-perf::load.users: expected a number"
    assert second == "::error file=ci-perf.yml,title=ci-perf::invalid"


def test_off_actions_no_workflow_commands_and_no_secret_is_printed() -> None:
    stream = io.StringIO()
    log = WorkflowLog(stream, on_actions=False)
    log.mask("ghs_secret")
    with log.group("x"):
        log.warning("careful")
    assert stream.getvalue() == "warning: careful\n"


def test_a_changed_gate_is_listed_setting_by_setting() -> None:
    before = Gate(performance_budget=PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=200)))
    after = before.model_copy(
        update={"performance_budget": PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=300))}
    )
    changes = gate_changes(
        before, after.model_copy(update={"comparison": after.comparison.model_copy(update={"q": 0.05})})
    )
    assert changes == ["performance_budget.api_endpoints.p95_latency_ms: 200 → 300", "comparison.q: 0.01 → 0.05"]


def test_a_changed_load_is_listed_setting_by_setting() -> None:
    before, after = LoadSettings(users=10, duration=30), LoadSettings(users=2, duration=30, think_time=1)
    assert setting_changes("load", before, after) == ["load.think_time: 0 → 1", "load.users: 10 → 2"]


def test_junit_has_a_case_per_budget_rule_and_per_regression_check() -> None:
    config = Config(
        endpoints=["GET /a"],  # type: ignore[list-item]
        load=LoadSettings(users=10, duration=10, warmup=2),
        performance_budget=PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=1, p50_latency_ms=100)),
    )
    report = judge(
        config.gate, recorded_run(endpoints=("GET /a<script>",)), history=History(runs=[recorded_run(), recorded_run()])
    ).report
    root = ET.fromstring(render_junit(report))
    budget, regressions = root.findall("testsuite")
    assert budget.get("tests") == str(len(report.budget.checks))
    assert budget.get("failures") == str(len(report.budget.violations))
    names = [case.get("name") for case in budget]
    assert any(name and name.startswith("GET /a<script> p95") for name in names)
    assert regressions.get("name") == "ci-perf regressions"


def test_the_baseline_url_input_turns_on_duet_mode_and_is_checked() -> None:
    config = Config(endpoints=["GET /"])  # type: ignore[list-item]
    duet = with_inputs(config, ActionInputs(baseline_url="https://staging.example.com/", fail_on=("budget",)))
    assert duet.gate.comparison.baseline_target == "https://staging.example.com"
    assert duet.gate.comparison.fail_on == ["budget"]
    with pytest.raises(InputError, match="input baseline_url: 'staging' is not an http"):
        with_inputs(config, ActionInputs(baseline_url="staging"))


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:8000", True),
        ("http://127.0.0.1:8000/", True),
        ("http://127.0.1.1", True),
        ("http://[::1]:8080", True),
        ("http://api:8000", False),
        ("http://172.17.0.1:8000", False),
        ("https://pr-7.preview.example.com", False),
    ],
)
def test_loopback_targets_are_told_apart_from_the_jobs_other_hosts(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_text_written_as_untrusted_never_becomes_a_workflow_command() -> None:
    stream = io.StringIO()
    log = WorkflowLog(stream, on_actions=True)
    hostile = "::error::pwned\n::add-mask::x\n##[error]pwned\n::stop-commands::guess\n::guess::\n::error::after"
    with log.untrusted():
        stream.write(hostile + "\n")
    log.warning("ours")
    commands = workflow_commands(stream.getvalue())
    assert len(commands) == 3  # stop, resume, our warning
    stop, resume, ours = commands
    token = stop.removeprefix("::stop-commands::")
    assert len(token) >= 32  # unguessable: a random token per block
    assert resume == f"::{token}::"
    assert ours == "::warning title=ci-perf::ours"
    with log.untrusted():
        pass
    assert workflow_commands(stream.getvalue())[3] != stop  # a new token each time
