"""``ci-perf demo``: the whole product on one machine in a few minutes.

History mode: starts the bundled demo service on a free loopback port (and, when a
``prometheus`` binary is found, a Prometheus scraping it every second), records five
baseline runs on ``main`` into a fresh local store, switches on an N+1 in
``POST /api/orders`` (each query once per order line: +30 % latency), runs the candidate,
prints the report and writes it to the out directory. With Prometheus the report's server
side shows the N+1 as a database budget violation.
Duet mode: two instances of the service, the head one with ``GET /api/products``
10 % slower, measured in one run (every request to both); its report goes to
``<out>/duet``. Every service is stopped, whatever happens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

import httpx

from ci_perf.config import Config, parse_config, with_comparison
from ci_perf.demo.prometheus import demo_prometheus, stop
from ci_perf.errors import EnvironmentFailure
from ci_perf.pipeline import ProgressLine, RunOutcome, run_pipeline

DEMO_CONFIG = Path(__file__).with_name("ci-perf.yml")
PROFILES = Path(__file__).with_name("profiles")
BREAKPOINT_CAPACITY = 7  # requests in flight the demo service takes in the breakpoint demo
BASELINE_RUNS = 5
SLOWED_ROUTE = "POST /api/orders"
N_PLUS_ONE = 2  # the candidate runs each of the route's queries once per order line: +30 % latency
DUET_ROUTE = "GET /api/products"
DUET_SLOWDOWN = 1.10
DUET_DURATION_S = 20.0  # per-endpoint p95 needs ~200 requests per batch and ≥ 4 batches


@contextmanager
def demo_service(knobs: Mapping[str, object] | None = None) -> Iterator[str]:
    """Run the demo service in a child process; yield its base URL; always stop it.

    Its stderr goes to a file, not a pipe: nobody reads a pipe while the service runs, and a full one
    (a burst of "connection reset" tracebacks when Locust ends) would block it.
    """
    command = [sys.executable, "-m", "ci_perf.demo.service", "--port", "0", "--knobs", json.dumps(knobs or {})]
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)  # noqa: S603
        try:
            line = child.stdout.readline() if child.stdout else ""
            if "listening on " not in line:
                with suppress(subprocess.TimeoutExpired):  # its last words, if it is ending
                    child.wait(timeout=5)
                errors.seek(0)
                error = errors.read().strip() or line.strip() or "no output"
                raise EnvironmentFailure(f"the demo service did not start: {error}")
            yield line.rsplit("listening on ", 1)[1].strip()
        finally:
            stop(child, timeout=5)
            if child.stdout:
                child.stdout.close()


def set_knobs(base_url: str, changes: Mapping[str, object]) -> dict[str, object]:
    response = httpx.post(f"{base_url}/__knobs", json=changes, timeout=5)
    response.raise_for_status()
    state: dict[str, object] = response.json()
    return state


def set_control(base_url: str, changes: Mapping[str, object]) -> None:
    httpx.post(f"{base_url}/__control", json=changes, timeout=5).raise_for_status()


def demo_config(target: str, store: Path, source: Path = DEMO_CONFIG, *, prometheus: str | None = None) -> Config:
    """The config at ``source`` for ``target``; its ``server_metrics`` asks ``prometheus``, or goes without one."""
    config = parse_config(source.read_text(encoding="utf-8"), source=source)
    server = config.gate.server_metrics
    if server is not None:
        server = server.model_copy(update={"prometheus": prometheus}) if prometheus else None
    return config.model_copy(
        update={
            "target": target,
            "store": config.store.model_copy(update={"path": str(store)}),
            "gate": config.gate.model_copy(update={"server_metrics": server}),
        }
    )


def _candidate(
    config: Config, *, out_dir: Path, environ: Mapping[str, str], stream: TextIO, progress: ProgressLine | None
) -> RunOutcome:
    """A run judged and printed like a pull request's (branch ``demo-candidate``, never recorded)."""
    return _demo_run(config, out_dir=out_dir, environ=environ, echo=stream, progress=progress)


def _demo_run(
    config: Config,
    *,
    out_dir: Path,
    environ: Mapping[str, str],
    echo: TextIO | None,
    progress: ProgressLine | None,
    branch: str = "demo-candidate",
    record: bool = False,
) -> RunOutcome:
    return run_pipeline(
        config,
        out_dir=out_dir,
        record=record,
        branch=branch,
        environ=environ,
        cwd=Path.cwd(),
        progress=progress,
        echo=echo,
    )


def run_profile_demo(
    profile: str, *, out_dir: Path, environ: Mapping[str, str], stream: TextIO, progress: ProgressLine | None
) -> int:
    """One run of ``profiles/<profile>.yml`` against a fresh demo service."""
    source = PROFILES / f"{profile}.yml"
    with demo_service() as url:
        if profile == "breakpoint":
            set_control(url, {"max_inflight": BREAKPOINT_CAPACITY})
        config = demo_config(url, out_dir / "store", source)
        stream.write(f"ci-perf demo: profile {profile} ({source}) against {url}\n\n")
        outcome = _candidate(config, out_dir=out_dir, environ=environ, stream=stream, progress=progress)
    stream.write(f"\nci-perf demo: wrote {out_dir / 'report.md'}\n")
    return outcome.exit_code


