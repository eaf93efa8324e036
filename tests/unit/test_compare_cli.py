"""`ci-perf compare`: the offline analysis of recorded results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_perf.analysis.summarize import summarize_run
from ci_perf.cli import main
from ci_perf.results import RunResult, save_result
from ci_perf.store.local import LocalStore
from tests.conftest import collected_run, write
from tests.support.runs import JUDGED_LOAD, noisy_history, two_endpoint_run


def test_compare_judges_a_result_against_a_store_and_fails_the_gate_on_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    for run in noisy_history(10, cv=0.01):
        store.record(run.model_copy(update={"meta": run.meta.model_copy(update={"git_branch": "main"})}))
    save_result(two_endpoint_run(1.0, slow=1.25, start=5_000.0), tmp_path / "current.json")
    code = main(["compare", "--baseline", str(tmp_path / "store"), "--current", str(tmp_path / "current.json"),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["comparison"]["mode"] == "history"
    assert "REGRESSION  GET /slow p95 +24.6 % [+22.7 %, +26.5 %]" in capsys.readouterr().out


def test_compare_with_one_result_file_uses_single_baseline_mode(tmp_path: Path) -> None:
    save_result(two_endpoint_run(1.0), tmp_path / "base.json")
    save_result(two_endpoint_run(1.0, start=5_000.0), tmp_path / "current.json")
    code = main(["compare", "--baseline", str(tmp_path / "base.json"), "--current", str(tmp_path / "current.json"),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["comparison"]["mode"] == "single"


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        pytest.param("empty-dir", "no recorded runs", id="empty-store"),
        pytest.param("missing.json", "cannot read the result file", id="missing-file"),
    ],
)
def test_compare_with_an_unusable_baseline_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baseline: str, message: str
) -> None:
    (tmp_path / "empty-dir").mkdir()
    save_result(two_endpoint_run(1.0), tmp_path / "current.json")
    code = main(["compare", "--baseline", str(tmp_path / baseline), "--current", str(tmp_path / "current.json"),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err


def _failing_run(start: float) -> RunResult:
    collected = collected_run(endpoints={"GET /api/x": [5.0] * 10, "GET /health": [1.0] * 10}, start=start,
                              failures={"GET /api/x": 10})  # fmt: skip
    return summarize_run(collected, load=JUDGED_LOAD, target="http://x", tool_version="t")


@pytest.mark.parametrize(
    ("config", "code", "sources"),
    [
        pytest.param(None, 1, ["default", "default"], id="default-limit"),
        pytest.param("performance_budget: {default_error_rate_percent: null}\n", 0, [], id="disabled"),
    ],
)
def test_compare_fails_a_service_that_fails_everywhere_unless_the_default_limit_is_disabled(
    tmp_path: Path, config: str | None, code: int, sources: list[str]
) -> None:
    """The same failures in the baseline are no regression; only the default error limit can catch them."""
    save_result(_failing_run(1_000.0), tmp_path / "base.json")
    save_result(_failing_run(5_000.0), tmp_path / "current.json")
    args = ["compare", "--baseline", str(tmp_path / "base.json"), "--current", str(tmp_path / "current.json"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    if config is not None:
        args += ["--config", str(write(tmp_path / "gate.yml", "endpoints: [GET /api/x]\n" + config))]
    assert main(args) == code
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [c["source"] for c in report["budget"]["checks"]] == sources
    assert ("(default limit)" in report["headline"]) == (code == 1)
