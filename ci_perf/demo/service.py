"""The bundled demo service: a small shop API with latency, jitter, error and database knobs.

Used by ``make demo`` and by the tests as a real HTTP target on loopback. It
counts every request it serves (``GET /__stats``) so tests can check that
ci-perf's counts are exact, and its knobs can be changed while it runs
(``POST /__knobs``) to inject a slowdown or failures. ``POST /__control`` sets
service-wide behaviour: ``max_inflight`` (requests beyond it get 503 at once: a
capacity for the breakpoint profile to find) and ``stall_s`` (every request waits
until that many seconds from now: a stall, for the open model's corrected latency) and ``pool_size``
(the database pool's size that ``db_pool_connections_max`` reports). ``GET /metrics`` is its
Prometheus instrumentation: request durations per route, the simulated database's queries and pool,
the external call (``backend.py``). A route's ``n_plus_one`` knob multiplies its queries.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ci_perf.demo.backend import METRICS_CONTENT_TYPE, Instruments, Knob, draw_work

ROUTES: dict[str, re.Pattern[str]] = {
    "GET /api/products": re.compile(r"/api/products"),
    "GET /api/products/{id}": re.compile(r"/api/products/\d+"),
    "POST /api/orders": re.compile(r"/api/orders"),
    "GET /health": re.compile(r"/health"),
}


# latency_ms is the whole request, its queries (and the order's payment call) included
DEFAULT_KNOBS = {
    "GET /api/products": Knob(latency_ms=12, jitter_ms=1.5, queries=2, query_ms=2, query_jitter_ms=0.5),
    "GET /api/products/{id}": Knob(latency_ms=6, jitter_ms=1, queries=1, query_ms=1.5, query_jitter_ms=0.3),
    "POST /api/orders": Knob(
        latency_ms=25, jitter_ms=2.5, queries=3, query_ms=2.5, query_jitter_ms=0.5, external_ms=8, external_jitter_ms=1
    ),
    "GET /health": Knob(),
}


class DemoState:
    def __init__(self, knobs: dict[str, Knob]) -> None:
        self.knobs = dict(knobs)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.max_inflight: int | None = None
        self.inflight = 0
        self.stall_until = 0.0
        self.instruments = Instruments()

    def control(self, changes: dict[str, Any]) -> None:
        with self.lock:
            if "max_inflight" in changes:
                limit = changes["max_inflight"]
                self.max_inflight = None if limit is None else int(limit)
            if "stall_s" in changes:
                self.stall_until = time.monotonic() + float(changes["stall_s"])
            if "pool_size" in changes:
                self.instruments.set_pool_size(int(changes["pool_size"]))

    def update(self, changes: dict[str, Any]) -> None:
        with self.lock:
            for route, values in changes.items():
                if route not in self.knobs:
                    raise KeyError(route)
                self.knobs[route] = self.knobs[route].model_copy(update=Knob(**values).model_dump(exclude_unset=True))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "counts": dict(self.counts),
                "total": sum(n for route, n in self.counts.items() if route != "GET /health"),
                "knobs": {route: knob.model_dump() for route, knob in self.knobs.items()},
            }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the stdlib's backlog of 5 makes a burst of new connections wait ~1 s for a retransmit
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: DemoState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would delay the second ~40 ms
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ARG002 - stdlib signature; stay quiet
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.server.state
        if path == "/__stats":
            self._reply(200, state.snapshot())
            return
        if path == "/metrics" and method == "GET":
            self._send(200, state.instruments.exposition(), METRICS_CONTENT_TYPE)
            return
        if path in {"/__knobs", "/__control"} and method == "POST":
            try:
                (state.update if path == "/__knobs" else state.control)(json.loads(body or b"{}"))
            except (ValueError, KeyError, TypeError) as exc:
                self._reply(400, {"error": f"bad {path[2:]}: {exc}"})
                return
            self._reply(200, state.snapshot())
            return
        route = next((r for r, rx in ROUTES.items() if r.startswith(method + " ") and rx.fullmatch(path)), None)
        if route is None:
            with state.lock:
                state.counts[f"{method} (unknown)"] += 1
            self._reply(404, {"error": "not found"})
            return
        status = self._serve_route(route, method)
        template = route.split(" ", 1)[1]
        state.instruments.served(method=method, route=template, status=status, seconds=time.perf_counter() - started)

    def _serve_route(self, route: str, method: str) -> int:
        """Answer a route of the shop as its knob says; the status sent."""
        state = self.server.state
        with state.lock:
            state.counts[route] += 1
            knob = state.knobs[route]
            full = state.max_inflight is not None and state.inflight >= state.max_inflight
            if not full:
                state.inflight += 1
            stall = state.stall_until - time.monotonic()
        if full:
            return self._reply(503, {"error": "over capacity"})
        try:
            if stall > 0:
                time.sleep(stall)
            state.instruments.perform(route.split(" ", 1)[1], draw_work(knob))
            if knob.error_rate and random.random() < knob.error_rate:  # noqa: S311 - simulated failures
                return self._reply(500, {"error": "injected failure"})
            return self._reply(200 if method == "GET" else 201, _payload(route))
        finally:
            with state.lock:
                state.inflight -= 1

    def _reply(self, status: int, payload: object) -> int:
        return self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status


def _payload(route: str) -> object:
    if route == "GET /api/products":
        return [{"id": i, "name": f"product {i}", "price": 10 + i} for i in range(10)]
    if route == "GET /health":
        return {"status": "ok"}
    return {"id": 1, "status": "ok"}


def serve(host: str, port: int, knobs: dict[str, Knob]) -> _Server:
    """Start the service in a background thread; ``server.server_address`` has the port."""
    server = _Server((host, port), DemoState(knobs))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ci-perf demo-service", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the first line)")
    parser.add_argument("--knobs", default="{}", help='JSON, e.g. \'{"POST /api/orders": {"latency_ms": 40}}\'')
    args = parser.parse_args(argv)
    knobs = dict(DEFAULT_KNOBS)
    try:
        for route, values in json.loads(args.knobs).items():
            knobs[route] = knobs.get(route, Knob()).model_copy(update=Knob(**values).model_dump(exclude_unset=True))
    except (ValueError, TypeError, AttributeError) as exc:
        print(f"ci-perf demo-service: --knobs: {exc}", file=sys.stderr)
        return 2
    server = serve(args.host, args.port, knobs)
    print(f"ci-perf demo service listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
