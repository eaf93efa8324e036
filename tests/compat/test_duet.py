"""Duet mode against two identical httpbin deployments, whatever the locustfile: no regression, and the
twins load both deployments alike."""

from __future__ import annotations

import pytest

from tests.compat.cases import LOAD_STYLES, Case, params
from tests.compat.conftest import RunOf


def regressions(report: dict[str, object]) -> list[str]:
    comparison = report["comparison"]
    assert isinstance(comparison, dict)
    found = []
    for endpoint in comparison["endpoints"]:
        for metric, compared in endpoint["metrics"].items():
            if compared["verdict"] == "regression":
                found.append(f"{endpoint['endpoint']} {metric}: {compared['delta_percent']}")
    return found


@pytest.mark.parametrize("case", params(LOAD_STYLES))
def test_two_identical_deployments_give_no_regression(case: Case, duet_run: RunOf) -> None:
    run = duet_run(case)
    assert run.report is not None, run.stderr
    assert run.report["comparison"]["mode"] == "duet"
    assert regressions(run.report) == []
    assert not [reason for reason in run.report["gate_reasons"] if "regression" in reason]


@pytest.mark.parametrize("case", params(LOAD_STYLES))
def test_twins_load_both_deployments_alike_and_the_run_is_reliable(case: Case, duet_run: RunOf) -> None:
    run = duet_run(case)
    assert run.result is not None, run.stderr
    # in lockstep: the k-th requests of a user and its twin start together; the end of the run may fall
    # between the two of a pair (one sent, the other never), at most once per user
    head, base = run.result["aggregate"]["requests"], run.result["base"]["aggregate"]["requests"]
    assert abs(head - base) <= case.users, (head, base)
    assert run.result["meta"]["reliable"], run.result["meta"]["unreliable_reasons"]
