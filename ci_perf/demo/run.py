"""``ci-perf demo``: the whole product on one machine in about a minute.

History mode: starts the bundled demo service on a free loopback port, records
five baseline runs on ``main`` into a fresh local store, slows ``POST /api/orders``
by 30 %, runs the candidate, prints the report and writes it to the out directory.
Duet mode: two instances of the service, the head one with ``GET /api/products``
10 % slower, measured in one run (every request to both); its report goes to
``<out>/duet``. Every service is stopped, whatever happens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import httpx

from ci_perf.config import Config, parse_config, with_comparison
from ci_perf.errors import EnvironmentFailure
from ci_perf.pipeline import ProgressLine, RunOutcome, run_pipeline

DEMO_CONFIG = Path(__file__).with_name("ci-perf.yml")
PROFILES = Path(__file__).with_name("profiles")
BREAKPOINT_CAPACITY = 7  # requests in flight the demo service takes in the breakpoint demo
BASELINE_RUNS = 5
SLOWED_ROUTE = "POST /api/orders"
SLOWDOWN = 1.30
DUET_ROUTE = "GET /api/products"
DUET_SLOWDOWN = 1.10
DUET_DURATION_S = 20.0  # per-endpoint p95 needs ~200 requests per batch and ≥ 4 batches


@contextmanager
def demo_service(knobs: Mapping[str, object] | None = None) -> Iterator[str]:
    """Run the demo service in a child process; yield its base URL; always stop it."""
    command = [sys.executable, "-m", "ci_perf.demo.service", "--port", "0", "--knobs", json.dumps(knobs or {})]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        line = child.stdout.readline() if child.stdout else ""
        if "listening on " not in line:
            error = child.stderr.read() if child.stderr else ""
            raise EnvironmentFailure(f"the demo service did not start: {error.strip() or line.strip() or 'no output'}")
        yield line.rsplit("listening on ", 1)[1].strip()
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def set_knobs(base_url: str, changes: Mapping[str, object]) -> dict[str, object]:
    response = httpx.post(f"{base_url}/__knobs", json=changes, timeout=5)
    response.raise_for_status()
    state: dict[str, object] = response.json()
    return state


def set_control(base_url: str, changes: Mapping[str, object]) -> None:
    httpx.post(f"{base_url}/__control", json=changes, timeout=5).raise_for_status()


def demo_config(target: str, store: Path, source: Path = DEMO_CONFIG) -> Config:
    config = parse_config(source.read_text(encoding="utf-8"), source=source)
    return config.model_copy(update={"target": target, "store": config.store.model_copy(update={"path": str(store)})})


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
    with demo_service() as url:
        config = demo_config(url, store)
        stream.write(f"ci-perf demo: service on {url}; recording {BASELINE_RUNS} baseline runs on 'main'\n")
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
        knobs = set_knobs(url, {})["knobs"]
        latency = float(knobs[SLOWED_ROUTE]["latency_ms"])  # type: ignore[index]
        set_knobs(url, {SLOWED_ROUTE: {"latency_ms": latency * SLOWDOWN}})
        stream.write(
            f"ci-perf demo: candidate: {SLOWED_ROUTE} slowed from {latency:g} to {latency * SLOWDOWN:g} ms "
            f"(+{(SLOWDOWN - 1) * 100:.0f} %)\n\n"
        )
        outcome = _candidate(config, out_dir=out_dir, environ=environ, stream=stream, progress=progress)
    stream.write(
        f"\nci-perf demo: wrote {out_dir / 'result.json'}, {out_dir / 'report.md'}, {out_dir / 'report.json'}; "
        f"`ci-perf run` would exit {outcome.exit_code} ({'gate failed' if outcome.exit_code else 'pass'})\n"
    )
    run_duet_demo(out_dir=out_dir / "duet", environ=environ, stream=stream, progress=progress)
    return 0


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
