"""Duet mode live: real Locust against two real HTTP services on loopback.

Every user has a twin that runs the same code against the base deployment (loadtest/plugins/duet.py):
both arms are counted on their own, run the user's validation, logins and cookies, and two
identical deployments never give a regression. The statistics are checked with synthetic runs in
tests/unit/test_duet.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ci_perf.config import Config, parse_config, with_comparison
from ci_perf.pipeline import RunOutcome, run_pipeline
from ci_perf.results import ArmResult, RunResult, load_result
from tests.conftest import DemoService, start_demo_service, write


@pytest.fixture
def two_services() -> Iterator[tuple[DemoService, DemoService]]:
    base = start_demo_service()
    head = start_demo_service()
    yield base, head
    base.stop()
    head.stop()


def _config(tmp_path: Path, body: str, base_url: str) -> Config:
    config = parse_config(body, source=write(tmp_path / "ci-perf.yml", body))
    # one run's accounting, checked against what each deployment served: no confirm re-runs (test_confirm_live)
    return with_comparison(config, baseline_target=base_url, confirm_runs=0)


def _run(tmp_path: Path, body: str, *, head: str, base: str) -> RunOutcome:
    return run_pipeline(
        _config(tmp_path, body, base), out_dir=tmp_path / "out", target=head, environ={}, cwd=tmp_path, echo=None
    )


@pytest.mark.parametrize("processes", [1, 2])
def test_every_request_reaches_both_deployments_and_is_counted_on_its_arm(
    tmp_path: Path, two_services: tuple[DemoService, DemoService], processes: int
) -> None:
    base, head = two_services
    body = (
        "endpoints:\n  - GET /api/products\n  - 'POST /api/orders {\"productId\": 1}'\n"
        f"load: {{users: 4, spawn_rate: 20, duration: 3s, warmup: 0s, processes: {processes}}}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    outcome = _run(tmp_path, body, head=head.url, base=base.url)
    result = outcome.result
    assert result.base is not None
    served = [s.total() for s in (head, base)]  # the service does not count the readiness probe
    assert [result.aggregate.requests, result.base.aggregate.requests] == served
    assert min(served) > 0
    # a user and its twin meet before each request: the k-th of each pair start together; the end of
    # the run can fall between the two sends of a pair (the second is then never sent), once per user
    assert abs(served[0] - served[1]) <= 4
    assert outcome.report.comparison is not None
    assert outcome.report.comparison.mode == "duet"
    assert "measured in the same run" in (tmp_path / "out" / "report.md").read_text()
    assert load_result(tmp_path / "out" / "result.json").base is not None
    # users per arm: Locust counts the users it started, not their twins (peak_users moves to meta in issue 11)
    assert 4 in {result.meta.peak_users, result.meta.load.peak_users}


# -- a shop that validates logins and hands out content to validate ----------------------------------


HANG_S = 30.0  # GET /hang answers after the run


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection Locust drops when the run ends is no news."""


class Shop:
    """A real HTTP service on 127.0.0.1: ``POST /login`` sets a session cookie and returns a token
    (both this instance's own), ``GET /me`` needs the cookie, ``GET /orders`` the token, and
    ``GET /items/<n>`` says ``"valid": false`` for every fourth item — a failure only the
    locustfile's validation can see (the status is 200)."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(8)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def do_GET(self) -> None:
                self._answer(*shop.answer("GET", self.path, self.headers.get("Cookie"), self.headers.get("Token")))

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(*shop.answer("POST", self.path, None, None))

            def _answer(self, status: int, payload: object, cookie: str | None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                if cookie:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def answer(self, method: str, path: str, cookie: str | None, token: str | None) -> tuple[int, object, str | None]:
        session = SimpleCookie(cookie or "").get("session")
        signed_in = session is not None and session.value == self.secret
        item = re.fullmatch(r"/items/(\d+)", path)
        if method == "POST" and path == "/login":
            key, reply = "login", (200, {"token": self.secret}, f"session={self.secret}; Path=/")
        elif path == "/hang":
            time.sleep(HANG_S)
            key, reply = "hang", (200, {}, None)
        elif path == "/health":
            key, reply = "health", (200, {"status": "ok"}, None)
        elif path == "/me":
            key = "me ok" if signed_in else "me refused"
            reply = (200, {"me": "shopper"}, None) if signed_in else (401, {"error": "sign in"}, None)
        elif path == "/orders":
            key = "orders ok" if token == self.secret else "orders refused"
            reply = (200, [], None) if token == self.secret else (403, {"error": "bad token"}, None)
        elif item is not None:
            key, reply = "item", (200, {"id": int(item[1]), "valid": int(item[1]) % 4 != 0}, None)
        else:
            key, reply = "unknown", (404, {"error": "not found"}, None)
        with self.lock:
            self.counts[key] += 1
        return reply

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def two_shops() -> Iterator[tuple[Shop, Shop]]:
    shops = Shop(), Shop()
    yield shops
    for shop in shops:
        shop.stop()


SHOPPER = """\
import random
from locust import {user}, task, constant

