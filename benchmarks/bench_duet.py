"""Duet benchmark: duet mode next to history mode on the same scenarios, simulated and live.

Simulated (``--simulated``): a shared-noise model (``ci_perf.simulate``, seeded). Each run has a
run-level offset that moves both arms of a duet run alike but differs between runs (sd 3 % quiet;
10 % with a CPU hog, whose share of the machine changes from run to run), and per-window noise
shared by both arms (AR(1), φ 0.5: sd 5 % quiet, 15 % with the hog); each request adds lognormal
noise (σ 0.25). Duet judges the head against the base arm of the same run; history mode judges the
head arm against the base arms of 10 other runs.

Live (``--live``): two instances of the demo service on loopback (same code); the head's
``POST /api/orders`` slowed by a knob (``--effects``, default 0, +5 %, +10 %). ``--runs`` duet runs
per effect, in random order, half of them with a CPU hog (one busy process) running beside them. The
true effect of each knob is the head/base p95 ratio of one long quiet duet run. History mode on the
same runs: each run's head arm against the base arms of the 10 nearest other runs of the same noise
condition. The users are the zero-code ``endpoints:`` (three endpoints, 5-ms think time), or with
``--validating`` a locustfile with the same three tasks whose ``GET /api/products`` task fails about
a fifth of the responses by their content (``catch_response``), as locustfiles that validate do.

Reports per mode × effect × noise: false alarms per report (a verdict on anything not slowed, the
error rate included), power (a p95 regression on the slowed endpoint), 95 % CI coverage of the true
effect, the spread (sd) of the slowed endpoint's p95 log ratio across runs, and its median MDE.
Run: ``make bench-duet`` (about 25 minutes; ``--runs``, ``--seconds`` and ``--effects`` shrink it).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ci_perf.config import Comparison, parse_config, with_comparison
from ci_perf.demo.run import demo_service, set_knobs
from ci_perf.loadtest import runner
from ci_perf.pipeline import run_pipeline
from ci_perf.results import RunResult
from ci_perf.simulate import DUET_SLOWED, Outcome, duet_run, head_only, history_for, verdict_of

SLOWED = DUET_SLOWED
OTHER = "duet (other)"
BASE_MS = 25.0
SETTINGS = Comparison()
CONFIG = """\
endpoints:
  - GET /api/products
  - GET /api/products/42
  - 'POST /api/orders {{"productId": 42}}'
load: {{users: 10, spawn_rate: 10, duration: {seconds}s, warmup: 2s, think_time: 0.005s, stop_timeout: 2s}}
readiness: {{path: /health, timeout: 10s}}
"""
VALIDATING_CONFIG = """\
locustfile: locustfile.py
load: {{users: 10, spawn_rate: 10, duration: {seconds}s, warmup: 2s, stop_timeout: 2s}}
readiness: {{path: /health, timeout: 10s}}
"""
# the zero-code scenario's three endpoints and think time, with a check of the content
VALIDATING_LOCUSTFILE = """\
import random
from locust import FastHttpUser, constant, task

class Shopper(FastHttpUser):
    wait_time = constant(0.005)

    @task
    def products(self):
        with self.client.get("/api/products", catch_response=True) as response:
            product = random.choice(response.json())
            if product["price"] > 17:  # 2 of the 10 products: a failure only this check sees
                response.failure(f"product {product['id']} costs too much")

    @task
    def product(self):
        self.client.get("/api/products/42")

    @task
    def order(self):
        self.client.post("/api/orders", json={"productId": 42})
"""


def _verdict(current: RunResult, history: list[RunResult], truth: float) -> Outcome:
    """Duet when ``current`` carries its base arm (``history`` empty), else history mode."""
    return verdict_of(current, history, slowed=SLOWED, effect=truth, settings=SETTINGS)


# -- simulated ------------------------------------------------------------------------------------


def simulate(runs: int, seed: int) -> dict[tuple[str, float, str], list[Outcome]]:
    outcomes: dict[tuple[str, float, str], list[Outcome]] = {}
    for effect in (0.0, 0.05, 0.10):
        for hog in (False, True):
            batch = [duet_run(effect=effect, hog=hog, seed=seed + 1_000 * i) for i in range(runs)]
            noise = "hog" if hog else "quiet"
            for index, run in enumerate(batch):
                outcomes.setdefault(("duet", effect, noise), []).append(_verdict(run, [], effect))
                history = history_for(batch, index)
                outcomes.setdefault(("history", effect, noise), []).append(_verdict(head_only(run), history, effect))
            seed += 1
    return outcomes


# -- live -----------------------------------------------------------------------------------------


@contextmanager
def cpu_hog(active: bool) -> Iterator[None]:
    """One busy process beside the run (bounded: killed when the run ends)."""
    if not active:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


@contextmanager
def duet_plugin(path: Path | None) -> Iterator[None]:
    """Locust loads ``path`` instead of this tree's duet plugin for the runs inside (two versions compared)."""
    if path is None:
        yield
        return
    saved, runner.DUET = runner.DUET, path
    try:
        yield
    finally:
        runner.DUET = saved


