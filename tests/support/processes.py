"""Which Locust processes a test's own run left alive, however busy the machine is with other Locusts.

A run's Locust (master and forked workers) lives in a session of its own (``runner._supervise``:
``start_new_session``), so once ``ci-perf`` is gone it is no child of the test any more: a look at
the test's process tree would miss exactly the processes left behind. A look at every Locust on
the host would count another test run's or a benchmark's. What does tell them apart: every process
of a run has ``CI_PERF_COLLECT_OUT`` in its environment, pointing into that run's out dir
(``protocol.PluginSettings.collect_out``), and each test gives its run an out dir of its own.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from ci_perf.loadtest.protocol import ENV_VARIABLES

COLLECT_OUT = ENV_VARIABLES["collect_out"]


def locust_left(out_dir: Path) -> list[int]:
    """The processes still alive of the run writing to ``out_dir`` (not other runs on the machine)."""
    out_dir = out_dir.resolve()
    left = []
    for process in psutil.process_iter():
        try:
            collect_out = process.environ().get(COLLECT_OUT)
            if collect_out and (Path(process.cwd()) / collect_out).resolve().is_relative_to(out_dir):
                left.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or another user's: not this run's
            continue
    return left


def end_locust_left(out_dir: Path) -> None:
    """Kill what ``locust_left`` finds, with each process's own group (a Locust master's workers)."""
    for pid in locust_left(out_dir):
        try:
            group = os.getpgid(pid)
            if group == os.getpgrp():  # never the test's own group: only the process itself
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:  # ended meanwhile, or its group with an earlier one
            continue