class Shopper({user}):
    wait_time = constant(0.005)

    def on_start(self):
        response = self.client.post("/login", json={{"user": "me"}})
        self.token = response.json()["token"]

    @task(2)
    def item(self):
        number = random.randint(1, 1000)
{validation}
    @task
    def me(self):
        with self.client.get("/me", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"not signed in: {{response.status_code}}")

    @task
    def orders(self):
        self.client.get("/orders", headers={{"Token": self.token}})
"""

CATCH_RESPONSE = """\
        with self.client.get(f"/items/{number}", name="/items", catch_response=True) as response:
            if not response.json()["valid"]:
                response.failure("item is not valid")
"""

REST = """\
        with self.rest("GET", f"/items/{number}", name="/items") as response:
            if not response.js["valid"]:
                response.failure("item is not valid")
"""


def _shopper_run(tmp_path: Path, shops: tuple[Shop, Shop], *, user: str, validation: str) -> RunOutcome:
    base, head = shops
    locustfile = write(tmp_path / "locustfile.py", SHOPPER.format(user=user, validation=validation))
    body = (
        f"locustfile: {locustfile.name}\nload: {{users: 3, spawn_rate: 30, duration: 4s, warmup: 0s}}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    return _run(tmp_path, body, head=head.url, base=base.url)


def _endpoint(arm: RunResult | ArmResult, name: str) -> Any:
    return next(e for e in arm.endpoints if e.name == name)


@pytest.mark.parametrize(
    ("user", "validation"),
    [
        pytest.param("HttpUser", CATCH_RESPONSE, id="catch_response"),
        pytest.param("FastHttpUser", REST, id="FastHttpUser.rest"),
    ],
)
def test_both_arms_run_the_users_validation_and_identical_deployments_show_no_regression(
    tmp_path: Path, two_shops: tuple[Shop, Shop], user: str, validation: str
) -> None:
    outcome = _shopper_run(tmp_path, two_shops, user=user, validation=validation)
    result = outcome.result
    assert result.base is not None
    invalid = []
    for arm in (result, result.base):
        items = _endpoint(arm, "GET /items")
        assert items.stats.requests >= 8
        # every fourth item fails the locustfile's own check, on either deployment
        assert 0.1 <= items.stats.failures / items.stats.requests <= 0.4
        assert "CatchResponseError: item is not valid" in [e.message for e in items.errors]
        invalid.append(items.stats.failures - items.stats.unfinished)
    # a twin draws the same items as its user: the same failures (but for one in flight at the end),
    # the same requests
    assert abs(invalid[0] - invalid[1]) <= 3
    for name in ("GET /items", "GET /me", "GET /orders"):  # the end may fall between a pair's two requests
        assert abs(_endpoint(result, name).stats.requests - _endpoint(result.base, name).stats.requests) <= 3
    comparison = outcome.report.comparison
    assert comparison is not None
    assert comparison.mode == "duet"
    assert comparison.with_verdict("regression") == []
    assert comparison.with_verdict("improvement") == []


def test_a_login_in_on_start_reaches_each_deployment_with_its_own_cookie_and_token(
    tmp_path: Path, two_shops: tuple[Shop, Shop]
) -> None:
    outcome = _shopper_run(tmp_path, two_shops, user="HttpUser", validation=CATCH_RESPONSE)
    for shop in two_shops:
        assert shop.counts["login"] == 3  # one per user on each deployment: the twin signs in on its own
        assert shop.counts["me ok"] > 0
        assert shop.counts["orders ok"] > 0
        assert shop.counts["me refused"] == shop.counts["orders refused"] == 0
    result = outcome.result
    assert result.base is not None
    for arm in (result, result.base):
        for name in ("GET /me", "GET /orders"):
            stats = _endpoint(arm, name).stats
            assert stats.failures == stats.unfinished  # only what was still in flight when the run ended


# -- the pairs' life, with Locust as a library (no HTTP: the tasks only sleep and count) ------------

LIFECYCLE = """\
import json, random, sys
from collections import Counter

