"""What the collector records, and how parts from several processes merge: pure, no Locust.

Each Locust process records into ``Cell`` objects (one per arm × endpoint × host × window); the master
(or the only process) merges them into ``Merged`` with exact sums. ``Hosts`` tells a request to the
target from one to another host; ``ExceptionTally`` counts the users' unhandled task exceptions by
type, message and place. Kept apart from ``collector.py`` so that it can be tested without importing
Locust (which monkey-patches the interpreter with gevent).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ci_perf import sketches
from ci_perf.loadtest.protocol import Arm, Progress
from ci_perf.results import OTHER_MESSAGES, CollectedEndpointWindow, CpuSample, ErrorCount, TaskException

MAX_MESSAGES_PER_CELL = 10
MAX_MESSAGE_CHARS = 300
MAX_EXCEPTION_KINDS = 50
OTHER_EXCEPTIONS = ("(other exceptions)", "further distinct exceptions are counted here", None)
PROGRESS_SPAN_S = 5.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


def failure_message(exception: BaseException | str) -> str:
    """One line of at most ``MAX_MESSAGE_CHARS``: ``Type: text`` for an exception."""
    text = exception if isinstance(exception, str) else f"{type(exception).__name__}: {exception}"
    text = " ".join(str(text).split())
    return text[:MAX_MESSAGE_CHARS]


def add_messages(into: Counter[str], messages: dict[str, int]) -> None:
    """Merge failure-message counts, keeping at most ``MAX_MESSAGES_PER_CELL`` distinct texts."""
    for message, count in messages.items():
        if message in into or len(into) < MAX_MESSAGES_PER_CELL:
            into[message] += count
        else:
            into[OTHER_MESSAGES] += count


class Cell:
    """One endpoint in one window, while it is being recorded: sparse DDSketch key counts."""

    __slots__ = (
        "counts",
        "failures",
        "first_start",
        "high",
        "in_flight",
        "last_end",
        "low",
        "messages",
        "requests",
        "total",
        "zeros",
    )

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.requests = 0
        self.failures = 0
        self.in_flight: list[float] = []  # the run ended while these were waiting (ms so far)
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.messages: Counter[str] = Counter()
        self.first_start = math.inf
        self.last_end = 0.0

    def export(self, arm: Arm, endpoint: str, start: float, host: str | None = None) -> CollectedEndpointWindow:
        return CollectedEndpointWindow(
            arm=arm,
            endpoint=endpoint,
            host=host,
            start=start,
            requests=self.requests,
            failures=self.failures,
            in_flight_ms=self.in_flight,
            latency=sketches.from_counts(self.counts, zeros=self.zeros, total=self.total, low=self.low, high=self.high),
            errors=error_counts(self.messages),  # in the order seen: merging keeps the first ten
            first_start=self.first_start,
            last_end=self.last_end,
        )


def error_counts(messages: dict[str, int]) -> list[ErrorCount]:
    return [ErrorCount(message=message, count=count) for message, count in messages.items()]


def merge_windows(have: CollectedEndpointWindow, part: CollectedEndpointWindow) -> CollectedEndpointWindow:
    """One cell from two sources (exact sums); the failure messages stay capped."""
    messages: Counter[str] = Counter({e.message: e.count for e in have.errors})
    add_messages(messages, {e.message: e.count for e in part.errors})
    return have.model_copy(
        update={
            "requests": have.requests + part.requests,
            "failures": have.failures + part.failures,
            "in_flight_ms": have.in_flight_ms + part.in_flight_ms,
            "latency": sketches.merge([have.latency, part.latency]),
            "errors": error_counts(messages),
            "first_start": min(have.first_start, part.first_start),
            "last_end": max(have.last_end, part.last_end),
        }
    )


class Merged:
    """Windows merged from every source (this process, every worker): exact sums."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str | None, float], CollectedEndpointWindow] = {}
        self.cpu: list[CpuSample] = []
        self.exceptions = ExceptionTally()

    def add(self, windows: Iterable[CollectedEndpointWindow]) -> None:
        for part in windows:
            key = (part.arm, part.endpoint, part.host, part.start)
            have = self.cells.get(key)
            self.cells[key] = part if have is None else merge_windows(have, part)

    def progress(self, *, now: float, started: float, run_time: float) -> Progress:
        recent_from = now - PROGRESS_SPAN_S
        total = failures = recent = 0
        recent_sketches = []
        for (_, _, _, start), cell in self.cells.items():
            total += cell.requests
            failures += cell.failures
            if start >= recent_from:
                recent += cell.requests
                recent_sketches.append(cell.latency)
        span = min(PROGRESS_SPAN_S, max(now - started, 1e-9))
        return Progress(
            elapsed=round(now - started, 1),
            total=run_time,
            requests=total,
            failures=failures,
            rps=round(recent / span, 1),
            p95_ms=sketches.quantile(sketches.merge(recent_sketches), 0.95),
        )

    def windows(self) -> list[CollectedEndpointWindow]:
        """Every cell, its failure messages most frequent first (the file's order)."""
        return [
            cell.model_copy(update={"errors": sorted(cell.errors, key=lambda e: (-e.count, e.message))})
            for cell in self.cells.values()
        ]


