"""Every request a locustfile sends is counted by ci-perf exactly as often as httpbin logged it."""

from __future__ import annotations

import pytest

from tests.compat.cases import LOAD_STYLES, Case, params
from tests.compat.conftest import RunOf


@pytest.mark.parametrize("case", params(LOAD_STYLES))
def test_ci_perf_counts_each_endpoint_exactly_as_httpbin_served_it(case: Case, single_run: RunOf) -> None:
    run = single_run(case)
    assert run.result is not None, run.stderr
    assert run.counted, "the run sent no request to the target"
    assert run.counted == run.served
    assert run.counted_other == run.served_other


@pytest.mark.parametrize("case", params(LOAD_STYLES))
def test_in_duet_mode_each_arm_counts_exactly_what_its_deployment_served(case: Case, duet_run: RunOf) -> None:
    run = duet_run(case)
    assert run.result is not None, run.stderr
    assert run.result["base"] is not None
    assert run.counted, "the run sent no request to the target"
    assert run.counted == run.served
    assert run.counted_base == run.served_base