import gevent
import locust
from locust import HttpUser, constant, task
from locust.env import Environment

from ci_perf.loadtest.plugins import duet

started, finished, contexts = Counter(), Counter(), Counter()
users = []


class Pair(HttpUser):
    host = "http://head.invalid"
    wait_time = constant(0.01)

    def __init__(self, environment):
        super().__init__(environment)
        self.draws = []
        users.append(self)

    def context(self):
        return {"tenant": "t1"}

    @task
    def work(self):
        arm = self.context().get("ci_perf_arm", "head")
        contexts[json.dumps(self.context(), sort_keys=True)] += 1
        self.draws.append(random.random())
        started[arm] += 1
        gevent.sleep(0.08 if arm == "base" else 0.01)  # the base deployment is 8x slower
        finished[arm] += 1


environment = Environment(user_classes=[Pair], events=locust.events)
environment.stop_timeout = float(sys.argv[1])
runner = environment.create_local_runner()
environment.events.init.fire(environment=environment, runner=runner, web_ui=None)
runner.start(4, spawn_rate=100)
gevent.sleep(1.0)
hosts = sorted({twin.args[0].host for twin in duet._twins})
running = {"users": runner.user_count, "twins": len(duet._twins), "hosts": hosts}
runner.start(2, spawn_rate=100)
gevent.sleep(0.5)
ramped = {"users": runner.user_count, "twins": len(duet._twins)}
runner.stop()
after = {"users": runner.user_count, "twins": len(duet._twins)}
pairs = [(user.draws, getattr(user, "_ci_perf_twin").draws) for user in users if hasattr(user, "_ci_perf_twin")]
same = [min(len(a), len(b)) > 0 and a[: len(b)] == b[: len(a)] for a, b in pairs]
print(json.dumps({"running": running, "ramped": ramped, "after": after, "started": started,
                  "finished": finished, "contexts": contexts, "same_draws": same}))
"""


def _lifecycle(tmp_path: Path, stop_timeout: float) -> dict[str, Any]:
    script = write(tmp_path / "lifecycle.py", LIFECYCLE)
    environ = {**os.environ, "CI_PERF_BASELINE_TARGET": "http://base.invalid"}
    command = [sys.executable, str(script), str(stop_timeout)]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_each_user_brings_one_twin_aimed_at_the_base_that_locust_does_not_count(tmp_path: Path) -> None:
    life = _lifecycle(tmp_path, stop_timeout=2)
    assert life["running"] == {"users": 4, "twins": 4, "hosts": ["http://base.invalid"]}
    assert life["ramped"] == {"users": 2, "twins": 2}  # a ramp-down stops the twins of the users it stops
    assert life["after"] == {"users": 0, "twins": 0}
    # the twin keeps the class's own context() and adds its arm
    assert set(life["contexts"]) == {'{"tenant": "t1"}', '{"ci_perf_arm": "base", "tenant": "t1"}'}


def test_a_twin_draws_the_same_random_numbers_as_its_user(tmp_path: Path) -> None:
    life = _lifecycle(tmp_path, stop_timeout=2)
    assert life["same_draws"] == [True] * 4


def test_pairs_run_in_lockstep_so_a_slower_base_runs_as_many_tasks_as_the_head(tmp_path: Path) -> None:
    life = _lifecycle(tmp_path, stop_timeout=2)
    head, base = life["started"]["head"], life["started"]["base"]
    assert head > 20
    assert abs(head - base) <= 4  # one task per pair at most, for the users still running at the end


def test_a_graceful_stop_lets_both_arms_finish_their_task_and_a_forced_stop_ends_both(tmp_path: Path) -> None:
    graceful = _lifecycle(tmp_path, stop_timeout=2)
    assert graceful["started"] == graceful["finished"]
    forced = _lifecycle(tmp_path, stop_timeout=0)
    assert forced["after"] == {"users": 0, "twins": 0}


PYTEST_STYLE = """\
from locust.clients import HttpSession


