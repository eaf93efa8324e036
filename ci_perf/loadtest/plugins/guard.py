"""Watches the user's locustfile from inside Locust; the runner loads it in every run's ``-f``.

- Pytest-style locustfiles load as with plain ``locust`` (``pytest_style.install``, at import: before
  Locust looks for them).
- A User class whose ``__init__`` or ``on_start`` raises can run no user at all: the first such
  exception is reported at once, with its type, message and locustfile line, as an
  ``inspection.BAD_INPUT`` line (a worker sends it to its master, which prints it). The runner ends
  the run on it and exits 2, instead of measuring nothing for the whole duration.
- A ``LoadTestShape`` of the locustfile's own runs whole when ci-perf prepared for it (the runner
  found it before the run: no ``stages``, no run clock, ``run_time`` 0); the collector then ends the
  run when the shape does. Any other user shape is reported the same way: it would be ignored
  (ci-perf's profile shape comes first) or cut short (ci-perf's clock).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.exception import StopTest, StopUser
from locust.runners import MasterRunner, WorkerRunner

from ci_perf.loadtest.inspection import BAD_INPUT_TYPE, bad_input_line, describe, where_in
from ci_perf.loadtest.plugins import pytest_style
from ci_perf.loadtest.protocol import PluginSettings

pytest_style.install()

Report = Callable[[str], None]
_WATCHED = "_ci_perf_watched"
_REPORTED = "_ci_perf_reported"


def _reporter(environment: Environment) -> Report:
    """Print the sentence (master or single process), or send it to the master (worker); once per process."""
    sent = False

    def report(sentence: str) -> None:
        nonlocal sent
        if sent:
            return
        sent = True
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(BAD_INPUT_TYPE, {"sentence": sentence})
        else:
            print(bad_input_line(sentence), flush=True)

    return report


def _user_files(environment: Environment) -> set[Path]:
    files = environment.parsed_locustfiles or []
    return {Path(f).resolve() for f in files if not pytest_style.is_ci_perf_file(f)}


def _watch(user_class: type, phase: str, *, report: Report, files: set[Path]) -> None:
    """Wrap ``user_class.<phase>`` so that its first exception is reported (then raised on, as before)."""
    original = getattr(user_class, phase)
    if getattr(original, _WATCHED, False):  # inherited from a class already watched
        return

    @functools.wraps(original)
    def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except (StopUser, StopTest):
            raise
        except Exception as exc:
            if not getattr(exc, _REPORTED, False):
                setattr(exc, _REPORTED, True)
                where = where_in(exc.__traceback__, files)
                report(
                    f"user class {type(self).__name__} raised {describe(exc, where=where)} in {phase}, so none of "
                    "its users can run; ci-perf stopped the run at once: fix the locustfile, or what it reads "
                    "(environment variables, files)"
                )
            raise

    setattr(watched, _WATCHED, True)
    setattr(user_class, phase, watched)


def _unprepared_shape(environment: Environment, settings: PluginSettings) -> str | None:
    """The sentence for a user shape that ci-perf did not prepare for; ``None`` when there is none."""
    shapes = [s for s in (environment.available_shape_classes or {}).values() if not getattr(s, "ci_perf", False)]
    if not shapes:
        return None
    name = type(shapes[0]).__name__
    if settings.stages is not None or settings.arrival is not None:
        return (
            f"the locustfile's LoadTestShape {name} and ci-perf's load profile both set the load; use "
            f"profile: load without stages or arrival_rate to run {name} whole, or remove {name} and describe "
            "its steps in load.stages (`ci-perf validate` prints them)"
        )
    if settings.run_time > 0:
        return (
            f"the LoadTestShape {name} comes from a module the locustfile imports, where ci-perf does not look "
            f"before the run, so its end would not end the run; subclass it in the locustfile "
            f"(`class RunShape({name}): pass`) so that ci-perf follows it whole, or remove it"
        )
    return None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    report = _reporter(environment)
    files = _user_files(environment)
    for user_class in environment.user_classes:
        for phase in ("__init__", "on_start"):
            _watch(user_class, phase, report=report, files=files)
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(BAD_INPUT_TYPE, lambda msg, **_: report(str(msg.data["sentence"])))
    if not isinstance(runner, WorkerRunner):
        sentence = _unprepared_shape(environment, PluginSettings.from_env(os.environ))
        if sentence is not None:
            report(sentence)
