"""Detection benchmark, live: real Locust against the demo service on loopback.

1. Reference: one long run at each condition (no change, +10 %, +25 % server latency on
   ``POST /api/orders``) defines the true end-to-end p95 effect of each knob setting.
2. History: 10 baseline runs recorded at the base condition.
3. Pairs, in random order: a base run (A) then a candidate run (B) at the pair's condition;
   B is judged against A (single-baseline mode) and against the 10 most recent base runs
   (history mode). 20 pairs per condition.

Reports false alarms per report (A/A), power at each effect (a p95 regression verdict on the
slowed endpoint), and the coverage of the 95 % interval of the reference effect.
Run: ``make bench-detect-live`` (about 28 minutes; ``--pairs`` and ``--seconds`` shrink it).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from pathlib import Path

from ci_perf.analysis.compare import compare_runs
from ci_perf.config import Comparison, parse_config
from ci_perf.demo.run import demo_service, set_knobs
from ci_perf.pipeline import run_pipeline
from ci_perf.results import RunResult

SLOWED = "POST /api/orders"
BASE_MS = 25.0
CONFIG = """\
endpoints:
  - GET /api/products
  - GET /api/products/42
  - 'POST /api/orders {{"productId": 42}}'
load: {{users: 10, spawn_rate: 10, duration: {seconds}s, warmup: 2s, think_time: 0.005s, stop_timeout: 2s}}
readiness: {{path: /health, timeout: 10s}}
"""


def one_run(url: str, config_text: str, folder: Path, effect: float) -> RunResult:
    set_knobs(url, {SLOWED: {"latency_ms": BASE_MS * (1 + effect)}})
    config = parse_config(config_text, source=folder / "ci-perf.yml")
    config = config.model_copy(update={"target": url})
    outcome = run_pipeline(
        config, out_dir=folder / "out", environ=dict(os.environ), cwd=folder, echo=None, branch="bench", progress=None
    )
    return outcome.result


def p95_of(result: RunResult) -> float:
    endpoint = next(e for e in result.endpoints if e.name == SLOWED)
    assert endpoint.stats.p95_ms is not None
    return endpoint.stats.p95_ms


def verdicts(current: RunResult, baseline: list[RunResult], truth: float) -> tuple[bool, bool, bool]:
    """(false alarm elsewhere, p95 regression on the slowed endpoint, interval covers the truth)."""
    report = compare_runs(current, baseline, settings=Comparison())
    slowed = report.for_endpoint(SLOWED)
    assert slowed is not None
    p95 = slowed.metrics["p95"]
    if truth:  # verdicts on the slowed endpoint and on the aggregate (which contains it) are true
        others = [
            m for e in report.endpoints if e.endpoint not in {SLOWED, "(all endpoints)"} for m in e.metrics.values()
        ]
    else:
        others = [m for e in report.endpoints for m in e.metrics.values()]
    alarm = any(m.verdict in {"regression", "improvement"} for m in others)
    covered = p95.ci_low is not None and p95.ci_high is not None and p95.ci_low <= 100 * truth <= p95.ci_high
    return alarm, p95.verdict == "regression", covered


def share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({100 * sum(flags) / max(len(flags), 1):.0f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="pairs per condition")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    parser.add_argument("--reference-seconds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    effects = [0.0, 0.10, 0.25]
    began = time.perf_counter()
    with demo_service() as url, tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        config_text = CONFIG.format(seconds=args.seconds)
        reference_text = CONFIG.format(seconds=args.reference_seconds)
        reference = {e: p95_of(one_run(url, reference_text, folder, e)) for e in effects}
        truth = {e: reference[e] / reference[0.0] - 1 for e in effects}
        print(
            "reference p95 effect of each knob setting: "
            + ", ".join(f"+{100 * e:.0f} % knob → {100 * t:+.1f} %" for e, t in truth.items())
        )
        history = [one_run(url, config_text, folder, 0.0) for _ in range(10)]
        conditions = [e for e in effects for _ in range(args.pairs)]
        random.Random(args.seed).shuffle(conditions)
        outcomes: dict[str, dict[float, list[tuple[bool, bool, bool]]]] = {"single": {}, "history": {}}
        for number, effect in enumerate(conditions, start=1):
            base = one_run(url, config_text, folder, 0.0)
            candidate = one_run(url, config_text, folder, effect)
            outcomes["single"].setdefault(effect, []).append(verdicts(candidate, [base], truth[effect]))
            outcomes["history"].setdefault(effect, []).append(verdicts(candidate, history[-10:], truth[effect]))
            history.append(base)
            print(
                f"pair {number}/{len(conditions)} (+{100 * effect:.0f} %) done, {time.perf_counter() - began:.0f} s",
                flush=True,
            )
    out = io.StringIO()
    out.write("mode      knob   true p95 effect  pairs  false alarms/report  p95 power  95% CI coverage\n")
    for mode, by_effect in outcomes.items():
        for effect in effects:
            rows = by_effect.get(effect, [])
            power = share([r[1] for r in rows]) if effect else "–"
            out.write(
                f"{mode:8} +{100 * effect:3.0f} %   {100 * truth[effect]:+6.1f} %       {len(rows):5d}  "
                f"{share([r[0] for r in rows]):>18}  {power:>9}  {share([r[2] for r in rows]):>15}\n"
            )
    out.write(f"({time.perf_counter() - began:.0f} s, {args.seconds}-s runs, 10 users)\n")
    print(out.getvalue())


if __name__ == "__main__":
    main()