def duet_once(
    base: str, head: str, config_text: str, folder: Path, *, effect: float, hog: bool, plugin: Path | None = None
) -> RunResult:
    set_knobs(head, {SLOWED: {"latency_ms": BASE_MS * (1 + effect)}})
    config = parse_config(config_text, source=folder / "ci-perf.yml")
    config = with_comparison(config.model_copy(update={"target": head}), baseline_target=base)
    with cpu_hog(hog), duet_plugin(plugin):
        outcome = run_pipeline(
            config, out_dir=folder / "out", environ=dict(os.environ), cwd=folder, echo=None, branch="bench"
        )
    return outcome.result


@dataclass(frozen=True)
class Live:
    """The live part's settings (the command line's)."""

    runs: int
    seconds: int
    reference_seconds: int
    seed: int
    effects: list[float]
    validating: bool
    other_duet: Path | None  # every condition also run with this duet plugin, back to back in random order


Done = dict[tuple[str, float, bool], list[RunResult]]  # (mode, effect, hog) → runs


def live(setup: Live) -> tuple[dict, dict[float, float], Done]:  # type: ignore[type-arg]
    config = VALIDATING_CONFIG if setup.validating else CONFIG
    with demo_service() as base, demo_service() as head, tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        (folder / "locustfile.py").write_text(VALIDATING_LOCUSTFILE)
        truth = {0.0: 0.0}
        for effect in [e for e in setup.effects if e]:
            text = config.format(seconds=setup.reference_seconds)
            reference = duet_once(base, head, text, folder, effect=effect, hog=False)
            truth[effect] = _p95(reference, SLOWED) / _p95_arm(reference, SLOWED) - 1
        print(
            "true p95 effect (long duet runs): "
            + ", ".join(f"+{100 * e:.0f} % knob → {100 * t:+.1f} %" for e, t in truth.items()),
            flush=True,
        )
        done = _live_runs(setup, base, head, folder, config.format(seconds=setup.seconds))
    return _judge(done, truth), truth, done


