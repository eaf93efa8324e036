"""Scale-out: requests per second with 1, 2, … Locust processes (``load.processes``) through ``ci-perf run``.

Saturating zero-code load (FastHttpUser, no think time) against nginx on loopback (or the demo
service without latency when nginx is not installed), each process count repeated; prints the
median rps, the ratio to one process and the generators' CPU. On a many-core machine pass e.g.
``--processes 1,4,8,14`` (nginx gets as many workers as the machine has cores, minus the
generators'). Run: ``make bench-scale``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _targets import fast_target

CONFIG = """\
target: {url}
endpoints: [GET /health]
load: {{users: {users}, spawn_rate: 1000, duration: {duration}s, warmup: 2s, processes: {processes}}}
readiness: {{path: /health, timeout: 5s}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--users-per-process", type=int, default=25)
    parser.add_argument("--nginx-workers", type=int, default=1)
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    began = time.perf_counter()
    with fast_target(workers=args.nginx_workers) as (url, name), tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"target: {name}; {args.duration}-s runs, {args.users_per_process} users per process", flush=True)
        medians: dict[int, float] = {}
        for processes in counts:
            config = folder / f"p{processes}.yml"
            users = args.users_per_process * processes
            config.write_text(CONFIG.format(url=url, users=users, duration=args.duration, processes=processes))
            rps, cpu = [], []
            for _ in range(args.repeats):
                out = folder / "out"
                command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--quiet"]
                subprocess.run([*command, "--out", str(out)], capture_output=True, check=False)
                result = json.loads((out / "result.json").read_text())
                rps.append(result["aggregate"]["rps"])
                cpu.append(result["meta"]["generator"]["cpu_median_percent"] or 0.0)
            medians[processes] = statistics.median(rps)
            print(
                f"processes={processes:3d}: median {medians[processes]:9,.0f} rps "
                f"(min {min(rps):,.0f}, max {max(rps):,.0f}); x{medians[processes] / medians[counts[0]]:.2f} "
                f"vs {counts[0]}; busiest generator process CPU median {statistics.median(cpu):.0f} %",
                flush=True,
            )
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
