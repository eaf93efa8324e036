"""httpbin (PyPI ``httpbin``) served by gunicorn on loopback, and its access log read one run at a time.

The compatibility suite (tests/compat/) runs locustfiles through ``ci-perf run`` against httpbin and
checks ci-perf's per-endpoint request counts against what httpbin itself logged. Every configuration
points ``readiness.path`` at ``READINESS_PATH``, a path no locustfile requests: ci-perf's readiness
check (ci_perf/loadtest/readiness.py) sends ``GET target + readiness.path`` until it answers, on the
head and, in duet mode, on the base deployment, and those probes are not load, so ``requests_since``
leaves them out. The fixture's own start-up probes use the same path.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ci_perf.loadtest.runner import free_port

READINESS_PATH = "/anything/ci-perf-readiness"
# one line per finished request: the request line as the client sent it ("GET /get?a=1 HTTP/1.1"), then the status
ACCESS_LOG_FORMAT = "%(r)s|%(s)s"
START_TIMEOUT_S = 20.0


@dataclass
class Httpbin:
    url: str
    access_log: Path
    process: subprocess.Popen[bytes]

    def offset(self) -> int:
        """Where the access log ends now: pass it to ``requests_since`` after a run."""
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def requests_since(self, offset: int, *, names: Mapping[str, str] | None = None) -> Counter[str]:
        """Finished requests logged after ``offset``, keyed like ci-perf's endpoints (``"GET /get?a=1"``).

        ``names`` renames keys as a locustfile's ``name=`` groups them (``"GET /base64/[product]"``).
        Readiness probes are left out. A request line is logged when its response is done, so a request
        still running (``/delay/10``) appears only when it ends.
        """
        with self.access_log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            request_line = line.rsplit("|", 1)[0]
            method, _, rest = request_line.partition(" ")
            target = rest.rsplit(" ", 1)[0]  # drop "HTTP/1.1"
            if target != READINESS_PATH:
                key = f"{method} {target}"
                counts[(names or {}).get(key, key)] += 1
        return counts

    def wait_for(
        self, expected: Counter[str], *, since: int, names: Mapping[str, str] | None = None, timeout: float = 5.0
    ) -> Counter[str]:
        """The requests logged since ``since`` once they equal ``expected``, or as they are at the deadline.

        gunicorn writes a request's log line just after its response, so the last lines of a run may
        land a moment after the client saw the answers; a request still hanging lands when it ends.
        """
        deadline = time.monotonic() + timeout
        while True:
            served = self.requests_since(since, names=names)
            if served == expected or time.monotonic() > deadline:
                return served
            time.sleep(0.05)

    def stop(self) -> None:
        """Quick shutdown (SIGINT): requests still hanging are dropped, not waited for."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(self.url + READINESS_PATH, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.access_log.with_suffix(".error.log")
                raise RuntimeError(f"httpbin did not start at {self.url}:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)


def start_httpbins(directory: Path, *, workers: tuple[int, ...], attempts: int = 3) -> list[Httpbin]:
    """One httpbin per entry of ``workers`` (its gunicorn worker count), started side by side.

    A server that does not come up (another process took its free port first) is started again.
    """
    servers = [spawn_httpbin(directory, workers=count) for count in workers]
    try:
        for index, count in enumerate(workers):
            for attempt in range(attempts):
                try:
                    servers[index].wait_until_up()
                    break
                except RuntimeError:
                    if attempt == attempts - 1:
                        raise
                    servers[index] = spawn_httpbin(directory, workers=count)
    except RuntimeError:
        for server in servers:
            server.stop()
        raise
    return servers


def spawn_httpbin(directory: Path, *, workers: int = 2) -> Httpbin:
    """httpbin under gunicorn's gevent workers (a hanging ``/delay/10`` holds no worker) on a free port."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = directory / f"httpbin-{port}.log"
    command = [
        sys.executable, "-m", "gunicorn", "httpbin:app",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "gevent",
        "--access-logfile", str(access_log), "--access-logformat", ACCESS_LOG_FORMAT,
        "--error-logfile", str(access_log.with_suffix(".error.log")),
        "--no-control-socket",  # gunicorn's default socket path is one per machine: servers would share it
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Httpbin(url=f"http://127.0.0.1:{port}", access_log=access_log, process=process)
