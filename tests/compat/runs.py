"""One compatibility case run through the real ``ci-perf run`` against httpbin, and what each side counted.

A case is a locustfile of tests/compat/locustfiles/ plus the few settings it needs. Its run happens
once per session (``CaseRuns``) and every test of that case reads the same run: what ci-perf wrote
(``result.json``, ``report.json``, ``report.md``, exit code, output) and what httpbin logged meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.httpbin import READINESS_PATH, Httpbin

LOCUSTFILES = Path(__file__).parent / "locustfiles"
OTHER_HOST_VARIABLE = "COMPAT_OTHER_HOST"  # second_host.py reads the other server's URL from it


@dataclass(frozen=True)
class Case:
    """A locustfile and how it is run: ``duration`` and ``load`` go into ``load:``, ``locust_args`` after ``--``."""

    locustfile: str
    users: int = 2
    duration: str = "1s"
    load: str = ""
    locust_args: tuple[str, ...] = ()
    config: str = ""
    files: tuple[tuple[str, str], ...] = ()  # (name, text) of more files beside the config: locust.conf, pyproject
    names: tuple[tuple[str, str], ...] = ()  # (request, endpoint) where the locustfile groups requests by name=
    timeout_s: float = 60.0  # then ci-perf is interrupted (Ctrl-C), as a user would
    hangs: bool = False  # requests outlive the run: httpbin logs them when they end, up to 10 s later

    @property
    def path(self) -> Path:
        return LOCUSTFILES / f"{self.locustfile}.py"

    def line_of(self, marker: str) -> int:
        """The line of the locustfile that contains ``marker`` (where an exception is raised)."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return next(number for number, line in enumerate(lines, start=1) if marker in line)


@dataclass
class Servers:
    head: Httpbin
    base: Httpbin  # duet's base deployment
    other: Httpbin  # the second host of second_host.py


@dataclass
class CaseRun:
    case: Case
    returncode: int
    stdout: str
    stderr: str
    directory: Path
    result: dict[str, Any] | None
    report: dict[str, Any] | None
    counted: Counter[str]  # ci-perf, target endpoints: "GET /get" → requests (warm-up included)
    served: Counter[str]  # httpbin (target) for the same run, grouped by the case's names
    served_requests: Counter[str]  # the same, each request as sent (not grouped)
    counted_other: Counter[str]  # ci-perf, requests to other hosts, keyed by path like httpbin's log
    served_other: Counter[str]  # the other host, for the same run (its base twins' calls too, in duet mode)
    counted_base: Counter[str] = field(default_factory=Counter)  # duet: ci-perf's base arm
    served_base: Counter[str] = field(default_factory=Counter)

    @property
    def markdown(self) -> str:
        return (self.directory / "out" / "report.md").read_text(encoding="utf-8")

    def endpoint(self, name: str) -> dict[str, Any]:
        assert self.result is not None, self.stderr
        (found,) = [e for e in self.result["endpoints"] if e["name"] == name]
        return found


def config_text(case: Case, *, target: str) -> str:
    load = f"users: {case.users}, spawn_rate: 20, duration: {case.duration}, warmup: 0s, stop_timeout: 2s"
    return (
        f"target: {target}\n"
        f"locustfile: {case.path.name}\n"
        f"load: {{{load}{', ' + case.load if case.load else ''}}}\n"
        f"readiness: {{path: {READINESS_PATH}, timeout: 10s}}\n"
        "comparison: {confirm_runs: 0}\n"  # counts are checked against one run's access log: no confirm re-runs
        f"{case.config}"
    )


def prepare(case: Case, directory: Path, *, target: str) -> Path:
    """A user's project: the locustfile, ci-perf.yml and the case's other files; returns the config."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(case.path, directory / case.path.name)
    for name, text in case.files:
        (directory / name).write_text(text, encoding="utf-8")
    config = directory / "ci-perf.yml"
    config.write_text(config_text(case, target=target), encoding="utf-8")
    return config


def run_case(case: Case, directory: Path, servers: Servers, *, duet: bool = False) -> CaseRun:
    config = prepare(case, directory, target=servers.head.url)
    command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--out", "out", "--quiet"]
    if duet:
        command += ["--baseline-target", servers.base.url]
    if case.locust_args:
        command += ["--", *case.locust_args]
    since = {"head": servers.head.offset(), "base": servers.base.offset(), "other": servers.other.offset()}
    env = {**os.environ, OTHER_HOST_VARIABLE: servers.other.url}
    returncode, stdout, stderr = _run(command, cwd=directory, env=env, timeout=case.timeout_s)
    result = _read_json(directory / "out" / "result.json")
    report = _read_json(directory / "out" / "report.json")
    wait_s = 15.0 if case.hangs else 5.0
    counted, counted_other = split_by_host(result.get("endpoints", []) if result else [])
    counted_other += counts_of(result.get("other_hosts", []) if result else [])
    base_endpoints = (result.get("base") or {}).get("endpoints", []) if result else []
    counted_base, _ = split_by_host(base_endpoints)
    return CaseRun(
        case=case,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        directory=directory,
        result=result,
        report=report,
        counted=counted,
        served=servers.head.wait_for(counted, since=since["head"], names=dict(case.names), timeout=wait_s),
        served_requests=servers.head.requests_since(since["head"]),
        counted_other=counted_other,
        # in duet mode each twin calls the other host too, and only the head's calls are reported: no wait
        served_other=servers.other.wait_for(counted_other, since=since["other"], timeout=0 if duet else wait_s),
        counted_base=counted_base,
        served_base=servers.base.wait_for(counted_base, since=since["base"], names=dict(case.names), timeout=wait_s),
    )


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run ``ci-perf``; past the timeout, Ctrl-C it, so that it ends its Locust process group too."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate()
        stderr += f"\n[compat] ci-perf ran past {timeout:.0f} s and was interrupted"
    return process.returncode, stdout, stderr


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def request_key(name: str) -> tuple[str, bool]:
    """``"GET /get"`` → (``"GET /get"``, on the target); ``"GET http://h:1/a?b"`` → (``"GET /a?b"``, elsewhere)."""
    method, _, target = name.partition(" ")
    if target.startswith("/"):
        return name, True
    url = urlsplit(target)
    return f"{method} {url.path or '/'}{'?' + url.query if url.query else ''}", False


def counts_of(endpoints: list[dict[str, Any]]) -> Counter[str]:
    """Every request of these endpoints, warm-up windows included, keyed by path as httpbin logs it."""
    counts: Counter[str] = Counter()
    for endpoint in endpoints:
        counts[request_key(endpoint["name"])[0]] += sum(w["requests"] for w in endpoint["windows"])
    return counts


def split_by_host(endpoints: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """The target's endpoints and those named by an absolute URL (another host, before issue 11 item 9)."""
    target = [e for e in endpoints if request_key(e["name"])[1] and not e.get("host")]
    elsewhere = [e for e in endpoints if e not in target]
    return counts_of(target), counts_of(elsewhere)
