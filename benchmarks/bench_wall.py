"""``ci-perf run`` wall time beyond the configured duration (start-up, readiness, stop, analysis).

Runs the real command against nginx (or the demo service) with a 10-s load,
for 1 and 2 Locust processes, and prints the wall time minus the duration.
Run: ``make bench-wall`` (``--repeats``).
"""

from __future__ import annotations

import argparse
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
load: {{users: 5, spawn_rate: 100, duration: {duration}s, warmup: 2s, processes: {processes}, think_time: 0.01s}}
readiness: {{path: /health, timeout: 5s}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    with fast_target() as (url, name), tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"target: {name}; `ci-perf run` with duration {args.duration}s, {args.repeats} repeats")
        for processes in (1, 2):
            config = folder / f"p{processes}.yml"
            config.write_text(CONFIG.format(url=url, duration=args.duration, processes=processes))
            extra = []
            for _ in range(args.repeats):
                began = time.perf_counter()
                command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--quiet"]
                subprocess.run([*command, "--out", str(folder / "out")], capture_output=True, check=True)
                extra.append(time.perf_counter() - began - args.duration)
            print(
                f"processes={processes}: wall time beyond duration: median {statistics.median(extra):.2f}s "
                f"(min {min(extra):.2f}s, max {max(extra):.2f}s)"
            )


if __name__ == "__main__":
    main()
