"""Single mode learns its run-to-run noise from the store's other histories (issue 13, item 7)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ci_perf.analysis.compare import EndpointComparison, compare_runs
from ci_perf.analysis.judge import SINGLE_WARNS, judge
from ci_perf.analysis.noise import learn_run_noise
from ci_perf.config import Comparison, Gate
from ci_perf.formatting import plural
from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.results import History, RunResult
from ci_perf.simulate import DETECTION_SLOWED, NoiseModel, detection_run
from ci_perf.store import IndexEntry, select_noise_histories
from ci_perf.store.github_branch import DataBranchStore
from ci_perf.store.local import LocalStore
from tests.support.fake_github import FakeGitHub
from tests.support.runs import recorded_run

FIVE_PERCENT = NoiseModel(run_sd=0.042, endpoint_sd=0.025)  # run-to-run CV ≈ 4.9 %


def _histories(model: NoiseModel, *, count: int, runs: int, seed: int) -> list[list[RunResult]]:
    rng = np.random.default_rng(seed)
    return [[detection_run(rng, model, slow=1.0, start=100.0 * i) for i in range(runs)] for _ in range(count)]


def test_the_learned_run_noise_is_the_simulated_one_with_the_runs_degrees_of_freedom() -> None:
    learned = learn_run_noise(_histories(FIVE_PERCENT, count=4, runs=5, seed=1))
    p95 = learned["p95"]
    # 16 degrees of freedom know an sd to about ±18 %: over seeds 1-6 this gave 2.7-5.1 %
    assert 2.5 < 100 * math.expm1(math.sqrt(p95.variance)) < 7.5
    assert p95.df == 16  # 4 histories of 5 runs: the endpoints of a run share its offset
    assert (p95.runs, p95.histories) == (20, 4)
    quiet = learn_run_noise(_histories(NoiseModel(), count=4, runs=5, seed=1))["p95"]  # 2.9 %, the same draws
    assert quiet.variance < p95.variance / 2


def test_histories_of_fewer_than_three_runs_teach_nothing() -> None:
    assert learn_run_noise(_histories(NoiseModel(), count=2, runs=2, seed=2)) == {}


def test_single_mode_uses_the_learned_noise_and_says_which_it_used() -> None:
    rng = np.random.default_rng(3)
    baseline = [detection_run(rng, FIVE_PERCENT, slow=1.0, start=1_000.0)]
    current = detection_run(rng, FIVE_PERCENT, slow=1.0, start=2_000.0)
    learned = learn_run_noise(_histories(FIVE_PERCENT, count=2, runs=4, seed=4))
    assumed = compare_runs(current, baseline, settings=Comparison())
    taught = compare_runs(current, baseline, settings=Comparison(), run_noise=learned)
    assert "3 % is assumed" in assumed.mode_note
    assert "learned from 8 runs of 2 stored histories" in taught.mode_note
    wide, narrow = (_p95_width(report.for_endpoint(DETECTION_SLOWED)) for report in (taught, assumed))
    assert wide > narrow  # 5 % learned is wider than 3 % assumed


def _p95_width(endpoint: EndpointComparison | None) -> float:
    assert endpoint is not None
    p95 = endpoint.metrics["p95"]
    assert p95.ci_low is not None
    assert p95.ci_high is not None
    return p95.ci_high - p95.ci_low


def test_a_regression_against_one_baseline_run_warns_unless_the_config_says_gate() -> None:
    rng = np.random.default_rng(5)
    history = History(runs=[detection_run(rng, NoiseModel(), slow=1.0, start=1_000.0)])
    current = detection_run(rng, NoiseModel(), slow=2.0, start=2_000.0)
    warned = judge(Gate(comparison=Comparison(confirm_runs=0)), current, history=history).report
    assert warned.regressions
    assert warned.status == "pass"
    assert SINGLE_WARNS.format(regressions=plural(len(warned.regressions), "regression")) in warned.notes
    gated = judge(
        Gate(comparison=Comparison(confirm_runs=0, gate_on_single_baseline=True)), current, history=history
    ).report
    assert gated.status == "fail"


# -- the stores -----------------------------------------------------------------------------------------


def _entry(scenario: str, at: float, branch: str = "main") -> IndexEntry:
    return IndexEntry(
        file=f"{scenario}/{at}", scenario_key=scenario, load_key="l", branch=branch, sha=None, ended_at=at
    )


def test_noise_histories_are_read_only_for_a_short_baseline_and_at_most_twenty_files() -> None:
    entries = [_entry(f"s{s}", 100.0 * s + i) for s in range(6) for i in range(8)] + [_entry("x", 5.0, "dev")] * 4
    chosen = [_entry("mine", 1_000.0)]
    groups = select_noise_histories(entries, branch="main", chosen=chosen)
    assert [g[0].scenario_key for g in groups] == ["s2", "s3", "s4", "s5"]  # the most recently run
    assert sum(len(g) for g in groups) == 20
    assert [e.ended_at for e in groups[-1]] == [503.0, 504.0, 505.0, 506.0, 507.0]
    assert select_noise_histories(entries, branch="main", chosen=chosen * 3) == []  # history mode: not needed
    assert select_noise_histories(entries[:2], branch="main", chosen=chosen) == []  # 2 runs show no noise


def _other_scenario(start: float) -> RunResult:
    """A run of another scenario, at a commit of its own (a data branch keeps one run per commit)."""
    run = recorded_run(endpoints=("GET /b",), start=start)
    return run.model_copy(update={"meta": run.meta.model_copy(update={"git_sha": f"{int(start):040d}"})})


def test_the_local_store_hands_single_mode_the_other_histories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(3):
        store.record(_other_scenario(1_000.0 + i))
    store.record(recorded_run(start=2_000.0))
    meta = recorded_run().meta
    history = store.history(scenario_key=meta.scenario_key, load_key=meta.load_key, branch="main", limit=20)
    assert len(history.runs) == 1
    assert [[r.meta.scenario_key for r in runs] for runs in history.others] == [
        [_other_scenario(0).meta.scenario_key] * 3
    ]


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, GitHubGateway]]:
    with FakeGitHub() as fake:
        fake.add_token("ghs_x", kind="app")
        fake.add_repo("acme/shop")
        fake.add_commit("acme/shop", files={"README.md": "x"}, branch="main")
        settings = GatewaySettings(seconds_between_writes=0, backoff_s=0.01)
        gateway = GitHubGateway(token="ghs_x", api_url=fake.url, repository="acme/shop", settings=settings)
        yield fake, gateway
        gateway.close()


def test_the_data_branch_reads_the_other_histories_with_one_request_per_run(
    github: tuple[FakeGitHub, GitHubGateway],
) -> None:
    fake, gateway = github
    store = DataBranchStore(gateway, branch="ci-perf-data", sleep=lambda _s: None)
    for i in range(3):
        store.record(_other_scenario(1_000.0 + i))
    store.record(recorded_run(start=2_000.0))
    meta = recorded_run().meta
    before = len(fake.requests_log)
    history = store.history(scenario_key=meta.scenario_key, load_key=meta.load_key, branch="main", limit=20)
    assert len(history.runs) == 1
    assert len(history.others) == 1
    assert len(history.others[0]) == 3
    # the ref, its commit and tree, the index, the baseline run, then one blob per run of the other scenario
    assert len(fake.requests_log) - before == 5 + 3
