"""Real Locust: its own settings refused wherever it reads them, pytest-style files, users that cannot start.

The option table of ``ci_perf.loadtest.locust_config`` is checked against Locust's own parser, in a
subprocess (``import locust`` patches the interpreter with gevent).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ci_perf.errors import InputError
from ci_perf.loadtest.locust_config import LOCUST_OPTIONS, OWNED, check_config_files, config_files, options_in_args
from tests.conftest import DemoService, write

# Locust's parser, in a child: each line of stdin is a JSON list of arguments; for each, the long
# options whose value differs from the default (or "error" when argparse refuses them)
PARSE = """
import json, sys
from locust.argument_parser import get_parser
defaults = vars(get_parser(default_config_files=[]).parse_known_args(["-f", "x.py"])[0])
for line in sys.stdin:
    parser = get_parser()
    try:
        parsed = vars(parser.parse_known_args(["-f", "x.py", *json.loads(line)])[0])
    except SystemExit:
        print(json.dumps("error"))
        continue
    actions = [a for a in parser._actions if a.option_strings]
    by_dest = {a.dest: [o for o in a.option_strings if o.startswith("--")][0] for a in actions}
    print(json.dumps(sorted(by_dest[d] for d, v in parsed.items() if d in by_dest and v != defaults.get(d))))
"""
TABLE = """
import json
from locust.argument_parser import get_parser
def row(a):
    short = [o for o in a.option_strings if len(o) == 2]
    long = [o for o in a.option_strings if o.startswith("--")][0]
    return [long, short[0] if short else None, a.nargs != 0, getattr(a, "env_var", None)]
print(json.dumps([row(a) for a in get_parser()._actions if a.option_strings]))
"""


def locusts_view(args_list: list[list[str]], *, cwd: Path, home: Path) -> list[object]:
    env = {**os.environ, "HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("LOCUST_")}
    done = subprocess.run(
        [sys.executable, "-c", PARSE],
        input="".join(json.dumps(args) + "\n" for args in args_list),
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_option_table_is_locusts_own() -> None:
    done = subprocess.run([sys.executable, "-c", TABLE], capture_output=True, text=True, timeout=60, check=True)
    locusts = {tuple(row) for row in json.loads(done.stdout)}
    ours = {(o.long, o.short, o.value, o.env) for o in LOCUST_OPTIONS}
    assert ours == locusts


SPELLINGS = [
    ["-u10"], ["-u", "10"], ["--users=10"], ["--user", "10"], ["--us", "10"], ["-t3s"], ["--run-t", "3s"],
    ["-r", "2"], ["--spawn", "2"], ["-s5"], ["--stop", "5"], ["-Hhttp://x"], ["--ho", "http://x"], ["--proc", "2"],
    ["--exit", "3"], ["--master"], ["--worker"], ["--expect-w", "2"], ["--tags", "x"], ["-T", "x"], ["--csv", "o"],
    ["--headless"], ["--only-summary"], ["--reset-stats"], ["--html", "r.html"], ["-E", "slow"], ["-L", "DEBUG"],
    ["--logf", "x.log"], ["-P", "9"], ["--web-port=9"], ["--autostart"], ["Shopper"],
]  # fmt: skip


def test_every_spelling_locust_takes_for_an_owned_option_is_refused(tmp_path: Path) -> None:
    views = locusts_view(SPELLINGS, cwd=tmp_path, home=tmp_path)
    for args, locust_sets in zip(SPELLINGS, views, strict=True):
        ours = sorted({o.long for _, o, _ in options_in_args(args)} - {"--locustfile"})
        if locust_sets == "error":  # ambiguous to argparse: refused by ci-perf as well, in more words
            assert ours, args
            assert all(o in OWNED for o in ours), args
            continue
        assert ours == locust_sets, args


CONF_FILES = [
    ("locust.conf", "run-time = 8s\n"),
    ("locust.conf", "[locust]\nuser: 3\ntags = [a, b]\n"),
    ("locust.conf", "headless = true\nonly-summary\n"),
    ("locust.conf", "master = false\ncsv = out\n"),
    ("pyproject.toml", "[tool.locust]\nprocesses = 4\n"),
    ("pyproject.toml", '[tool.locust]\ntags = ["a"]\nhtml = "r.html"\n'),
    ("home/.locust.conf", "spawn-rate = 3\n"),
]


@pytest.mark.parametrize(("name", "text"), CONF_FILES)
def test_a_config_file_is_refused_exactly_when_locust_would_take_an_owned_option_from_it(
    tmp_path: Path, name: str, text: str
) -> None:
    write(tmp_path / name, text)
    (locust_sets,) = locusts_view([[]], cwd=tmp_path, home=tmp_path / "home")
    assert isinstance(locust_sets, list)
    owned = [o for o in locust_sets if o in OWNED]
    files = config_files(cwd=tmp_path, environ={"HOME": str(tmp_path / "home")})
    if owned:
        with pytest.raises(InputError, match=f"sets Locust's {owned[0]},"):
            check_config_files(files, cwd=tmp_path)
    else:
        check_config_files(files, cwd=tmp_path)


def ci_perf(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_perf.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


ENDPOINTS = "endpoints: [GET /api/products]\nreadiness: {path: /health, timeout: 10s}\n"


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        pytest.param(
            {"locust.conf": "run-time = 8s\n"}, [],
            "locust.conf (run-time = 8s) sets Locust's --run-time, which ci-perf owns: set load.duration in the "
            "config and remove run-time from locust.conf", id="locust-conf",
        ),
        pytest.param(
            {"pyproject.toml": "[tool.locust]\nusers = 10\n"}, [],
            "pyproject.toml [tool.locust] (users = 10) sets Locust's --users", id="pyproject",
        ),
        pytest.param(
            {"LOCUST_RUN_TIME": "3s"}, [],
            "the environment variable LOCUST_RUN_TIME='3s' sets Locust's --run-time", id="variable",
        ),
        pytest.param(
            {}, ["--", "-u10", "-t3s"], "extra Locust argument '-u10' sets Locust's --users", id="compact-flags"
        ),
    ],
)  # fmt: skip
def test_locusts_own_settings_are_refused_before_any_load(
    tmp_path: Path, fresh_demo: DemoService, setup: dict[str, str], extra: list[str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    for name, value in setup.items():
        if name.startswith("LOCUST_"):
            env[name] = value
        else:
            write(tmp_path / name, value)
    write(tmp_path / "ci-perf.yml", ENDPOINTS + "load: {users: 2, duration: 20s, warmup: 1s}\n")
    done = ci_perf("run", "--target", fresh_demo.url, "--out", "out", *extra, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert f"ci-perf: error: {message}" in done.stderr
    assert fresh_demo.total() == 0


PYTEST_STYLE = """\
def test_browse(session):
    session.get("/api/products")
    session.get("/api/products/42", name="/api/products/[id]")
