"""Real Locust against the real demo service on loopback, through the real `ci-perf` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ci_perf.loadtest.runner import free_port
from ci_perf.results import SCHEMA_VERSION
from tests.conftest import DemoService, write
from tests.support.processes import locust_left

ZERO_CODE = """\
target: {url}
endpoints:
  - GET /api/products
  - 'POST /api/orders {{"productId": 1}}'
load: {{users: 4, spawn_rate: 4, duration: {duration}, warmup: 1s, processes: {processes}, stop_timeout: 3s}}
readiness: {{path: /health, timeout: 5s}}
store: {{path: store}}
performance_budget:
  api_endpoints: {{error_rate_percent: 1}}
"""

HTTP_USER = """\
from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0.01)

    @task
    def products(self):
        self.client.get("/api/products/7", name="/api/products/[id]")
"""


def ci_perf(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_perf.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def zero_code_config(tmp_path: Path, url: str, *, duration: str = "3s", processes: int = 1, extra: str = "") -> Path:
    text = ZERO_CODE.format(url=url, duration=duration, processes=processes) + extra
    return write(tmp_path / "ci-perf.yml", text)


def requests_in(result_path: Path) -> int:
    result = json.loads(result_path.read_text())
    return sum(w["requests"] for e in result["endpoints"] for w in e["windows"])


def test_counts_equal_the_services_own_counter_with_one_process(tmp_path: Path, demo: DemoService) -> None:
    write(tmp_path / "perf" / "locustfile.py", HTTP_USER)
    config = write(
        tmp_path / "ci-perf.yml",
        f"target: {demo.url}\nlocustfile: perf/locustfile.py\n"
        "load: {users: 3, spawn_rate: 3, duration: 3s, warmup: 1s, stop_timeout: 3s}\n"
        "readiness: {path: /health, timeout: 5s}\n"
        "performance_budget: {api_endpoints: {p50_latency_ms: 0.001}}\n",
    )
    before = demo.total()
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    served = demo.total() - before
    assert done.returncode == 1, done.stderr  # the impossible p50 budget fails the gate
    assert "Traceback" not in done.stderr
    assert served > 0
    assert requests_in(tmp_path / "out" / "result.json") == served
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["schema_version"] == SCHEMA_VERSION
    assert [e["name"] for e in result["endpoints"]] == ["GET /api/products/[id]"]
    assert result["meta"]["duration_s"] > 2.0
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.startswith("<!-- ci-perf -->")
    assert "1 budget violation" in report
    assert json.loads((tmp_path / "out" / "report.json").read_text())["status"] == "fail"
    assert "FAIL" in done.stdout  # the terminal rendering


def test_counts_equal_the_services_own_counter_with_two_processes(tmp_path: Path, demo: DemoService) -> None:
    config = zero_code_config(tmp_path, demo.url, processes=2)
    before = demo.total()
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    served = demo.total() - before
    assert done.returncode == 0, done.stderr
    assert requests_in(tmp_path / "out" / "result.json") == served
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {e["name"] for e in result["endpoints"]} == {"GET /api/products", "POST /api/orders"}
    assert result["meta"]["generator"]["processes"] == 2
    assert locust_left(tmp_path / "out") == []


def test_a_recorded_baseline_is_compared_and_a_pr_run_never_writes_it(tmp_path: Path, demo: DemoService) -> None:
    config = zero_code_config(tmp_path, demo.url)
    recorded = ci_perf("run", "--config", str(config), "--out", "base", "--record", "--branch", "main", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded as a baseline run" in recorded.stdout
    index = tmp_path / "store" / "index.jsonl"
    assert len(index.read_text().splitlines()) == 1
    pr = ci_perf("run", "--config", str(config), "--out", "pr", "--branch", "feature", cwd=tmp_path)
    assert pr.returncode == 0, pr.stderr
    assert len(index.read_text().splitlines()) == 1
    report = json.loads((tmp_path / "pr" / "report.json").read_text())
    assert report["comparison"]["baseline_runs"] == 1
    aggregate = report["aggregate"]["comparison"]["metrics"]["p95"]
    assert aggregate["baseline"] is not None
    assert aggregate["delta_percent"] is not None
    assert "median of 1 run on main" in (tmp_path / "pr" / "report.md").read_text()
    assert report["comparison"]["mode"] == "single"
    offline = ci_perf(
        "compare", "--baseline", "store", "--current", "pr/result.json", "--out", "offline", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    again = json.loads((tmp_path / "offline" / "report.json").read_text())
    assert again["comparison"] == report["comparison"]  # same input and seed, same verdicts


def test_a_target_refusing_connections_exits_3_with_one_sentence(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = zero_code_config(tmp_path, url, extra="")
    config.write_text(config.read_text().replace("timeout: 5s", "timeout: 1s"))
    done = ci_perf("run", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    assert "did not become ready" in done.stderr
    assert "connection refused" in done.stderr


def test_a_target_that_dies_mid_run_is_reported_not_crashed(tmp_path: Path, fresh_demo: DemoService) -> None:
    config = zero_code_config(tmp_path, fresh_demo.url, duration="4s")
    child = subprocess.Popen(
        [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--out", "out"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and fresh_demo.total() < 100:  # the load has begun
        time.sleep(0.05)
    fresh_demo.stop()
    _, err = child.communicate(timeout=60)
    assert "Traceback" not in err
    assert child.returncode == 1, err  # error_rate_percent: 1 is broken
    report = (tmp_path / "out" / "report.md").read_text()
    assert "error rate" in report
    assert "Failures" in report
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["aggregate"]["failures"] > 0
    assert result["endpoints"][0]["errors"]


def test_a_locustfile_without_users_is_bad_input(tmp_path: Path, demo: DemoService) -> None:
    write(tmp_path / "locustfile.py", "from locust import task\n\nVALUE = 1\n")
    config = write(
        tmp_path / "ci-perf.yml", f"target: {demo.url}\nlocustfile: locustfile.py\nload: {{duration: 2s, warmup: 0s}}\n"
    )
    done = ci_perf("run", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "no User class" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_locustfile_with_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "locustfile.py", "from locust import HttpUser\n\nclass U(HttpUser)\n    pass\n")
    config = write(tmp_path / "ci-perf.yml", "target: http://127.0.0.1:9\nlocustfile: locustfile.py\n")
    done = ci_perf("run", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "locustfile.py:3: syntax error" in done.stderr


def test_extra_locust_args_may_not_override_the_config(tmp_path: Path, demo: DemoService) -> None:
    config = zero_code_config(tmp_path, demo.url)
    done = ci_perf("run", "--config", str(config), "--", "-u", "50", cwd=tmp_path)
    assert done.returncode == 2
    assert "set load.users in the config instead" in done.stderr


def test_a_target_flag_that_is_not_a_url_is_bad_input(tmp_path: Path, demo: DemoService) -> None:
    config = zero_code_config(tmp_path, demo.url)
    done = ci_perf("run", "--config", str(config), "--target", "localhost:8000", cwd=tmp_path)
    assert done.returncode == 2
    assert "--target" in done.stderr


@pytest.mark.parametrize(
    ("signum", "processes"),
    [pytest.param(signal.SIGINT, 1, id="ctrl-c"), pytest.param(signal.SIGTERM, 2, id="cancelled-job-2-processes")],
)
def test_an_interrupt_stops_locust_and_leaves_no_process_behind(
    tmp_path: Path, demo: DemoService, signum: int, processes: int
) -> None:
    config = zero_code_config(tmp_path, demo.url, duration="30s", processes=processes)
    command = f"exec {sys.executable} -m ci_perf.cli run --config {config} --out out"
    child = subprocess.Popen(
        # started as a shell's background job would be: SIGINT ignored, which ci-perf must undo
        ["bash", "-c", f"trap '' INT; {command}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "out" / "locust.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.is_file() and "All users spawned" in log.read_text()):
        time.sleep(0.1)
    assert log.is_file()
    assert "All users spawned" in log.read_text()
    assert len(locust_left(tmp_path / "out")) >= processes  # the check below sees this run's Locust
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and locust_left(tmp_path / "out"):
        time.sleep(0.1)
    assert locust_left(tmp_path / "out") == []


# -- what a run measures besides answered requests (issue 11, items 2, 3, 7, 9) -----------------------------------

HUNG_USER = """\
from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0.01)

    @task(3)
    def products(self):
        self.client.get("/api/products")

    @task(1)
    def product(self):
        self.client.get("/api/products/7", name="/api/products/[id]")  # hangs: the knob below
