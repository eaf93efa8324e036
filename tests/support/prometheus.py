"""A real Prometheus and Pushgateway on free loopback ports, started and stopped by the tests.

Issue 14's tests judge server-side metrics through a real Prometheus (Debian's ``prometheus`` and
``prometheus-pushgateway`` packages: /usr/bin/prometheus, /usr/bin/prometheus-pushgateway; .ci/run
installs them). ``start_stack`` writes a scrape config (``scrape_interval`` 1 s) whose jobs are the
Pushgateway (``job="pushgateway"``, ``honor_labels``: pushed series keep their own ``job``) and each
``targets`` entry (a ``host:port`` with a ``/metrics`` page, e.g. the demo service), starts both
servers, waits until Prometheus answers ``/-/ready`` and stops both on ``stop()`` (or leaving the
``with`` block).

The Pushgateway doubles as a target whose numbers a test decides: ``push`` a text exposition and
the next scrape has it. ``wait_for`` polls an instant query until a condition holds (a deadline, no
blind sleeping).

CI_PERF_PROMETHEUS decides what happens where a binary is missing: ``required`` (.ci/run sets it)
fails, ``skip`` skips always, unset (``auto``) skips with the reason (see ``require_binaries``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ci_perf.loadtest.runner import free_port

PROMETHEUS = "prometheus"
PUSHGATEWAY = "prometheus-pushgateway"
BINARY_DIRECTORIES = ("/usr/bin", "/usr/local/bin")
START_TIMEOUT_S = 30.0
SCRAPE_INTERVAL = "1s"
# ``start_stack(basic_auth=True)``: Prometheus asks for this user and password (bcrypt, cost 4: quick to check)
AUTH_USER = "ci-perf"
AUTH_PASSWORD = "s3cret-for-tests"
AUTH_HASH = "$2b$04$FgbeYhPZ0PnR9dLjRilWKumykew9iA6kUWt9uPk7L/5hqR6aS7VF6"


def binary(name: str) -> str | None:
    """The path of ``name`` on PATH or in the Debian package's folder, else None."""
    found = shutil.which(name)
    if found:
        return found
    for folder in BINARY_DIRECTORIES:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_binaries() -> list[str]:
    return [name for name in (PROMETHEUS, PUSHGATEWAY) if binary(name) is None]


