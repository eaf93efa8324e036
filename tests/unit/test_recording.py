"""The collector's pure parts (``loadtest/plugins/recording.py``): other hosts, exceptions, merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_perf import sketches
from ci_perf.loadtest.plugins.recording import (
    MAX_EXCEPTION_KINDS,
    OTHER_EXCEPTIONS,
    ExceptionTally,
    Hosts,
    Merged,
    exception_key,
    frame_in,
    host_of,
)
from ci_perf.loadtest.protocol import BASE, HEAD
from ci_perf.results import CollectedEndpointWindow, TaskException

HOSTS = Hosts({HEAD: "http://127.0.0.1:8000", BASE: "https://base.test/"})


@pytest.mark.parametrize(
    ("url", "arm", "other"),
    [
        pytest.param("http://127.0.0.1:8000/api?x=1", HEAD, None, id="the-target"),
        pytest.param("http://127.0.0.1:8000", HEAD, None, id="the-target-bare"),
        pytest.param("HTTP://127.0.0.1:8000/a", HEAD, None, id="the-target-in-capitals"),
        pytest.param("http://127.0.0.1:9000/a", HEAD, "127.0.0.1:9000", id="another-port"),
        pytest.param("https://Example.COM:443/", HEAD, "example.com", id="default-port-left-out"),
        pytest.param("https://base.test/a", BASE, None, id="duet-base-is-its-arms-target"),
        pytest.param("https://base.test:443/a", BASE, None, id="duet-base-with-its-default-port"),
        pytest.param("http://127.0.0.1:8000/a", BASE, "127.0.0.1:8000", id="the-head-seen-from-the-base-arm"),
        pytest.param("/relative", HEAD, None, id="relative-unknown"),
        pytest.param(None, HEAD, None, id="no-url"),
        pytest.param("http://[::1]:8080/x", HEAD, "[::1]:8080", id="ipv6"),
    ],
)
def test_a_request_goes_to_another_host_only_when_its_host_differs_from_its_arms_target(
    url: str | None, arm: str, other: str | None
) -> None:
    assert HOSTS.other(url, arm) == other  # type: ignore[arg-type]


def test_a_port_that_merely_starts_like_the_targets_is_another_host() -> None:
    assert Hosts({HEAD: "http://127.0.0.1:800"}).other("http://127.0.0.1:8000/a", HEAD) == "127.0.0.1:8000"


def test_without_a_known_target_every_request_is_the_targets() -> None:
    assert Hosts({}).other("http://elsewhere.test/", HEAD) is None
    assert host_of("ftp://x/") is None
    assert host_of("http://x:notaport/") is None


def test_an_exception_is_placed_at_the_innermost_frame_in_a_locustfile(tmp_path: Path) -> None:
    locustfile = tmp_path / "perf" / "locustfile.py"
    locustfile.parent.mkdir()
    locustfile.write_text("")
    frames = [("/venv/locust/user/task.py", 513), (str(locustfile), 20), (str(locustfile), 31), ("/lib/json.py", 9)]
    assert frame_in(frames, [locustfile]) == "locustfile.py:31"
    assert frame_in(frames[:1], [locustfile]) is None


def test_exceptions_are_counted_by_type_message_and_place_most_frequent_first() -> None:
    tally = ExceptionTally()
    tally.add(exception_key(ValueError("bad\n  total"), [], []))
    for _ in range(3):
        tally.add(("KeyError", "'id'", "locustfile.py:4"))
    tally.add_all([TaskException(type="ValueError", message="bad total", count=2, where=None)])
    assert tally.export() == [
        TaskException(type="KeyError", message="'id'", count=3, where="locustfile.py:4"),
        TaskException(type="ValueError", message="bad total", count=3, where=None),
    ]
    assert tally.drain()
    assert tally.export() == []  # drained


def test_distinct_exceptions_beyond_the_cap_are_counted_together() -> None:
    tally = ExceptionTally()
    for number in range(MAX_EXCEPTION_KINDS + 5):
        tally.add(("ValueError", f"row {number}", None))
    exported = tally.export()
    assert len(exported) == MAX_EXCEPTION_KINDS + 1
    assert sum(e.count for e in exported) == MAX_EXCEPTION_KINDS + 5
    assert (exported[0].type, exported[0].count) == (OTHER_EXCEPTIONS[0], 5)


def test_windows_from_two_processes_merge_with_their_requests_in_flight() -> None:
    def part(latencies: list[float], in_flight: list[float]) -> CollectedEndpointWindow:
        return CollectedEndpointWindow(
            endpoint="GET /a",
            host="other.test",
            start=5.0,
            requests=len(latencies),
            failures=0,
            latency=sketches.of_values(latencies),
            in_flight_ms=in_flight,
            first_start=5.1,
            last_end=5.9,
        )

    merged = Merged()
    merged.add([part([1.0, 2.0], [1_500.0]), part([3.0], [20.0, 2_000.0])])
    (window,) = merged.windows()
    assert window.requests == 3
    assert window.latency.count == 3
    assert sorted(window.in_flight_ms) == [20.0, 1_500.0, 2_000.0]
    assert window.host == "other.test"