def _live_runs(setup: Live, base: str, head: str, folder: Path, config_text: str) -> Done:
    began = time.perf_counter()
    rng = random.Random(setup.seed)
    conditions = [(e, i % 2 == 1) for e in setup.effects for i in range(setup.runs)]
    rng.shuffle(conditions)
    plugins: list[tuple[str, Path | None]] = [("duet", None)]
    if setup.other_duet is not None:
        plugins.append((OTHER, setup.other_duet))
    done: Done = {}
    for number, (effect, hog) in enumerate(conditions, start=1):
        for mode, plugin in rng.sample(plugins, len(plugins)):
            run = duet_once(base, head, config_text, folder, effect=effect, hog=hog, plugin=plugin)
            done.setdefault((mode, effect, hog), []).append(run)
        print(
            f"run {number}/{len(conditions)} (+{100 * effect:.0f} %, {'hog' if hog else 'quiet'}) "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
    return done


def _judge(done: Done, truth: dict[float, float]) -> dict[tuple[str, float, str], list[Outcome]]:
    """Each duet run on its own; history mode: this tree's runs against the 10 nearest others."""
    outcomes: dict[tuple[str, float, str], list[Outcome]] = {}
    by_noise: dict[tuple[str, bool], list[tuple[float, RunResult]]] = {}
    for (mode, effect, hog), results in done.items():
        by_noise.setdefault((mode, hog), []).extend((effect, r) for r in results)
    for (mode, hog), pairs in by_noise.items():
        pairs.sort(key=lambda pair: pair[1].meta.started_at)
        noise = "hog" if hog else "quiet"
        ordered = [r for _, r in pairs]
        for index, (effect, run) in enumerate(pairs):
            outcomes.setdefault((mode, effect, noise), []).append(_verdict(run, [], truth[effect]))
            if mode == "duet":
                history = history_for(ordered, index)
                outcomes.setdefault(("history", effect, noise), []).append(
                    _verdict(head_only(run), history, truth[effect])
                )
    return outcomes


def _p95(run: RunResult, name: str) -> float:
    value = next(e for e in run.endpoints if e.name == name).stats.p95_ms
    assert value is not None
    return value


def _p95_arm(run: RunResult, name: str) -> float:
    assert run.base is not None
    value = next(e for e in run.base.endpoints if e.name == name).stats.p95_ms
    assert value is not None
    return value


# -- report ---------------------------------------------------------------------------------------


def share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({100 * sum(flags) / max(len(flags), 1):.0f} %)"


def table(outcomes: dict[tuple[str, float, str], list[Outcome]], truth: dict[float, float]) -> str:
    out = io.StringIO()
    out.write(
        "mode         knob   true    noise  runs  false alarms/report  p95 power     95% CI coverage  sd log p95 ratio"
        "  median MDE  mean p95 change\n"
    )
    for mode in ("duet", OTHER, "history"):
        for effect in (0.0, 0.05, 0.10):
            for noise in ("quiet", "hog"):
                rows = outcomes.get((mode, effect, noise), [])
                if not rows:
                    continue
                ratios = [r.log_ratio for r in rows if r.log_ratio is not None]
                spread = statistics.stdev(ratios) if len(ratios) > 1 else float("nan")
                change = math.expm1(statistics.fmean(ratios)) if ratios else float("nan")
                power = share([r.hit for r in rows]) if effect else "–"
                mdes = [r.mde for r in rows if r.mde is not None]
                mde = f"{statistics.median(mdes):.1f} %" if mdes else "–"
                true = 100 * truth.get(effect, effect)
                out.write(
                    f"{mode:12} +{100 * effect:2.0f} %  {true:+5.1f} %  {noise:5}  {len(rows):4d}  "
                    f"{share([r.alarm for r in rows]):>19}  {power:>12}  {share([r.covered for r in rows]):>18}  "
                    f"{100 * spread:6.2f} %  {mde:>10}  {100 * change:+13.1f} %\n"
                )
    return out.getvalue()


def load_table(done: Done) -> str:
    """Per mode: the load each arm got (median over its runs) and the load generator's CPU."""
    by_mode: dict[str, list[RunResult]] = {}
    for (mode, _, _), results in done.items():
        by_mode.setdefault(mode, []).extend(results)
    out = io.StringIO()
    out.write("mode          runs  head rps  base rps  generator CPU (median of runs' medians)\n")
    for mode, results in by_mode.items():
        head = statistics.median(r.aggregate.rps for r in results)
        base = statistics.median(r.base.aggregate.rps for r in results if r.base is not None)
        cpu = [r.meta.generator.cpu_median_percent for r in results if r.meta.generator.cpu_median_percent]
        shown = f"{statistics.median(cpu):.0f} %" if cpu else "–"
        out.write(f"{mode:12}  {len(results):4d}  {head:8.1f}  {base:8.1f}  {shown}\n")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulated", action="store_true", help="only the simulation")
    parser.add_argument("--live", action="store_true", help="only the live runs")
    parser.add_argument("--sim-runs", type=int, default=100, help="simulated runs per effect and noise")
    parser.add_argument("--runs", type=int, default=20, help="live runs per effect (half with the CPU hog)")
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--reference-seconds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--effects", default="0,5,10", help="live knob settings, percent, comma-separated")
    parser.add_argument("--validating", action="store_true", help="live: a locustfile that validates content")
    parser.add_argument(
        "--other-duet",
        type=Path,
        help="live: run every condition also with this duet plugin (another version of loadtest/plugins/duet.py), "
        f"back to back in random order; its rows say {OTHER!r}",
    )
    args = parser.parse_args()
    both = not (args.simulated or args.live)
    if args.simulated or both:
        began = time.perf_counter()
        print("simulated (shared-noise model):")
        print(table(simulate(args.sim_runs, args.seed), {}), f"({time.perf_counter() - began:.0f} s)", flush=True)
    if args.live or both:
        began = time.perf_counter()
        effects = [float(e) / 100 for e in args.effects.split(",")]
        setup = Live(
            args.runs, args.seconds, args.reference_seconds, args.seed, effects, args.validating, args.other_duet
        )
        outcomes, truth, done = live(setup)
        users = "a validating locustfile" if args.validating else "endpoints:"
        print(f"live ({args.seconds}-s runs, 10 users, {users}, two demo services on loopback):")
        print(table(outcomes, truth), f"({time.perf_counter() - began:.0f} s)")
        print(load_table(done))


if __name__ == "__main__":
    main()
