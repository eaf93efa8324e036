"""A Prometheus for ``ci-perf demo``: found on PATH (Debian's package puts it in /usr/bin), started on a
free loopback port with a generated scrape config (every second) for the demo service, stopped after.

Without one the demo runs without its server side and says in one line how to get it. A Prometheus
that does not become ready is the same: the demo goes on without it and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx

from ci_perf.loadtest.runner import free_port

BINARY = "prometheus"
SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 30.0
HOW_TO_GET_IT = (
    "ci-perf demo: no `prometheus` binary found, so no server side (database budget) in this demo; get it with "
    "`apt install prometheus` or from https://prometheus.io/download/ (on PATH), then run the demo again\n"
)


def find_prometheus(environ: Mapping[str, str]) -> str | None:
    return shutil.which(BINARY, path=environ.get("PATH", ""))


def scrape_config(targets: Sequence[str], *, interval: str = SCRAPE_INTERVAL) -> str:
    """prometheus.yml (JSON is YAML) scraping each ``host:port``'s ``/metrics`` every ``interval``."""
    jobs = [{"job_name": f"demo{index}", "static_configs": [{"targets": [t]}]} for index, t in enumerate(targets)]
    settings = {"scrape_interval": interval, "evaluation_interval": interval}
    return json.dumps({"global": settings, "scrape_configs": jobs}, indent=1)


@contextmanager
def demo_prometheus(targets: Sequence[str], *, environ: Mapping[str, str], stream: TextIO) -> Iterator[str | None]:
    """The URL of a Prometheus scraping ``targets`` (``host:port``), or None (said on ``stream``); always stopped."""
    binary = find_prometheus(environ)
    if binary is None:
        stream.write(HOW_TO_GET_IT)
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="ci-perf-demo-prometheus-") as folder:
        process, url = _start(binary, Path(folder), targets)
        try:
            problem = _wait_ready(process, url, Path(folder) / "prometheus.log", len(targets))
            if problem:
                stream.write(f"ci-perf demo: Prometheus did not start ({problem}); going on without the server side\n")
            yield None if problem else url
        finally:
            stop(process)


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """End a child of the demo: SIGTERM, and SIGKILL when it has not ended within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start(binary: str, folder: Path, targets: Sequence[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(scrape_config(targets), encoding="utf-8")
    command = [
        binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={folder / 'data'}", "--log.level=warn",
    ]  # fmt: skip
    with (folder / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, targets: int) -> str | None:
    """None once Prometheus has scraped every target, else why not (its exit and last log line, or the timeout).

    The first scrape comes up to a scrape interval after the start: a run measured before it would
    find no data.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return f"it exited with {process.returncode}" + (f": {lines[-1][:300]}" if lines else "")
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": "sum(up)"}, timeout=1).json()
            if answer["data"]["result"] and float(answer["data"]["result"][0]["value"][1]) >= targets:
                return None
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            pass  # not up yet (connection refused, 503 while the storage opens)
        time.sleep(0.1)
    return f"not scraping the demo within {READY_TIMEOUT_S:g} s"