def run_demo(
    *,
    out_dir: Path,
    environ: Mapping[str, str],
    stream: TextIO,
    progress: ProgressLine | None,
    profile: str | None = None,
) -> int:
    if profile:
        run_profile_demo(profile, out_dir=out_dir / profile, environ=environ, stream=stream, progress=progress)
        return 0
    store = out_dir / "store"
    shutil.rmtree(store, ignore_errors=True)
    with (
        demo_service() as url,
        demo_prometheus([url.removeprefix("http://")], environ=environ, stream=stream) as prometheus,
    ):
        config = demo_config(url, store, prometheus=prometheus)
        scraped = f" and Prometheus on {prometheus} scraping it every second" if prometheus else ""
        stream.write(f"ci-perf demo: service on {url}{scraped}; recording {BASELINE_RUNS} baseline runs on 'main'\n")
        _record_baselines(config, out_dir=out_dir, environ=environ, stream=stream, progress=progress)
        stream.write(_switch_on_n_plus_one(url))
        outcome = _candidate(config, out_dir=out_dir, environ=environ, stream=stream, progress=progress)
    stream.write(
        f"\nci-perf demo: wrote {out_dir / 'result.json'}, {out_dir / 'report.md'}, {out_dir / 'report.json'}, "
        f"{out_dir / 'metrics.prom'}; `ci-perf run` would exit {outcome.exit_code} "
        f"({'gate failed' if outcome.exit_code else 'pass'})\n"
    )
    run_duet_demo(out_dir=out_dir / "duet", environ=environ, stream=stream, progress=progress)
    return 0


def _record_baselines(
    config: Config, *, out_dir: Path, environ: Mapping[str, str], stream: TextIO, progress: ProgressLine | None
) -> None:
    for number in range(1, BASELINE_RUNS + 1):
        outcome = _demo_run(
            config,
            out_dir=out_dir / f"baseline-{number}",
            environ=environ,
            echo=None,
            progress=progress,
            branch="main",
            record=True,
        )
        stats = outcome.result.aggregate
        stream.write(
            f"\nci-perf demo: baseline {number}/{BASELINE_RUNS}: {stats.requests:,} requests, "
            f"p95 {stats.p95_ms or 0:.1f} ms, {stats.rps:.0f} rps\n"
        )


def _switch_on_n_plus_one(url: str) -> str:
    """The candidate's change: ``SLOWED_ROUTE`` runs its queries ``N_PLUS_ONE`` times; what to print about it."""
    knob = set_knobs(url, {SLOWED_ROUTE: {"n_plus_one": N_PLUS_ONE}})["knobs"][SLOWED_ROUTE]  # type: ignore[index]
    queries, query_ms, latency = int(knob["queries"]), float(knob["query_ms"]), float(knob["latency_ms"])
    slower = latency + (N_PLUS_ONE - 1) * queries * query_ms
    return (
        f"ci-perf demo: candidate: an N+1 in {SLOWED_ROUTE}: its {queries} queries run once per order line "
        f"({queries * N_PLUS_ONE} queries of {query_ms:g} ms), {latency:g} → {slower:g} ms "
        f"(+{(slower / latency - 1) * 100:.0f} %)\n\n"
    )


def run_duet_demo(*, out_dir: Path, environ: Mapping[str, str], stream: TextIO, progress: ProgressLine | None) -> int:
    """Both deployments in one run: the head instance has ``DUET_ROUTE`` slowed by 10 %."""
    with demo_service() as base_url:
        latency = float(set_knobs(base_url, {})["knobs"][DUET_ROUTE]["latency_ms"])  # type: ignore[index]
        slowed = {DUET_ROUTE: {"latency_ms": latency * DUET_SLOWDOWN}}
        with demo_service(slowed) as head_url:
            config = demo_config(head_url, out_dir / "store")
            config = with_comparison(config, baseline_target=base_url)
            config = config.model_copy(update={"load": config.load.model_copy(update={"duration": DUET_DURATION_S})})
            stream.write(
                f"\nci-perf demo: duet: base {base_url}, head {head_url} with {DUET_ROUTE} slowed from {latency:g} "
                f"to {latency * DUET_SLOWDOWN:g} ms (+{(DUET_SLOWDOWN - 1) * 100:.0f} %); every request goes to "
                f"both, {DUET_DURATION_S:g} s\n\n"
            )
            outcome = _candidate(config, out_dir=out_dir, environ=environ, stream=stream, progress=progress)
    stream.write(f"\nci-perf demo: duet report in {out_dir / 'report.md'}\n")
    return outcome.exit_code
