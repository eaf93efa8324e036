"""`ci-perf watch`: the change points of a store's runs on the baseline branch (issue 13, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ci_perf.cli import main
from ci_perf.results import RunResult
from ci_perf.store.local import LocalStore
from tests.conftest import write
from tests.support.runs import commit_sha, main_run

HOSTILE = "GET /x|y ::error::boom"
STEP_AT = 10
RUNS = 16


def _run(i: int, *, scale: float, slow: float) -> RunResult:
    return main_run(i, scale=scale, slow=slow, slow_endpoint=HOSTILE)


def _store(path: Path, *, step: float) -> Path:
    """``RUNS`` runs on main with 1 % run-to-run noise; the hostile endpoint steps by ``step`` at run ``STEP_AT``."""
    rng = np.random.default_rng(2)
    store = LocalStore(path)
    for i in range(RUNS):
        store.record(_run(i, scale=float(np.exp(rng.normal(0, 0.01))), slow=step if i >= STEP_AT else 1.0))
    return path


def _watch(*args: str) -> int:
    return main(["watch", *args])


def test_watch_lists_a_step_on_main_with_its_commit_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "store", step=1.25)
    assert _watch("--baseline", str(store), "--out", str(tmp_path / "out")) == 0
    changes = json.loads((tmp_path / "out" / "watch.json").read_text())["changes"]
    p95 = [c for c in changes if c["endpoint"] == HOSTILE and c["metric"] == "p95"]
    assert len(p95) == 1
    assert (p95[0]["before_sha"], p95[0]["after_sha"]) == (commit_sha(STEP_AT - 1), commit_sha(STEP_AT))
    assert p95[0]["direction"] == "regression"
    assert 20 < p95[0]["change_percent"] < 30
    assert p95[0]["runs_since"] == RUNS - STEP_AT
    assert not [c for c in changes if c["endpoint"] == "GET /fast"]
    out = capsys.readouterr().out
    assert f"{commit_sha(STEP_AT - 1)[:7]}..{commit_sha(STEP_AT)[:7]}" in out
    assert "::error::" not in out  # endpoint names are untrusted: no workflow command reaches the log
    markdown = (tmp_path / "out" / "watch.md").read_text()
    assert "x|y" not in markdown  # escaped: a pipe would split the table's row
    assert "🔴" in markdown


@pytest.mark.parametrize(
    ("within", "code"), [pytest.param("6", 1, id="inside-the-newest-runs"), pytest.param("5", 0, id="older")]
)
def test_fail_within_exits_1_only_for_a_regression_among_the_newest_runs(
    tmp_path: Path, within: str, code: int
) -> None:
    store = _store(tmp_path / "store", step=1.25)
    assert _watch("--baseline", str(store), "--out", str(tmp_path / "out"), "--fail-within", within) == code


def test_an_improvement_never_fails_and_a_flat_history_lists_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "faster", step=0.8)
    assert _watch("--baseline", str(store), "--out", str(tmp_path / "a"), "--fail-within", "100") == 0
    changes = json.loads((tmp_path / "a" / "watch.json").read_text())["changes"]
    assert {c["direction"] for c in changes} == {"improvement"}
    flat = _store(tmp_path / "flat", step=1.0)
    assert _watch("--baseline", str(flat), "--out", str(tmp_path / "b")) == 0
    assert json.loads((tmp_path / "b" / "watch.json").read_text())["changes"] == []
    assert "No change point" in (tmp_path / "b" / "watch.md").read_text()


def test_watch_reads_the_branch_it_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "store", step=1.25)
    assert _watch("--baseline", str(store), "--out", str(tmp_path / "out"), "--branch", "develop") == 2
    assert "no run recorded on branch 'develop'" in capsys.readouterr().err
    config = write(tmp_path / "ci-perf.yml", "endpoints: [GET /]\ncomparison: {baseline_branch: develop}\n")
    assert _watch("--baseline", str(store), "--out", str(tmp_path / "out"), "--config", str(config)) == 2


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        pytest.param("missing", 2, "not a ci-perf store", id="no-store"),
        pytest.param("bad-config", 2, "ci-perf.yml", id="bad-config"),
        pytest.param("unreadable", 3, "could not be read", id="unreadable-store"),
    ],
)
def test_a_store_or_config_watch_cannot_use_says_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, code: int, message: str
) -> None:
    store = tmp_path / "store"
    args = ["--baseline", str(store), "--out", str(tmp_path / "out")]
    if setup == "bad-config":
        _store(store, step=1.0)
        args += ["--config", str(write(tmp_path / "ci-perf.yml", "comparison: {change_point_max_p: 2}\n"))]
    if setup == "unreadable":
        store.mkdir()
        (store / "index.jsonl").symlink_to("/proc/self/mem")  # a file whose read fails with an I/O error
    assert _watch(*args) == code
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
