"""The compatibility suite's servers: three httpbin instances under gunicorn, shared by the whole session.

``head`` is the target, ``base`` duet's base deployment (the same server: two identical deployments), ``other``
the second host some locustfiles call.
Each case reads only the access-log lines written during its own run (``Httpbin.offset``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compat.runs import Case, CaseRun, Servers, run_case
from tests.support.httpbin import start_httpbins

# the locustfiles are Locust's input, not tests (test_pytest_style.py is one for Locust's pytest loader)
collect_ignore = ["locustfiles"]


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    head, base, other = start_httpbins(tmp_path_factory.mktemp("httpbin"), workers=(2, 2, 1))
    yield Servers(head=head, base=base, other=other)
    for server in (head, base, other):
        server.stop()


RunOf = Callable[[Case], CaseRun]


@pytest.fixture(scope="session")
def single_run(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> RunOf:
    """A case's one run without a baseline target, shared by every test that looks at it."""
    return _cached(servers, tmp_path_factory, duet=False)


@pytest.fixture(scope="session")
def duet_run(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> RunOf:
    """A case's one duet run: head on ``servers.head``, base on ``servers.base``, both identical."""
    return _cached(servers, tmp_path_factory, duet=True)


def _cached(servers: Servers, tmp_path_factory: pytest.TempPathFactory, *, duet: bool) -> RunOf:
    runs: dict[Case, CaseRun] = {}

    def run_of(case: Case) -> CaseRun:
        if case not in runs:
            directory: Path = tmp_path_factory.mktemp(f"{'duet-' if duet else ''}{case.locustfile}")
            runs[case] = run_case(case, directory, servers, duet=duet)
        return runs[case]

    return run_of
