"""Wall time of ``ci-perf run`` against plain ``locust --headless`` on each compatibility case.

Every locustfile of the compatibility suite (tests/compat/cases.py) runs against httpbin under
gunicorn on loopback, once through ``ci-perf run`` (its default settings: no stop_timeout set) and
once as ``locust --headless -f FILE -t Ns -u U -r 20 -H URL`` (with ``--processes`` and the case's own
Locust arguments where it has them), same duration and users, the two in random order per repeat.
Prints a markdown table: each command's median wall time and what ci-perf adds.
Run: ``make bench-compat`` (``--duration``, ``--repeats``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the cases and the httpbin fixture live with the tests

from tests.compat.cases import LOAD_STYLES, NAMES  # noqa: E402
from tests.compat.runs import OTHER_HOST_VARIABLE, Case, prepare  # noqa: E402
from tests.support.httpbin import READINESS_PATH, start_httpbins  # noqa: E402

CONFIG = """\
target: {url}
locustfile: {locustfile}
load: {{users: {users}, spawn_rate: 20, duration: {duration}s, warmup: 0s{processes}}}
readiness: {{path: {readiness}, timeout: 10s}}
"""


def processes_of(case: Case) -> int:
    return 2 if "processes: 2" in case.load else 1


def ci_perf_command(case: Case, directory: Path, *, url: str, duration: float) -> list[str]:
    prepare(case, directory, target=url)  # the locustfile and the case's files
    processes = processes_of(case)
    config = directory / "bench.yml"
    config.write_text(
        CONFIG.format(
            url=url,
            locustfile=case.path.name,
            users=case.users,
            duration=duration,
            processes=f", processes: {processes}" if processes > 1 else "",
            readiness=READINESS_PATH,
        ),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--out", "out", "--quiet"]
    return [*command, "--", *case.locust_args] if case.locust_args else command


def locust_command(case: Case, *, url: str, duration: float) -> list[str]:
    command = [
        sys.executable, "-m", "locust", "-f", case.path.name, "--headless", "--only-summary",
        "-t", f"{duration:g}s", "-u", str(case.users), "-r", "20", "-H", url,
    ]  # fmt: skip
    if processes_of(case) > 1:
        command += ["--processes", str(processes_of(case))]
    return command + list(case.locust_args)


def timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1):  # 1: a gate failed (ci-perf) or requests failed (locust), as the case means
        print(f"  ! {' '.join(command[2:5])} exited {done.returncode}: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="*", choices=sorted(NAMES.values()), help="only these cases (default: all)")
    args = parser.parse_args()
    cases = [case for case in LOAD_STYLES if not args.cases or NAMES[case] in args.cases]
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        head, other = start_httpbins(folder / "httpbin", workers=(2, 1))
        env = {**os.environ, OTHER_HOST_VARIABLE: other.url}
        try:
            print(f"duration {args.duration:g} s, median of {args.repeats}; wall seconds, start to exit\n")
            print("| case | users | `locust --headless` | `ci-perf run` | ci-perf − locust | ci-perf − duration |")
            print("|---|--:|--:|--:|--:|--:|")
            for case in cases:
                directory = folder / NAMES[case]
                runs: dict[str, list[float]] = {"locust": [], "ci-perf": []}
                commands = {
                    "locust": locust_command(case, url=head.url, duration=args.duration),
                    "ci-perf": ci_perf_command(case, directory, url=head.url, duration=args.duration),
                }
                for _ in range(args.repeats):
                    for arm in rng.sample(sorted(commands), 2):
                        runs[arm].append(timed(commands[arm], cwd=directory, env=env))
                locust, ci_perf = statistics.median(runs["locust"]), statistics.median(runs["ci-perf"])
                print(
                    f"| {NAMES[case]} | {case.users} | {locust:.1f} | {ci_perf:.1f} | {ci_perf - locust:+.1f} "
                    f"| {ci_perf - args.duration:+.1f} |",
                    flush=True,
                )
        finally:
            head.stop()
            other.stop()


if __name__ == "__main__":
    main()