def host_of(url: str) -> str | None:
    """``host[:port]`` of an absolute http(s) URL, lower-case, the scheme's default port left out."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return host if port is None or port == _DEFAULT_PORTS[parts.scheme.lower()] else f"{host}:{port}"


class Hosts:
    """Which requests went to a host other than their arm's target (``--host``; duet: the base URL)."""

    def __init__(self, targets: dict[Arm, str | None]) -> None:
        prefixes = {arm: url.rstrip("/") for arm, url in targets.items() if url}
        self.hosts = {arm: host_of(url) for arm, url in prefixes.items()}
        # the usual case in one C call: the target's own URL (then a path, a query, a fragment, or nothing)
        self.own = {arm: tuple(prefix + end for end in "/?#") for arm, prefix in prefixes.items()}
        self.bare = set(prefixes.values())

    def other(self, url: str | None, arm: Arm) -> str | None:
        """The other host ``url`` went to, or ``None`` when it is the target (or unknown: a relative URL)."""
        own = self.own.get(arm)
        if not url or own is None or url.startswith(own) or url in self.bare:
            return None
        host = host_of(url)
        return None if host is None or host == self.hosts[arm] else host


def frame_in(frames: Sequence[tuple[str, int]], locustfiles: Iterable[Path]) -> str | None:
    """``file.py:LINE`` of the innermost frame (of ``(filename, line)`` pairs, outermost first) in a locustfile."""
    wanted = {path.resolve() for path in locustfiles}
    for filename, line in reversed(frames):
        path = Path(filename)
        if path.resolve() in wanted:
            return f"{path.name}:{line}"
    return None


ExceptionKey = tuple[str, str, str | None]  # type, message, where


class ExceptionTally:
    """Unhandled task exceptions counted by (type, message, where); at most ``MAX_EXCEPTION_KINDS`` kinds."""

    def __init__(self) -> None:
        self.counts: Counter[ExceptionKey] = Counter()

    def add(self, key: ExceptionKey, count: int = 1) -> None:
        if key not in self.counts and len(self.counts) >= MAX_EXCEPTION_KINDS:
            key = OTHER_EXCEPTIONS
        self.counts[key] += count

    def add_all(self, exceptions: Iterable[TaskException]) -> None:
        for exception in exceptions:
            self.add((exception.type, exception.message, exception.where), exception.count)

    def export(self) -> list[TaskException]:
        """Most frequent first (then by type and message, for a stable order)."""
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1], item[0][2] or ""))
        return [TaskException(type=t, message=m, count=c, where=w) for (t, m, w), c in ranked]

    def drain(self) -> list[TaskException]:
        exported = self.export()
        self.counts = Counter()
        return exported


def exception_key(
    exception: BaseException, frames: Sequence[tuple[str, int]], locustfiles: Iterable[Path]
) -> ExceptionKey:
    """How an unhandled task exception is counted: its type, its message (one line, capped), where it came from."""
    message = " ".join(str(exception).split())[:MAX_MESSAGE_CHARS]
    return type(exception).__name__, message, frame_in(frames, locustfiles)