"""

THINKING_USER = """\
from locust import HttpUser, constant, task


class Reader(HttpUser):
    wait_time = constant(60)  # far beyond the run and its stop_timeout

    @task
    def products(self):
        self.client.get("/api/products")
"""

RAISING_USER = """\
from locust import FastHttpUser, constant, task


class Buyer(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def order(self):
        self.client.get("/api/products")
        raise ValueError("order total is not a number")  # raises here
"""

TWO_HOSTS_USER = """\
from locust import HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0.02)

    @task
    def page(self):
        self.client.get("/api/products")
        self.client.get("{other}/api/products/1")  # a second host: a CDN, a third-party API
"""


def locustfile_config(tmp_path: Path, url: str, locustfile: str, *, load: str) -> Path:
    write(tmp_path / "locustfile.py", locustfile)
    return write(
        tmp_path / "ci-perf.yml",
        f"target: {url}\nlocustfile: locustfile.py\nload: {{{load}}}\nreadiness: {{path: /health, timeout: 5s}}\n",
    )


def test_a_hung_endpoint_shows_up_as_unfinished_with_its_wait_and_fails_the_default_error_limit(
    tmp_path: Path, fresh_demo: DemoService
) -> None:
    fresh_demo.set_knobs({"GET /api/products/{id}": {"latency_ms": 120_000}})
    config = locustfile_config(
        tmp_path, fresh_demo.url, HUNG_USER, load="users: 2, spawn_rate: 2, duration: 3s, warmup: 0s"
    )
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the default error limit fails the hung endpoint
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    (hung,) = [e for e in result["endpoints"] if e["name"] == "GET /api/products/[id]"]
    stats = hung["stats"]
    served = fresh_demo.stats()["counts"]
    assert 1 <= stats["unfinished"] == stats["failures"] == stats["requests"] == served["GET /api/products/{id}"]
    assert stats["p50_ms"] >= 1_000  # the wait so far, never fast: every one waited over a second
    assert stats["max_ms"] <= 1_000 * result["meta"]["duration_s"]
    assert all(w["unfinished"] == 0 for w in hung["windows"][:-1])  # counted in the window where the run ended
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (check,) = [c for c in report["budget"]["checks"] if c["endpoint"] == "GET /api/products/[id]"]
    assert (check["status"], check["source"]) == ("fail", "default")
    assert "unfinished" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("processes", [pytest.param(1, id="one-process"), pytest.param(2, id="two-processes")])
def test_think_time_users_do_not_hold_up_the_end_of_the_run(tmp_path: Path, demo: DemoService, processes: int) -> None:
    load = f"users: 3, spawn_rate: 3, duration: 2s, warmup: 0s, processes: {processes}, stop_timeout: 120s"
    config = locustfile_config(tmp_path, demo.url, THINKING_USER, load=load)
    before = demo.total()
    # Locust's graceful stop would wait out the 60-s think time (up to the 120-s stop_timeout)
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path, timeout=50)
    served = demo.total() - before
    assert done.returncode == 0, done.stderr
    assert requests_in(tmp_path / "out" / "result.json") == served == 3  # one task each, then thinking
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["meta"]["peak_users"] == 3
    assert result["aggregate"]["rps"] == pytest.approx(3 / result["meta"]["measured_s"])
    assert locust_left(tmp_path / "out") == []


def test_a_task_raising_an_exception_shows_in_the_result_and_the_reports(tmp_path: Path, demo: DemoService) -> None:
    load = "users: 2, spawn_rate: 2, duration: 2s, warmup: 0s, processes: 2"
    config = locustfile_config(tmp_path, demo.url, RAISING_USER, load=load)
    before = demo.total()
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    served = demo.total() - before
    assert done.returncode == 1, done.stderr  # the requests are fine; the exceptions fail it, as in Locust
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    (exception,) = result["exceptions"]
    line = RAISING_USER.splitlines().index(next(x for x in RAISING_USER.splitlines() if "# raises here" in x)) + 1
    assert (exception["type"], exception["message"]) == ("ValueError", "order total is not a number")
    assert exception["where"] == f"locustfile.py:{line}"
    assert served - 2 <= exception["count"] <= served  # a user stopped between its request and the raise
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["exceptions"] == result["exceptions"]
    assert "task exception" in report["headline"]
    (check,) = [c for c in report["budget"]["checks"] if c["rule"] == "max_task_exceptions"]
    assert (check["status"], check["measured"]) == ("fail", exception["count"])
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "ValueError" in markdown
    assert "order total is not a number" in markdown
    assert "ValueError" in done.stdout  # the terminal


def test_requests_to_another_host_are_kept_apart_under_that_host(
    tmp_path: Path, demo: DemoService, fresh_demo: DemoService
) -> None:
    other = fresh_demo  # another port on 127.0.0.1: another host
    config = locustfile_config(
        tmp_path, demo.url, TWO_HOSTS_USER.format(other=other.url), load="users: 2, spawn_rate: 2, duration: 2s"
    )
    config.write_text(config.read_text().replace("duration: 2s", "duration: 2s, warmup: 0s"))
    before = demo.total()
    done = ci_perf("run", "--config", str(config), "--out", "out", cwd=tmp_path)
    served, served_other = demo.total() - before, other.total()
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert [e["name"] for e in result["endpoints"]] == ["GET /api/products"]
    assert result["aggregate"]["requests"] == result["endpoints"][0]["stats"]["requests"]
    (elsewhere,) = result["other_hosts"]
    assert elsewhere["host"] == urlsplit(other.url).netloc
    assert elsewhere["name"] == "GET /api/products/1"
    assert sum(w["requests"] for w in elsewhere["windows"]) == served_other > 0
    assert requests_in(tmp_path / "out" / "result.json") == served
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert all(c["endpoint"] != "GET /api/products/1" for c in report["budget"]["checks"])
    assert "Other hosts" in (tmp_path / "out" / "report.md").read_text()
