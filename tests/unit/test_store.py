from __future__ import annotations

from pathlib import Path

import pytest

from ci_perf.errors import InputError
from ci_perf.results import load_result, save_result
from ci_perf.store import IndexEntry, run_file_name, select_history
from ci_perf.store.local import LocalStore
from tests.support.runs import recorded_run


def test_history_returns_the_last_runs_of_the_same_scenario_on_the_branch_oldest_first(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(5):
        store.record(recorded_run(start=1_000.0 + i * 100))
    store.record(recorded_run(branch="feature", start=9_000.0))
    store.record(recorded_run(endpoints=("GET /a", "GET /b"), start=9_500.0))
    history = store.history(
        scenario_key=recorded_run().meta.scenario_key, load_key=recorded_run().meta.load_key, branch="main", limit=3
    )
    assert history.matched_on == "scenario"
    assert [r.meta.started_at for r in history.runs] == [1_200.0, 1_300.0, 1_400.0]


def test_history_falls_back_to_the_same_load_when_the_endpoint_set_changed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.record(recorded_run())
    changed = recorded_run(endpoints=("GET /a", "GET /new"))
    history = store.history(
        scenario_key=changed.meta.scenario_key, load_key=changed.meta.load_key, branch="main", limit=10
    )
    assert history.matched_on == "load"
    assert len(history.runs) == 1


def test_an_empty_store_has_no_history(tmp_path: Path) -> None:
    history = LocalStore(tmp_path / "none").history(scenario_key="k", load_key="l", branch="main", limit=5)
    assert history.runs == []


def test_a_corrupt_index_line_is_bad_input_naming_the_line(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.record(recorded_run())
    with store.index_path.open("a") as index:
        index.write("{not json\n")
    with pytest.raises(InputError, match=r"index.jsonl:2"):
        store.entries()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not JSON", id="not-json"),
        pytest.param('{"schema_version": 99}', "schema_version 99 is not supported", id="future-version"),
        pytest.param('{"schema_version": 1, "meta": {}}', "not a ci-perf result", id="wrong-shape"),
    ],
)
def test_unreadable_result_files_are_bad_input_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        load_result(path)
    assert str(path) in str(caught.value)


def test_a_result_survives_a_save_and_load_round_trip(tmp_path: Path) -> None:
    result = recorded_run()
    save_result(result, tmp_path / "r.json")
    assert load_result(tmp_path / "r.json") == result


def _entry(sha: str, ended_at: float, *, branch: str = "main") -> IndexEntry:
    return IndexEntry(file=f"{sha}.json", scenario_key="s", load_key="l", branch=branch, sha=sha, ended_at=ended_at)


def test_history_ends_at_the_run_of_the_merge_base_commit_when_there_is_one() -> None:
    entries = [_entry(sha, t) for sha, t in [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]]
    chosen = select_history(entries, scenario_key="s", load_key="l", branch="main", limit=2, prefer_sha="b")
    assert [e.sha for e in chosen.entries] == ["a", "b"]
    assert chosen.anchor_sha == "b"


def test_history_without_a_run_of_the_merge_base_takes_the_latest_runs() -> None:
    entries = [_entry(sha, t) for sha, t in [("a", 1.0), ("b", 2.0), ("c", 3.0)]]
    chosen = select_history(entries, scenario_key="s", load_key="l", branch="main", limit=2, prefer_sha="zzz")
    assert [e.sha for e in chosen.entries] == ["b", "c"]
    assert chosen.anchor_sha is None


def test_history_ignores_other_branches_and_sorts_by_time() -> None:
    entries = [_entry("late", 9.0), _entry("early", 1.0), _entry("pr", 5.0, branch="feature")]
    chosen = select_history(entries, scenario_key="s", load_key="l", branch="main", limit=10)
    assert [e.sha for e in chosen.entries] == ["early", "late"]


def test_run_file_names_keep_branch_names_with_slashes_in_one_folder() -> None:
    name = run_file_name(recorded_run(branch="release/1.x"))
    assert "/release-1.x/" in name
    assert name.endswith("-ffffffffffff.json")