def test_shop(session: HttpSession) -> None:
    session.post("/login")
    session.get("/me")
    with session.get("/items/8", name="/items", catch_response=True) as response:
        if not response.json()["valid"]:
            response.failure("item is not valid")
"""


def test_a_pytest_style_locustfile_runs_on_both_deployments_alike(tmp_path: Path, two_shops: tuple[Shop, Shop]) -> None:
    base, head = two_shops
    write(tmp_path / "test_shop.py", PYTEST_STYLE)
    body = (
        "locustfile: test_shop.py\nload: {users: 2, spawn_rate: 20, duration: 3s, warmup: 0s}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    outcome = _run(tmp_path, body, head=head.url, base=base.url)
    result = outcome.result
    assert result.base is not None
    for shop in two_shops:  # each session signs in on its own deployment
        assert shop.counts["me ok"] > 0
        assert shop.counts["me refused"] == 0
    failed = [_endpoint(arm, "GET /items").stats for arm in (result, result.base)]
    assert min(f.failures for f in failed) > 0  # item 8 is not valid: the check fails it on both arms
    assert abs(failed[0].failures - failed[1].failures) <= 2  # but for each user's last request
    # pytest-style users never wait; their pairs meet after each test call, so both arms ran as many
    # but for the call the end of the run cut short: at most its 3 requests per user
    assert abs(result.aggregate.requests - result.base.aggregate.requests) <= 3 * 2
    comparison = outcome.report.comparison
    assert comparison is not None
    assert comparison.with_verdict("regression") == []


HANGING = """\
from locust import FastHttpUser, constant, task


class Waiter(FastHttpUser):
    wait_time = constant(0)

    @task
    def hang(self):
        self.client.get("/hang")
"""


def test_requests_in_flight_when_the_run_ends_count_on_their_own_arm(
    tmp_path: Path, two_shops: tuple[Shop, Shop]
) -> None:
    base, head = two_shops
    write(tmp_path / "locustfile.py", HANGING)
    body = (
        "locustfile: locustfile.py\nload: {users: 2, spawn_rate: 20, duration: 2s, warmup: 0s}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    result = _run(tmp_path, body, head=head.url, base=base.url).result
    assert result.base is not None
    for arm in (result, result.base):
        assert _endpoint(arm, "GET /hang").stats.unfinished == 2  # one per user, on each deployment


RAISING = """\
from locust import HttpUser, task, constant

class Raiser(HttpUser):
    wait_time = constant(0.01)

    @task
    def me(self):
        self.client.get("/me")
        raise ValueError("no total")
"""


def test_a_task_exception_is_counted_once_though_the_twin_raises_it_too(
    tmp_path: Path, two_shops: tuple[Shop, Shop]
) -> None:
    base, head = two_shops
    locustfile = write(tmp_path / "locustfile.py", RAISING)
    body = (
        f"locustfile: {locustfile.name}\nload: {{users: 2, spawn_rate: 20, duration: 2s, warmup: 0s}}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    result = _run(tmp_path, body, head=head.url, base=base.url).result
    (raised,) = result.exceptions
    requested = _endpoint(result, "GET /me").stats.requests  # the head's: the twins' are the base arm's
    assert (raised.type, raised.message) == ("ValueError", "no total")
    assert requested - 2 <= raised.count <= requested  # a user stopped between its request and the raise
