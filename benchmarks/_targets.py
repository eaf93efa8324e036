"""Load targets for benchmarks: nginx on a free loopback port when installed, else the demo service."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ci_perf.loadtest.runner import free_port

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ return 200 'ok'; }}
    }}
}}
"""


def _wait(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
        except httpx.HTTPError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def fast_target(workers: int = 1) -> Iterator[tuple[str, str]]:
    """(url, name): nginx returning 200 'ok' on ``workers`` workers, or the demo service with no latency."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        if nginx:
            conf = Path(folder) / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=folder, port=port, workers=workers))
            command = [nginx, "-c", str(conf), "-p", folder]
            name = f"nginx ({workers} worker{'s' if workers > 1 else ''})"
        else:
            knobs = '{"GET /health": {"latency_ms": 0}}'
            command = [sys.executable, "-m", "ci_perf.demo.service", "--port", str(port), "--knobs", knobs]
            name = "demo service (nginx not installed)"
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url + "/health")
            yield url, name
        finally:
            server.terminate()
            server.wait(timeout=10)
