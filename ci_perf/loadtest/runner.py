"""Runs Locust as a child process and brings back what the collector measured.

Locust lives in its own process (``import locust`` monkey-patches the whole
interpreter with gevent) and in its own process group, so that on exit, on a
timeout or on Ctrl-C one ``killpg`` ends the master and every worker: no
orphan ever joins a later run. Master sockets get free loopback ports.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from ci_perf.config import Config, LoadSettings, format_duration, unset_header_variables
from ci_perf.errors import ConfigError, EnvironmentFailure, InputError
from ci_perf.loadtest.inspection import SAMPLE_CAP_S, LocustfileReport, parse_bad_input
from ci_perf.loadtest.locust_config import check_locust_settings
from ci_perf.loadtest.locustfiles import UserShape, check_locustfile, might_have_a_shape, probe_locustfile, user_shape
from ci_perf.loadtest.protocol import Marker, PluginEndpoint, PluginSettings, marker_in, parse_progress
from ci_perf.results import CollectedRun

PLUGINS = Path(__file__).with_name("plugins")
COLLECTOR = PLUGINS / "collector.py"
GUARD = PLUGINS / "guard.py"
ZERO_CODE = PLUGINS / "zero_code.py"
DUET = PLUGINS / "duet.py"
SHAPE = PLUGINS / "shape.py"
OPEN_MODEL = PLUGINS / "open_model.py"
WRITTEN_GRACE_S = 0.5  # once the result is on disk, Locust's own shutdown (~2 s) is not worth waiting for
STARTUP_GRACE_S = 60.0
KILL_GRACE_S = 5.0
# the job's credentials: the locustfile is the pull request's code and never sees them
SECRET_VARIABLES = (
    *("GITHUB_TOKEN", "INPUT_GITHUB_TOKEN", "GH_TOKEN"),
    *("ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL"),
)


@dataclass(frozen=True)
class LoadRun:
    load: LoadSettings  # as it ran: a locustfile's own shape sets the duration and users (``shaped_load``)
    collected: CollectedRun
    collected_path: Path
    log_path: Path
    wall_s: float


ProgressSink = Callable[[Mapping[str, Any]], None]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Checked:
    """What the checks before the run found in the locustfile (``None``: not probed)."""

    report: LocustfileReport | None = None
    user_shape: UserShape | None = None


def check_run(config: Config, *, extra_args: Sequence[str], environ: Mapping[str, str], probe: bool = False) -> Checked:
    """Everything about the run's input that can be refused before the target is even polled (exit 2).

    Locust's own settings (flags after ``--``, ``LOCUST_*`` variables, its config files), the
    locustfile's syntax and, when it may define one (or ``probe``), its ``LoadTestShape``: honoured
    whole with ``profile: load``, refused with any other.
    """
    environ = environ or os.environ  # as the child gets it (run_locust)
    check_locust_settings(extra_args, environ=environ, cwd=Path.cwd())
    if not config.locustfile:
        return Checked()
    path = Path(config.locustfile)
    source = check_locustfile(path)
    if not (probe or might_have_a_shape(source)):
        return Checked()
    report = probe_locustfile(path, env=public_environment(environ))
    return Checked(report=report, user_shape=user_shape(config.load, report))


def shaped_load(load: LoadSettings, shape: UserShape | None) -> LoadSettings:
    """The load as it runs: a locustfile's shape sets the duration (its length) and the users (its peak)."""
    if shape is None:
        return load
    update: dict[str, object] = {} if shape.length_s is None else {"duration": shape.length_s}
    if shape.peak_users is not None:
        update["users"] = shape.peak_users
    return load.model_copy(update=update)


def check_header_variables(config: Config, environ: Mapping[str, str], *, source: Path | None = None) -> None:
    """Every ``${NAME}`` in the endpoints' headers is set for Locust (never a withheld token), or exit 2."""
    unset = unset_header_variables(config.endpoints or [], environ, withheld=SECRET_VARIABLES)
    if unset:
        raise ConfigError(f"{source}: {unset}" if source else unset)


