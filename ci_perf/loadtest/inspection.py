"""What the runner learns about the user's locustfile from inside Locust, and how it is told.

- ``plugins/probe.py`` (a subprocess with Locust imported, before the run) loads a locustfile the way
  Locust does and prints one ``PROBE`` line: a ``LocustfileReport`` with the user classes, the
  ``LoadTestShape``s (each sampled with a fake clock: ``ShapeSample``) and any error on import. The
  runner reads it (``locustfiles.probe_locustfile``).
- ``plugins/guard.py`` (in every run's ``-f``) prints a ``BAD_INPUT`` line when the locustfile cannot
  run as configured (a user class that raises in ``__init__`` or ``on_start``; a shape of its own
  that ci-perf did not prepare for): the runner ends the run at once and exits 2 with that sentence.
  A worker sends it to its master as a ``BAD_INPUT_TYPE`` message, and the master prints it.
- ``where_in`` names the line of the user's code that raised, for both.

Imported by Locust processes: it imports neither Locust nor the config.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from ci_perf.loadtest.plugins.recording import frame_in
from ci_perf.models import Frozen

PROBE = "CI_PERF_PROBE "  # a stdout line of the probe: this prefix, then a LocustfileReport as JSON
BAD_INPUT = "CI_PERF_BAD_INPUT "  # a stdout line: this prefix, then one sentence as a JSON string
BAD_INPUT_TYPE = "ci_perf_bad_input"  # worker → master: {"sentence": the sentence}
SAMPLE_CAP_S = 3600  # a shape is sampled for its first hour; one that runs longer is not followed to its end
_NOT_USER_CODE = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(__file__).parents[1]), "<"})


class ShapeSample(Frozen):
    """A ``LoadTestShape``'s ``tick()`` asked once a second with a fake run time."""

    name: str
    ticks: list[tuple[float, int, float]] = []  # (second, users, spawn rate) where the answer changed
    ends_at: float | None = None  # the first second it answered None; None: not within SAMPLE_CAP_S
    error: str | None = None  # why it could not be asked without a running test


class LocustfileReport(Frozen):
    users: list[str] = []
    shapes: list[ShapeSample] = []  # Locust runs the first
    pytest_style: bool = False  # the users are pytest-style test functions
    error: str | None = None  # importing it failed: one sentence with the exception and its line


def where_in(tb: TracebackType | None, files: Collection[Path]) -> str | None:
    """The innermost frame in one of ``files`` as ``locustfile.py:12`` (as the collector names a task
    exception's place: ``recording.frame_in``).

    Without one, the innermost frame of the user's other code (not the standard library, an
    installed package or ci-perf); ``None`` when there is none.
    """
    frames = [(frame.f_code.co_filename, line) for frame, line in traceback.walk_tb(tb)]
    own = [(f, line) for f, line in frames if not f.startswith(_NOT_USER_CODE) and "site-packages" not in f]
    return frame_in(frames, files) or (f"{Path(own[-1][0]).name}:{own[-1][1]}" if own else None)


def describe(exc: BaseException, *, where: str | None) -> str:
    """``KeyError: 'API_HOST' (locustfile.py:12)``: one line, capped."""
    message = " ".join(str(exc).split())[:300]
    text = type(exc).__name__ + (f": {message}" if message else "")
    return text + (f" ({where})" if where else "")


def bad_input_line(sentence: str) -> str:
    return BAD_INPUT + json.dumps(sentence)


def parse_bad_input(line: str) -> str | None:
    """The sentence a ``BAD_INPUT`` line carries; ``None`` for any other line."""
    if not line.startswith(BAD_INPUT):
        return None
    try:
        sentence = json.loads(line[len(BAD_INPUT) :])
    except json.JSONDecodeError:
        return None
    return sentence if isinstance(sentence, str) else None
