"""Open model accuracy: asked vs achieved arrival rate, late and dropped starts; a stall's cost, open vs closed.

1. ``load.arrival_rate`` at several rates against nginx on loopback (or the demo service), a pool
   of users sized rate / 10 (at least 10), 10-s runs: achieved rate, late and dropped starts.
2. The demo service stalled for 1 s in the middle of a 10-s run (``POST /__control``), once with
   the open model (40/s) and once with a closed model of 4 users: the p95 each reports.

``--hogs N`` runs it all beside N busy loops (``python3 -c 'while True: pass'``), as on a machine another
test run or benchmark keeps busy: the precise figures the live tests leave to this benchmark
(tests/live/test_profiles_live.py asserts the mechanism with margins that hold beside a hog).

Run: ``make bench-arrival`` (about 2 minutes); ``… bench_arrival.py --hogs 2 --processes 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _targets import fast_target

from ci_perf.demo.run import demo_service

OPEN = """\
target: {url}
endpoints: [GET /health]
load: {{arrival_rate: {rate}/s, users: {users}, duration: {duration}s, warmup: 2s, processes: {processes}}}
readiness: {{path: /health, timeout: 5s}}
"""
STALL = """\
target: {url}
endpoints: [GET /api/products]
load: {load}
readiness: {{path: /health, timeout: 5s}}
"""


def run(config_text: str, folder: Path) -> dict:  # type: ignore[type-arg]
    config = folder / "c.yml"
    config.write_text(config_text)
    out = folder / "out"
    command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--quiet", "--out", str(out)]
    subprocess.run(command, capture_output=True, check=False)
    return json.loads((out / "result.json").read_text())  # type: ignore[no-any-return]


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` busy loops for the duration of the block, stopped however it ends."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,1000,3000")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--hogs", type=int, default=0, help="busy loops beside the runs (0: none)")
    parser.add_argument("--no-stall", action="store_true", help="part 1 only")
    args = parser.parse_args()
    with cpu_hogs(args.hogs):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    with fast_target() as (url, name), tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"1. accuracy against {name}, {args.duration}-s runs, {args.processes} process(es), {args.hogs} hog(s)")
        print("   asked    achieved  scheduled     late  dropped   p50 ms   p99 ms  generator CPU  reliable")
        for rate in (int(r) for r in args.rates.split(",")):
            users = max(10, rate // 10)
            text = OPEN.format(url=url, rate=rate, users=users, duration=args.duration, processes=args.processes)
            result = run(text, folder)
            model = result["open_model"]
            agg = result["aggregate"]
            cpu = result["meta"]["generator"]["cpu_median_percent"]
            print(
                f"  {model['target_rps']:6.1f}  {model['achieved_rps']:9.1f}  {model['scheduled']:9d}"
                f"  {model['late']:7d}  {model['dropped']:7d}"
                f"  {agg['p50_ms']:7.2f}  {agg['p99_ms']:7.2f}  {cpu:12.0f} %  {result['meta']['reliable']}",
                flush=True,
            )
    if args.no_stall:
        print(f"({time.perf_counter() - began:.0f} s)")
        return
    with demo_service() as url, tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print("2. a 1-s stall 5 s into a 10-s run (demo service, GET /api/products ~12 ms)")
        for label, load in (
            ("open model, 40/s, pool of 4", "{arrival_rate: 40/s, users: 4, duration: 10s, warmup: 1s}"),
            ("closed model, 4 users, 0.1 s think time", "{users: 4, duration: 10s, warmup: 1s, think_time: 0.1s}"),
        ):
            timer = threading.Timer(5.0, lambda: httpx.post(f"{url}/__control", json={"stall_s": 1.0}, timeout=5))
            timer.start()
            result = run(STALL.format(url=url, load=load), folder)
            timer.cancel()
            agg = result["aggregate"]
            late = (result.get("open_model") or {}).get("late", "–")
            print(
                f"   {label:42}  requests {agg['requests']:5d}  p50 {agg['p50_ms']:7.1f} ms  "
                f"p95 {agg['p95_ms']:7.1f} ms  p99 {agg['p99_ms']:7.1f} ms  late starts {late}",
                flush=True,
            )
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
