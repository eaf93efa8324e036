"""Confirm before blocking (issue 13, item 3): a candidate regression is re-run before it may gate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ci_perf.analysis import stats
from ci_perf.analysis.compare import ComparisonReport, EndpointComparison, MetricComparison, compare_runs
from ci_perf.analysis.confirm import ConfirmRun, candidates, confirm, confirm_reruns, rerun_path, wants_reruns
from ci_perf.analysis.judge import judge
from ci_perf.config import Comparison, Gate, PerformanceBudget
from ci_perf.errors import InputError
from ci_perf.pipeline import read_reruns, rerun_environment, rerun_to_confirm
from ci_perf.report import render
from ci_perf.results import History, RunResult, save_result
from tests.support.runs import noisy_history, two_endpoint_run

pytestmark = pytest.mark.unit

SETTINGS = Comparison()
GATE = Gate(performance_budget=PerformanceBudget(default_error_rate_percent=None), comparison=SETTINGS)
BASELINE = noisy_history(10, cv=0.03)


def _run(slow: float, *, scale: float = 1.0, index: int = 0) -> RunResult:
    return two_endpoint_run(scale, slow=slow, start=20_000.0 + 100 * index)


def test_a_run_like_its_baseline_has_no_candidate_and_is_not_re_run() -> None:
    current = _run(1.0)
    first = compare_runs(current, BASELINE, settings=SETTINGS)
    assert candidates(first, SETTINGS, extra_runs=2) == []
    assert not wants_reruns(first, current, BASELINE, SETTINGS)


def test_a_regression_is_a_candidate_and_confirm_runs_zero_re_runs_nothing() -> None:
    current = _run(1.25)
    first = compare_runs(current, BASELINE, settings=SETTINGS)
    assert ("GET /slow", "p95") in set(candidates(first, SETTINGS, extra_runs=2))
    off = SETTINGS.model_copy(update={"confirm_runs": 0})
    assert not wants_reruns(first, current, BASELINE, off)
    assert candidates(first, off, extra_runs=0) == []


def test_a_grey_zone_result_that_re_runs_like_it_would_confirm_is_a_candidate() -> None:
    """+7 %: not significant on one run (adjusted p ≈ 0.03), a candidate for three (√3 × its pivot)."""
    current = _run(1.07)
    first = compare_runs(current, BASELINE, settings=SETTINGS)
    slow_p95 = first.for_endpoint("GET /slow")
    assert slow_p95 is not None
    assert slow_p95.metrics["p95"].verdict != "regression"
    assert ("GET /slow", "p95") in set(candidates(first, SETTINGS, extra_runs=2))


def test_a_regression_every_re_run_repeats_is_confirmed_and_fails_the_gate() -> None:
    current, reruns = _run(1.25), [_run(1.25, index=i) for i in (1, 2)]
    judgement = judge(GATE, current, history=History(runs=BASELINE), reruns=reruns)
    report = judgement.report
    assert judgement.exit_code == 1
    assert report.confirmation is not None
    confirmed = {(t.endpoint, t.metric) for t in report.confirmation.confirmed}
    assert ("GET /slow", "p95") in confirmed
    assert [r.result_path for r in report.confirmation.runs] == [
        "result.json",
        "confirm-1/result.json",
        "confirm-2/result.json",
    ]
    slow = next(t for t in report.confirmation.tests if (t.endpoint, t.metric) == ("GET /slow", "p95"))
    assert len(slow.runs) == 3
    assert slow.ci_low is not None
    assert slow.ci_low > 5
    assert "GET /slow" in report.headline


def test_a_regression_a_re_run_does_not_repeat_is_inconclusive_and_does_not_gate() -> None:
    current, reruns = _run(1.25), [_run(1.0, scale=0.97, index=i) for i in (1, 2)]
    judgement = judge(GATE, current, history=History(runs=BASELINE), reruns=reruns)
    report = judgement.report
    assert judgement.exit_code == 0
    assert report.regressions == []
    assert report.confirmation is not None
    slow = next(t for t in report.confirmation.tests if (t.endpoint, t.metric) == ("GET /slow", "p95"))
    assert not slow.confirmed
    assert slow.why.startswith("not confirmed: re-run 1, re-run 2 did not get worse")
    row = report.comparison.for_endpoint("GET /slow") if report.comparison else None
    assert row is not None
    assert row.metrics["p95"].verdict == "inconclusive"
    assert row.metrics["p95"].note == slow.why


def test_a_change_every_run_repeats_is_confirmed_when_its_pooled_estimate_clears_the_minimum() -> None:
    """+8 % in all three runs: the pooled estimate is beyond +5 % and significant, though the pooled
    interval still reaches below +5 % (the interval rule, before issue 13's change, left it unconfirmed)."""
    current, reruns = _run(1.08), [_run(1.08, index=i) for i in (1, 2)]
    judgement = judge(GATE, current, history=History(runs=BASELINE), reruns=reruns)
    assert judgement.report.confirmation is not None
    slow = next(t for t in judgement.report.confirmation.tests if (t.endpoint, t.metric) == ("GET /slow", "p95"))
    assert slow.ci_low is not None
    assert slow.effect is not None
    assert slow.ci_low < 5 < slow.effect
    assert slow.confirmed
    assert judgement.exit_code == 1


def test_re_runs_that_lean_worse_by_less_than_the_minimum_do_not_confirm() -> None:
    current, reruns = _run(1.25), [_run(1.03, index=i) for i in (1, 2)]
    judgement = judge(GATE, current, history=History(runs=BASELINE), reruns=reruns)
    assert judgement.exit_code == 0
    assert judgement.report.confirmation is not None
    slow = next(t for t in judgement.report.confirmation.tests if (t.endpoint, t.metric) == ("GET /slow", "p95"))
    assert slow.why.startswith("not confirmed: the re-runs alone do not show it")


def test_an_unreliable_re_run_confirms_nothing() -> None:
    current = _run(1.25)
    saturated = _run(1.25, index=1).model_copy(deep=True)
    saturated = saturated.model_copy(
        update={"meta": saturated.meta.model_copy(update={"reliable": False, "unreliable_reasons": ["CPU"]})}
    )
    judgement = judge(GATE, current, history=History(runs=BASELINE), reruns=[saturated, _run(1.25, index=2)])
    assert judgement.exit_code == 0
    assert judgement.report.confirmation is not None
    assert all("re-run 1 was unreliable (CPU)" in t.why for t in judgement.report.confirmation.tests)


def test_duet_re_runs_are_judged_against_their_own_base_arm() -> None:
    from ci_perf.simulate import duet_run

    runs = [duet_run(effect=0.25, hog=False, seed=seed) for seed in (1, 2, 3)]
    first = compare_runs(runs[0], [], settings=SETTINGS)
    assert wants_reruns(first, runs[0], [], SETTINGS)
    final, confirmation = confirm_reruns(first, runs[0], runs[1:], baseline=[], settings=SETTINGS)
    assert confirmation.confirmed
    assert final.mode == "duet"


def test_the_report_shows_each_run_and_the_pooled_verdict() -> None:
    current, reruns = _run(1.25), [_run(1.0, scale=0.97, index=i) for i in (1, 2)]
    rendered = render(judge(GATE, current, history=History(runs=BASELINE), reruns=reruns).report)
    assert "### Confirmation: 0 of" in rendered.markdown
    assert "| run 1 | re-run 1 | re-run 2 | pooled [95 % CI] |" in rendered.markdown
    assert "<code>confirm-2/result.json</code>" in rendered.markdown
    assert "candidate regressions were not confirmed" in rendered.markdown
    assert "Budget checks are fixed limits on run 1 and are not re-run" in rendered.markdown
    assert "not confirmed  GET /slow p95: run 1 +" in rendered.terminal


class _Reruns:
    """Stands in for the load: records which re-runs were asked for, returns prepared runs."""

    def __init__(self, runs: list[RunResult]) -> None:
        self.runs = runs
        self.asked: list[int] = []

    def __call__(self, index: int) -> RunResult:
        self.asked.append(index)
        return self.runs[index - 1]


def test_the_pipeline_re_runs_a_candidate_confirm_runs_times() -> None:
    from ci_perf.config import Config

    config = Config(target="http://127.0.0.1:1", endpoints=["GET /slow"], gate=GATE)
    rerun = _Reruns([_run(1.25, index=i) for i in (1, 2)])
    reruns = rerun_to_confirm(config, _run(1.25), History(runs=BASELINE), rerun=rerun, echo=None)
    assert rerun.asked == [1, 2]
    assert len(reruns) == 2
    quiet = _Reruns([])
    assert rerun_to_confirm(config, _run(1.0), History(runs=BASELINE), rerun=quiet, echo=None) == []
    assert quiet.asked == []


def test_re_runs_are_read_back_beside_their_result_and_must_be_of_the_same_commit(tmp_path: Path) -> None:
    current = _run(1.25)
    for index in (1, 2):
        save_result(_run(1.25, index=index), tmp_path / rerun_path(index))
    assert len(read_reruns(tmp_path, current, limit=2)) == 2
    assert len(read_reruns(tmp_path, current, limit=1)) == 1
    other = _run(1.25, index=3)
    other = other.model_copy(update={"meta": other.meta.model_copy(update={"git_sha": "a" * 40})})
    save_result(other, tmp_path / rerun_path(1))
    with pytest.raises(InputError, match=r"confirm-1/result\.json: a re-run of another commit"):
        read_reruns(tmp_path, current, limit=2)


def test_duet_re_runs_alternate_which_arm_of_each_pair_starts_first() -> None:
    from ci_perf.config import Config

    duet = Config(target="http://127.0.0.1:1", endpoints=["GET /slow"], gate=GATE)
    duet = duet.model_copy(
        update={
            "gate": GATE.model_copy(update={"comparison": SETTINGS.model_copy(update={"baseline_target": "http://b"})})
        }
    )
    orders = [rerun_environment(duet, {"PATH": "/bin"}, i).get("CI_PERF_DUET_FIRST") for i in (1, 2, 3)]
    assert orders == ["base", "head", "base"]
    plain = Config(target="http://127.0.0.1:1", endpoints=["GET /slow"], gate=GATE)
    assert "CI_PERF_DUET_FIRST" not in rerun_environment(plain, {"PATH": "/bin"}, 1)


@pytest.mark.parametrize("value", [-1, 11])
def test_confirm_runs_is_bounded(value: int) -> None:
    with pytest.raises(ValueError, match="confirm_runs"):
        Comparison(confirm_runs=value)


def _duet_report(effect: float, *, se: float, df: float) -> ComparisonReport:
    metric = MetricComparison(
        metric="p95",
        baseline=40.0,
        current=40.0 * (1 + effect / 100),
        delta_percent=effect,
        baseline_runs=1,
        verdict="inconclusive",
        effect=effect,
        ci_low=100 * math.expm1(math.log1p(effect / 100) - stats.t_quantile(0.975, df) * se),
        ci_high=100 * math.expm1(math.log1p(effect / 100) + stats.t_quantile(0.975, df) * se),
        p_value=stats.one_sided(math.log1p(effect / 100) / se, df)[0],
        se=se,
        df=df,
    )
    endpoint = EndpointComparison(endpoint="GET /x", metrics={"p95": metric}, p95_history=[])
    return ComparisonReport(
        mode="duet", mode_note="", baseline_runs=1, matched_on="scenario", endpoints=[endpoint], history=[]
    )


def test_duet_runs_on_few_degrees_of_freedom_pool_their_own_se_not_one_read_off_a_t_interval() -> None:
    """Three duet runs at +12 %, each a t on 3 df (its interval 3.18 se wide each side): pooled, the se is
    se / √3 on about 9 df. Read off the intervals as if normal, each se would be 1.6× too large."""
    se, df = 0.03, 3.0
    reports = [_duet_report(12.0, se=se, df=df) for _ in range(3)]
    runs = [
        ConfirmRun(label=label, result_path="r.json", reliable=True, unreliable_reasons=[], order="")
        for label in ("run 1", "re-run 1", "re-run 2")
    ]
    _, confirmation = confirm(reports[0], reports[1:], settings=SETTINGS, runs=runs)
    (test,) = confirmation.tests
    assert test.confirmed
    assert test.ci_low is not None
    assert test.ci_high is not None
    half_width = (math.log1p(test.ci_high / 100) - math.log1p(test.ci_low / 100)) / 2
    assert half_width == pytest.approx(stats.t_quantile(0.975, 3 * df) * se / math.sqrt(3), rel=1e-6)