"""
# what a repository's test settings may say, none of which may stop its pytest-style locustfile
HOSTILE_PYPROJECT = """\
[tool.pytest.ini_options]
filterwarnings = ["error"]
required_plugins = ["pytest-not-installed"]
minversion = "99"
strict = true
asyncio_mode = "auto"
addopts = "--cov"
"""


def test_a_pytest_style_locustfile_runs_whatever_the_pyproject_says(tmp_path: Path, fresh_demo: DemoService) -> None:
    write(tmp_path / "pyproject.toml", HOSTILE_PYPROJECT)
    write(tmp_path / "perf" / "test_load.py", PYTEST_STYLE)
    write(
        tmp_path / "ci-perf.yml",
        "locustfile: perf/test_load.py\nload: {users: 2, duration: 3s, warmup: 1s}\nreadiness: {path: /health}\n",
    )
    validated = ci_perf("validate", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert "perf/test_load.py: pytest-style users test_browse" in validated.stdout
    done = ci_perf("run", "--target", fresh_demo.url, "--out", "out", cwd=tmp_path)
    assert done.returncode in {0, 1}, done.stderr  # measured (the gate's verdict is not this test's)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {e["name"] for e in result["endpoints"]} == {"GET /api/products", "GET /api/products/[id]"}
    assert sum(w["requests"] for e in result["endpoints"] for w in e["windows"]) == fresh_demo.total()
    assert not (tmp_path / ".pytest_cache").exists()


FAILING_USER = """\
import os

from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0.1)

    def {phase}(self, *args, **kwargs):
        {call_super}
        self.api_host = os.environ["API_HOST_NOT_SET"]

    @task
    def products(self):
        self.client.get("/api/products")
"""


@pytest.mark.parametrize(
    ("phase", "processes"),
    [pytest.param("__init__", 1, id="init"), pytest.param("on_start", 2, id="on-start-in-a-worker")],
)
def test_a_user_class_that_cannot_start_ends_the_run_at_once_with_its_exception(
    tmp_path: Path, demo: DemoService, phase: str, processes: int
) -> None:
    call_super = "super().__init__(*args, **kwargs)" if phase == "__init__" else "pass"
    write(tmp_path / "locustfile.py", FAILING_USER.format(phase=phase, call_super=call_super))
    write(
        tmp_path / "ci-perf.yml",
        f"locustfile: locustfile.py\nload: {{users: 2, duration: 120s, warmup: 1s, processes: {processes}}}\n"
        "readiness: {path: /health}\n",
    )
    done = ci_perf("run", "--target", demo.url, "--out", "out", cwd=tmp_path, timeout=60)  # long before 120 s
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"ci-perf: error: user class Shopper raised KeyError: 'API_HOST_NOT_SET' (locustfile.py:11) in {phase}, so "
        "none of its users can run; ci-perf stopped the run at once: fix the locustfile, or what it reads "
        "(environment variables, files)"
    )


def test_validate_loads_the_locustfile_and_names_what_is_missing(tmp_path: Path) -> None:
    write(tmp_path / "locustfile.py", "from locust import HttpUser, task\n\nVALUE = 1\n")
    write(tmp_path / "ci-perf.yml", "locustfile: locustfile.py\n")
    done = ci_perf("validate", cwd=tmp_path)
    assert done.returncode == 2
    assert "locustfile locustfile.py defines no User class" in done.stderr
    write(tmp_path / "locustfile.py", "import os\n\nHOST = os.environ['API_HOST_NOT_SET']\n")
    done = ci_perf("validate", cwd=tmp_path)
    assert done.returncode == 2
    assert "importing it raised KeyError: 'API_HOST_NOT_SET' (locustfile.py:3)" in done.stderr


class _NotYet(BaseHTTPRequestHandler):
    """A service that is not ready: 503 to every request, counted."""

    polls = 0

    def do_GET(self) -> None:
        type(self).polls += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_ctrl_c_in_the_readiness_wait_says_that_no_load_was_sent(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotYet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    write(tmp_path / "ci-perf.yml", f"target: {url}\n{ENDPOINTS.replace('10s', '60s')}")
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "ci_perf.cli", "run", "--out", "out"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _NotYet.polls == 0:  # ci-perf is in the readiness wait
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert child.returncode == 130
    assert err.strip() == f"ci-perf: interrupted; no load was sent: the target was not ready yet ({url})"
    assert not (tmp_path / "out" / "locust.log").exists()