def require_binaries() -> None:
    """Skip or fail (CI_PERF_PROMETHEUS) a test that needs Prometheus where it is not installed."""
    mode = os.environ.get("CI_PERF_PROMETHEUS", "auto")
    if mode not in {"auto", "required", "skip"}:
        pytest.fail(f"CI_PERF_PROMETHEUS={mode!r}: use required, skip or auto")
    if mode == "skip":
        pytest.skip("CI_PERF_PROMETHEUS=skip")
    if missing := missing_binaries():
        reason = f"needs {', '.join(missing)} (apt-get install prometheus prometheus-pushgateway; .ci/run does)"
        if mode == "required":
            pytest.fail(f"CI_PERF_PROMETHEUS=required: {reason}")
        pytest.skip(reason)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    auth: tuple[str, str] | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class PrometheusStack:
    """A running Prometheus (``url``) that scrapes the Pushgateway (``pushgateway``) and the targets."""

    prometheus: Server
    pushgateway: Server
    targets: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.prometheus.url

    def push(self, text: str, *, job: str = "ci-perf-test", labels: dict[str, str] | None = None) -> None:
        """Replace the group ``job`` (+ ``labels``) on the Pushgateway with this text exposition."""
        path = f"/metrics/job/{job}" + "".join(f"/{name}/{value}" for name, value in (labels or {}).items())
        body = text if text.endswith("\n") else text + "\n"
        httpx.put(self.pushgateway.url + path, content=body.encode(), timeout=5).raise_for_status()

    def query(self, expr: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (raises on an error answer)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        answer = httpx.get(self.url + "/api/v1/query", params=params, auth=self.prometheus.auth, timeout=5).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(
        self, expr: str, condition: Callable[[list[dict[str, Any]]], bool] = bool, *, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """The result of ``expr`` once ``condition`` holds for it; fails the test at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if condition(result):
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus at {self.url}: {expr!r} gave {result!r} after {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.prometheus.stop()
        self.pushgateway.stop()


def scrape_config(*, pushgateway: str, targets: list[str]) -> str:
    """The generated prometheus.yml (JSON is YAML): the Pushgateway job, then one job per target."""
    jobs = [{"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pushgateway]}]}]
    jobs += [{"job_name": f"target{index}", "static_configs": [{"targets": [t]}]} for index, t in enumerate(targets)]
    config = {"global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL}}
    return json.dumps(config | {"scrape_configs": jobs}, indent=1)


def _spawn(command: list[str], log: Path, url: str, auth: tuple[str, str] | None = None) -> Server:
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return Server(url=url, process=process, log=log, auth=auth)


def _wait_ready(server: Server, path: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if httpx.get(server.url + path, auth=server.auth, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    return False


def _start_pushgateway(directory: Path) -> Server:
    port = free_port()
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: every test's groups would be shared
    command = [str(binary(PUSHGATEWAY)), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    return _spawn(command, directory / f"pushgateway-{port}.log", f"http://127.0.0.1:{port}")


def _start_prometheus(directory: Path, *, pushgateway: str, targets: list[str], basic_auth: bool) -> Server:
    port = free_port()
    config = directory / f"prometheus-{port}.yml"
    config.write_text(scrape_config(pushgateway=pushgateway, targets=targets))
    command = [
        str(binary(PROMETHEUS)), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={directory / f'tsdb-{port}'}", "--web.enable-lifecycle", "--log.level=warn",
    ]  # fmt: skip
    if basic_auth:  # Prometheus's own web config: every request needs the user and password
        web = directory / f"web-{port}.yml"
        web.write_text(json.dumps({"basic_auth_users": {AUTH_USER: AUTH_HASH}}))
        command.append(f"--web.config.file={web}")
    auth = (AUTH_USER, AUTH_PASSWORD) if basic_auth else None
    return _spawn(command, directory / f"prometheus-{port}.log", f"http://127.0.0.1:{port}", auth)


def _started(start: Callable[[], Server], ready_path: str, attempts: int = 3) -> Server:
    """A server that answered ``ready_path``; started again when it did not (another process took its port)."""
    for _ in range(attempts):
        server = start()
        if _wait_ready(server, ready_path):
            return server
    raise RuntimeError(f"did not start at {server.url}:\n{server.log.read_text(errors='replace')[-3000:]}")


def start_stack(directory: Path, *, targets: list[str] | None = None, basic_auth: bool = False) -> PrometheusStack:
    """Pushgateway, then Prometheus scraping it and ``targets`` every second (call ``require_binaries`` first).

    ``basic_auth``: Prometheus refuses requests without ``AUTH_USER``/``AUTH_PASSWORD`` (401).
    """
    directory.mkdir(parents=True, exist_ok=True)
    pushgateway = _started(lambda: _start_pushgateway(directory), "/-/ready")
    address = pushgateway.url.removeprefix("http://")
    try:
        prometheus = _started(
            lambda: _start_prometheus(
                directory, pushgateway=address, targets=list(targets or []), basic_auth=basic_auth
            ),
            "/-/ready",
        )
    except RuntimeError:
        pushgateway.stop()
        raise
    return PrometheusStack(prometheus=prometheus, pushgateway=pushgateway, targets=list(targets or []))


@contextmanager
def prometheus_stack(
    directory: Path, *, targets: list[str] | None = None, basic_auth: bool = False
) -> Iterator[PrometheusStack]:
    """``start_stack`` for a ``with`` block (skips or fails first where the binaries are missing)."""
    require_binaries()
    stack = start_stack(directory, targets=targets, basic_auth=basic_auth)
    try:
        yield stack
    finally:
        stack.stop()