def locust_files(config: Config) -> list[str]:
    """What ``-f`` loads: our collector, the plugins the config needs, the users (theirs, watched, or ours)."""
    load = config.load
    files = [COLLECTOR]
    if config.gate.comparison.baseline_target:
        files.append(DUET)
    if load.stage_plan() is not None and not load.open_model:
        files.append(SHAPE)
    if config.locustfile:
        files.append(GUARD)  # pytest-style files, users that cannot start, a shape of its own
    users = OPEN_MODEL if load.open_model else ZERO_CODE
    return [*map(str, files), config.locustfile or str(users)]


def locust_command(config: Config, *, target: str, extra_args: Sequence[str]) -> list[str]:
    load = config.load
    processes = load.process_count(os.cpu_count() or 1)
    spawn_rate = max(load.spawn_rate, load.users) if load.open_model else load.spawn_rate  # the pool at once
    command = [
        sys.executable, "-m", "locust",
        "-f", ",".join(locust_files(config)),
        "--headless", "--only-summary",
        "--host", target,
        "--users", str(load.users),
        "--spawn-rate", str(spawn_rate),
        "--stop-timeout", str(math.ceil(load.stop_timeout)),
        "--exit-code-on-error", "0",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if load.workers:
        command += [
            "--master", "--expect-workers", str(load.workers),
            "--expect-workers-max-wait", str(math.ceil(load.worker_timeout)),
            "--master-bind-host", load.master_host, "--master-bind-port", str(load.master_port),
        ]  # fmt: skip
    elif processes > 1:
        port = free_port()
        command += [
            "--processes", str(processes),
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--master-host", "127.0.0.1", "--master-port", str(port),
        ]  # fmt: skip
    return command + list(extra_args)


def worker_command(config: Config, *, master: str, port: int) -> list[str]:
    """How an external worker joins: the same files, ``--worker`` (``ci-perf worker`` prints it)."""
    return [
        sys.executable, "-m", "locust", "-f", ",".join(locust_files(config)),
        "--worker", "--master-host", master, "--master-port", str(port),
    ]  # fmt: skip


def plugin_settings(config: Config, *, collect_out: Path, progress: bool, follow_shape: bool = False) -> PluginSettings:
    """What the plugins inside Locust are told (``protocol.PluginSettings``).

    ``follow_shape``: the locustfile's own shape ends the run, so the collector runs no clock (``run_time`` 0).
    """
    load = config.load
    plan = load.stage_plan()
    return PluginSettings(
        collect_out=collect_out,
        window_s=load.window_seconds(),
        run_time=0.0 if follow_shape else load.duration,
        progress=progress,
        think_time=load.think_time,
        endpoints=[PluginEndpoint.model_validate(e.model_dump()) for e in config.endpoints or []],
        baseline_target=config.gate.comparison.baseline_target,
        stages=plan if plan is not None and not load.open_model else None,
        arrival=plan if plan is not None and load.open_model else None,
        spawn_rate=load.spawn_rate,
        processes=max(load.workers, load.process_count(os.cpu_count() or 1)),
        break_on=config.break_limits() if load.profile == "breakpoint" else None,
    )


def public_environment(base: Mapping[str, str]) -> dict[str, str]:
    """What the locustfile's processes may see of ours: everything but a token (it is the pull request's code)."""
    env = {k: v for k, v in base.items() if k not in SECRET_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def child_environment(
    config: Config, *, collect_out: Path, progress: bool, base: Mapping[str, str], follow_shape: bool = False
) -> dict[str, str]:
    """The child's environment: ours plus the plugins' settings, minus any token.

    The locustfile is the pull request's code; it never sees the GitHub token.
    """
    check_header_variables(config, base)
    env = public_environment(base)
    settings = plugin_settings(config, collect_out=collect_out, progress=progress, follow_shape=follow_shape)
    env.update(settings.to_env())
    return env


def run_locust(
    config: Config,
    *,
    target: str,
    out_dir: Path,
    extra_args: Sequence[str] = (),
    on_progress: ProgressSink | None = None,
    environ: Mapping[str, str] | None = None,
    user_shape: UserShape | None = None,
) -> LoadRun:
    """Run one load test and return the collector's merged windows.

    The caller checks the input first (``check_run``, which also finds ``user_shape``: the
    locustfile's own shape, followed to its end). Raises ``InputError`` when Locust refuses the
    locustfile or flags before the test starts, or the locustfile cannot run (a user class that raises
    in ``__init__``/``on_start``: at once); ``EnvironmentFailure`` when Locust dies or overruns.
    """
    config = config.model_copy(update={"load": shaped_load(config.load, user_shape)})
    out_dir.mkdir(parents=True, exist_ok=True)
    collect_out = out_dir / "collected.json"
    collect_out.unlink(missing_ok=True)
    log_path = out_dir / "locust.log"
    command = locust_command(config, target=target, extra_args=extra_args)
    env = child_environment(
        config,
        collect_out=collect_out,
        progress=on_progress is not None,
        base=environ or os.environ,
        follow_shape=user_shape is not None,
    )
    deadline_s = _deadline_s(config.load, user_shape)
    began = time.monotonic()
    with log_path.open("w", encoding="utf-8", buffering=1) as log:  # line-buffered: tail -f works
        try:
            output, returncode, timed_out = _supervise(
                command, env=env, log=log, deadline_s=deadline_s, on_progress=on_progress
            )
        except KeyboardInterrupt:
            raise KeyboardInterrupt("Locust was stopped") from None  # the group is gone (cli says so)
    wall_s = time.monotonic() - began
    if output.bad_input is not None:
        raise InputError(output.bad_input)
    if not output.started:
        raise _not_started(config, log_path=log_path)
    if timed_out:
        raise EnvironmentFailure(f"Locust ran past {deadline_s:.0f}s and was stopped; see {log_path}")
    collected = _read_collected(collect_out, returncode=returncode, log_path=log_path)
    return LoadRun(load=config.load, collected=collected, collected_path=collect_out, log_path=log_path, wall_s=wall_s)


def _deadline_s(load: LoadSettings, shape: UserShape | None) -> float:
    """How long Locust may take in all: the run (a user shape's, with room for its ramps), start-up, the stop."""
    length = load.duration
    if shape is not None:  # Locust waits for each ramp before asking the shape again: it may run long
        length = SAMPLE_CAP_S if shape.length_s is None else 2 * shape.length_s
    waiting_s = load.worker_timeout if load.workers else 0.0
    return length + load.stop_timeout + STARTUP_GRACE_S + 60 + waiting_s


def _not_started(config: Config, *, log_path: Path) -> InputError | EnvironmentFailure:
    """Why the test never began: missing external workers, or Locust refused the locustfile or flags."""
    load = config.load
    if load.workers:
        return EnvironmentFailure(
            f"the Locust master waited {format_duration(load.worker_timeout)} for {load.workers} worker(s) on "
            f"{load.master_host}:{load.master_port} and the test did not start ({_last_error(log_path)}); start "
            "the workers (`ci-perf worker`), set load.master_host: 0.0.0.0 for workers on other machines, or "
            "raise load.worker_timeout"
        )
    return InputError(f"Locust did not start the test: {_last_error(log_path)} (full log: {log_path})")


def _read_collected(path: Path, *, returncode: int | None, log_path: Path) -> CollectedRun:
    if not path.is_file():
        raise EnvironmentFailure(f"Locust exited (code {returncode}) without writing measurements; see {log_path}")
    try:
        return CollectedRun.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise EnvironmentFailure(f"the collector wrote an unreadable file {path}: {exc.errors()[0]['msg']}") from exc


@dataclass
class _Output:
    """The child's stdout as it arrives: markers noted, progress passed on, everything else logged."""

    log: TextIO
    on_progress: ProgressSink | None
    started: bool = False
    end_by: float | None = None  # once the collector's file is written: when to stop waiting for Locust
    bad_input: str | None = None  # guard.py: the locustfile cannot run (the run ends at once)

    def take(self, line: str) -> None:
        bad_input = parse_bad_input(line)
        if bad_input is not None:
            self.log.write(f"ci-perf: {bad_input}\n")
            if self.bad_input is None:
                self.bad_input, self.end_by = bad_input, time.monotonic()
            return
        progress = parse_progress(line)
        if progress is not None:
            if self.on_progress is not None:
                self.on_progress(progress.model_dump())
            return
        marker = marker_in(line)
        if marker is Marker.STARTED:
            self.started = True
        elif marker is Marker.WRITTEN:
            self.end_by = time.monotonic() + WRITTEN_GRACE_S
        else:
            self.log.write(line)


def _supervise(
    command: list[str],
    *,
    env: dict[str, str],
    log: TextIO,
    deadline_s: float,
    on_progress: ProgressSink | None,
) -> tuple[_Output, int | None, bool]:
    """Run the child in its own group; return (what it said, exit code, timed out)."""
    child = subprocess.Popen(  # noqa: S603 - the command is built from our own validated settings
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True)
    reader.start()
    output = _Output(log=log, on_progress=on_progress)
    try:
        timed_out = _follow(child, lines, output=output, deadline=time.monotonic() + deadline_s)
        returncode = None if timed_out else child.wait(timeout=KILL_GRACE_S)
    except BaseException:
        _kill_group(child)
        raise
    finally:
        _kill_group(child)
        reader.join(timeout=KILL_GRACE_S)  # the group is gone: the pipe is at its end
        if child.stdout is not None:
            child.stdout.close()
    return output, returncode, timed_out


def _follow(child: subprocess.Popen[str], lines: queue.Queue[str | None], *, output: _Output, deadline: float) -> bool:
    """Read the child's output to its end, ending the group when it is done; True if the deadline came first."""
    group_ended = False
    while True:
        if not group_ended:
            group_ended = _end_group_when_done(child, end_by=output.end_by)
        wait = 0.05 if output.end_by is not None else 1.0
        try:
            line = lines.get(timeout=max(0.05, min(wait, deadline - time.monotonic())))
        except queue.Empty:
            if time.monotonic() > deadline:
                _kill_group(child)
                return True
            continue
        if line is None:
            return False
        output.take(line)


def _end_group_when_done(child: subprocess.Popen[str], *, end_by: float | None) -> bool:
    """End the process group once the master exited or the collector's file is written; True if ended."""
    if child.poll() is not None:
        _kill_group(child)  # workers outliving their master would keep the pipe open
        return True
    if end_by is not None and time.monotonic() > end_by:
        _kill_group(child, at_once=True)  # the collector's file is on disk: nothing else is needed from Locust
        return True
    return False


def _pump(stream: TextIO | None, lines: queue.Queue[str | None]) -> None:
    if stream is not None:
        with contextlib.suppress(ValueError, OSError):  # closed under us after a timed-out join
            for line in stream:
                lines.put(line)
    lines.put(None)


def _kill_group(child: subprocess.Popen[str], *, at_once: bool = False) -> None:
    """End the child's whole process group: TERM, a grace period, then KILL (or KILL at once)."""
    if not at_once:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=KILL_GRACE_S)
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _last_error(log_path: Path) -> str:
    """The most telling line of a failed start: Locust's own error, or a traceback's last line."""
    lines = [
        line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()
    ]
    if any("No User class found" in line for line in lines):
        return (
            "the locustfile defines no User class; add one deriving from HttpUser or FastHttpUser "
            "(or pytest-style test_ functions)"
        )
    for line in reversed(lines):
        if line.startswith(("error:", "locust: error:")) or "Error" in line.split(":", 1)[0]:
            return line
    return lines[-1] if lines else "it printed nothing"
