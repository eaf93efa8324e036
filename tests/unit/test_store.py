from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_perf.errors import GitHubError, InputError
from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.results import RunResult, load_result, save_result
from ci_perf.store import IndexEntry, run_file_name, select_history
from ci_perf.store.github_branch import DataBranchStore
from ci_perf.store.local import LocalStore
from tests.support.fake_github import FakeGitHub, ProtectionKind
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


# -- the data branch on the fake GitHub ----------------------------------------------------------

REPO = "acme/shop"
TOKEN = "ghs_installation"
DATA = "ci-perf-data"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, GitHubGateway]]:
    with FakeGitHub() as fake:
        fake.add_token(TOKEN, kind="app")
        fake.add_repo(REPO)
        fake.add_commit(REPO, files={"README.md": "x"}, branch="main")
        settings = GatewaySettings(seconds_between_writes=0, backoff_s=0.01)
        gateway = GitHubGateway(token=TOKEN, api_url=fake.url, repository=REPO, settings=settings)
        yield fake, gateway
        gateway.close()


def _store(gateway: GitHubGateway, *, suite: str = "") -> DataBranchStore:
    return DataBranchStore(gateway, branch=DATA, keep=10, suite=suite, sleep=lambda _s: None)


def _at(sha: str, start: float) -> RunResult:
    run = recorded_run(start=start)
    return run.model_copy(update={"meta": run.meta.model_copy(update={"git_sha": sha * 40})})


def _index(fake: FakeGitHub, path: str = "index.json") -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(fake.read_file(REPO, DATA, path) or "{}")["runs"]
    return runs


def _history(store: DataBranchStore) -> list[str | None]:
    meta = recorded_run().meta
    history = store.history(scenario_key=meta.scenario_key, load_key=meta.load_key, branch="main", limit=10)
    return [r.meta.git_sha[:1] if r.meta.git_sha else None for r in history.runs]


def test_recording_a_commit_again_replaces_its_run(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    """A re-run of the record job must not count the commit twice in the baseline."""
    fake, gateway = github
    store = _store(gateway)
    store.record(_at("a", 1_000.0))
    first = store.record(_at("b", 2_000.0))
    again = store.record(_at("b", 3_000.0))  # the same commit, measured again
    assert [(e["sha"], e["ended_at"]) for e in _index(fake)] == [("a" * 40, 1_010.0), ("b" * 40, 3_010.0)]
    assert fake.read_file(REPO, DATA, first.split(":", 1)[1]) is None  # the replaced run's file left the tree
    assert fake.read_file(REPO, DATA, again.split(":", 1)[1])
    assert _history(store) == ["a", "b"]
    other_branch = recorded_run(branch="feature", start=4_000.0)  # same sha, another branch: a run of its own
    store.record(other_branch)
    assert len(_index(fake)) == 3


@pytest.mark.parametrize("kind", ["ruleset", "classic"])
def test_a_protected_data_branch_says_so_instead_of_blaming_concurrent_recorders(
    github: tuple[FakeGitHub, GitHubGateway], kind: ProtectionKind
) -> None:
    fake, gateway = github
    store = _store(gateway)
    store.record(_at("a", 1_000.0))
    tip = fake.branch_sha(REPO, DATA)
    fake.protect_branch(REPO, DATA, kind)
    with pytest.raises(GitHubError) as caught:
        store.record(_at("b", 2_000.0))
    message = str(caught.value)
    assert f"refused to update branch {DATA} (422 " in message
    assert "protected" in message
    assert f"Exclude {DATA} from branch protection and rulesets" in message
    assert "github_token that is allowed to push" in message
    assert "concurrent" not in message
    assert fake.branch_sha(REPO, DATA) == tip
    assert [s for m, _, s in fake.requests_log if m == "PATCH"] == [422]  # told at once, not after 8 tries


def test_a_ruleset_that_refuses_creating_the_data_branch_says_so(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    fake.protect_branch(REPO, DATA, "ruleset")
    with pytest.raises(GitHubError, match=rf"refused to create branch {DATA} \(422 Reference update failed\)"):
        _store(gateway).record(_at("a", 1_000.0))


class _Interloped(GitHubGateway):
    """Another recorder's commit lands on the data branch after our first commit is built, before our update."""

    def __init__(self, fake: FakeGitHub) -> None:
        settings = GatewaySettings(seconds_between_writes=0, backoff_s=0.01)
        super().__init__(token=TOKEN, api_url=fake.url, repository=REPO, settings=settings)
        self.fake, self.raced = fake, False

    def commit_files(self, **kwargs: Any) -> str:
        commit = super().commit_files(**kwargs)
        if not self.raced:
            self.raced = True
            tip = str(self.fake.branch_sha(REPO, DATA))
            self.fake.add_commit(REPO, parents=[tip], files={"other.txt": "x"}, branch=DATA)
        return commit


def test_a_lost_race_is_still_redone_on_the_new_tip(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    _store(gateway).record(_at("a", 1_000.0))
    interloped = _Interloped(fake)
    try:
        _store(interloped).record(_at("b", 2_000.0))
    finally:
        interloped.close()
    assert [s for m, _, s in fake.requests_log if m == "PATCH"] == [422, 200]
    assert [e["sha"] for e in _index(fake)] == ["a" * 40, "b" * 40]
    assert fake.read_file(REPO, DATA, "other.txt") == "x"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", r"/git/refs$", id="creating-the-branch"),
        pytest.param("PATCH", r"/git/refs/heads/ci-perf-data$", id="moving-the-branch"),
    ],
)
def test_a_lost_answer_on_the_ref_write_records_the_run_once(
    github: tuple[FakeGitHub, GitHubGateway], method: str, path: str
) -> None:
    fake, gateway = github
    store = _store(gateway)
    if method == "PATCH":
        store.record(_at("a", 1_000.0))
    fake.fail_next(method, path, 502, after=True)
    store.record(_at("b", 2_000.0))
    assert [e["sha"] for e in _index(fake)][-1] == "b" * 40
    assert len(_index(fake)) == (2 if method == "PATCH" else 1)


def test_suites_keep_their_own_index_and_runs_on_one_branch(github: tuple[FakeGitHub, GitHubGateway]) -> None:
    fake, gateway = github
    plain, api, web = _store(gateway), _store(gateway, suite="api"), _store(gateway, suite="web-1.x")
    plain.record(_at("a", 1_000.0))
    where = api.record(_at("b", 2_000.0))
    web.record(_at("c", 3_000.0))
    assert where.startswith(f"{DATA}:suites/api/runs/")
    assert [e["file"] for e in _index(fake, "suites/api/index.json")] == [where.split(":", 1)[1]]
    assert str(_index(fake, "suites/web-1.x/index.json")[0]["file"]).startswith("suites/web-1.x/runs/")
    assert [str(e["file"]).split("/")[0] for e in _index(fake)] == ["runs"]
    assert (_history(plain), _history(api), _history(web)) == (["a"], ["b"], ["c"])
    assert fake.read_file(REPO, DATA, "README.md")


@pytest.mark.parametrize("suite", ["../x", "a/b", ".hidden", "-flag", "a..b", "x" * 65, "sp ace", "ü"])
def test_a_suite_name_that_is_no_safe_folder_name_is_bad_input(
    github: tuple[FakeGitHub, GitHubGateway], suite: str
) -> None:
    _, gateway = github
    with pytest.raises(InputError, match="cannot name a folder on the data branch"):
        _store(gateway, suite=suite)
