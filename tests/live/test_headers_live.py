"""`endpoints:` headers through the real `ci-perf run`: a loopback server sees the expanded secret; no output does."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import write
from tests.live.test_run_live import ci_perf

SECRET = "tok-7f3a9c-never-printed"


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 when ``/private`` carries the right token (401 otherwise) and counts what it saw."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Locust's FastHttpUser expects
    disable_nagle_algorithm = True  # headers and body are two writes: no 40-ms delayed-ACK wait between them
    seen: Counter[str]
    lock = threading.Lock()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        authorized = self.headers.get("Authorization") == f"Bearer {SECRET}"
        with self.lock:
            self.seen[f"{path} {'with' if authorized else 'without'} token"] += 1
        status = 401 if path == "/private" and not authorized else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet: the test reads the counters."""


@pytest.fixture
def recording_server() -> Iterator[tuple[str, Counter[str]]]:
    seen: Counter[str] = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Recorder,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "load",
    [
        pytest.param("{users: 3, spawn_rate: 3, duration: 2s, warmup: 0s, processes: 2}", id="users-two-processes"),
        pytest.param("{arrival_rate: 40/s, users: 4, duration: 2s, warmup: 0s}", id="arrival-rate"),
    ],
)
def test_the_service_gets_the_expanded_header_and_no_output_shows_the_secret(
    tmp_path: Path, recording_server: tuple[str, Counter[str]], monkeypatch: pytest.MonkeyPatch, load: str
) -> None:
    url, seen = recording_server
    config = write(
        tmp_path / "ci-perf.yml",
        f"target: {url}\nendpoints:\n  - GET /public\n"
        '  - {method: GET, path: /private, headers: {Authorization: "Bearer ${API_TOKEN}"}}\n'
        f"load: {load}\nreadiness: {{path: /public, timeout: 5s}}\nstore: {{path: store}}\n",
    )
    monkeypatch.setenv("API_TOKEN", SECRET)  # ci_perf() runs the CLI in a child that inherits it
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr  # a 401 would fail the default error limit
    private = seen["/private with token"]
    assert private > 0
    assert seen["/private without token"] == 0
    assert seen["/public with token"] == 0  # the header belongs to its endpoint only
    outputs = {path.name: path.read_text(encoding="utf-8") for path in (tmp_path / "out").iterdir() if path.is_file()}
    assert {"result.json", "report.md", "report.json", "locust.log"} <= set(outputs)
    outputs |= {"stdout": done.stdout, "stderr": done.stderr}
    assert [name for name, text in outputs.items() if SECRET in text] == []
