"""The ``ci-perf`` command line: run, compare, watch, action, validate, schema, demo, demo-service.

Only this module reads ``os.environ`` and ``sys.argv``;
everything below gets plain values. Every ``CiPerfError`` becomes one sentence on
stderr and its documented exit code (0 pass, 1 gate failed, 2 bad input,
3 environment failure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ci_perf import __version__
from ci_perf.config import DEFAULT_CONFIG_NAME, config_schema, load_config, with_comparison
from ci_perf.errors import EXIT_BAD_INPUT, EXIT_PASS, CiPerfError, InputError
from ci_perf.formatting import one_line

if TYPE_CHECKING:
    from ci_perf.config import Config
    from ci_perf.pipeline import ProgressLine

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ci-perf",
        description="Load-test a service with Locust, compare with the baseline, check the budget, report.",
    )
    parser.add_argument("--version", action="version", version=f"ci-perf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the load test, compare, check the budget, write the report")
    run.add_argument("--config", type=Path, default=Path(DEFAULT_CONFIG_NAME), help="default: %(default)s")
    run.add_argument("--target", help="base URL of the service under test (overrides target:)")
    run.add_argument("--out", type=Path, default=Path("ci-perf-out"), help="output folder (default: %(default)s)")
    run.add_argument("--record", action="store_true", help="append this run to the baseline store")
    run.add_argument("--branch", help="branch this run belongs to (default: from CI variables or git)")
    run.add_argument(
        "--baseline-target",
        help="duet mode: a deployment of the base branch, loaded in the same run (comparison.baseline_target)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress line")
    run.epilog = "Arguments after -- go to Locust unchanged, e.g. -- --tags checkout"

    worker = commands.add_parser(
        "worker", help="join a run's Locust master as an external worker (load.workers), e.g. on Kubernetes"
    )
    worker.add_argument("--config", type=Path, default=Path(DEFAULT_CONFIG_NAME), help="the run's config")
    worker.add_argument("--master", required=True, help="HOST:PORT of the master (load.master_port, default 5557)")
    worker.add_argument("--baseline-target", help="the master's duet base URL, when it came from a flag or input")

    compare = commands.add_parser("compare", help="compare a result with a baseline offline (no load)")
    compare.add_argument("--baseline", type=Path, required=True, help="a store directory or one result.json")
    compare.add_argument("--current", type=Path, required=True, help="the result.json to judge")
    compare.add_argument("--out", type=Path, default=Path("ci-perf-out"), help="output folder (default: %(default)s)")
    compare.add_argument("--config", type=Path, help="budget and comparison settings (default: ci-perf.yml if present)")

    _add_watch(commands)
    validate = commands.add_parser("validate", help="check a config file and say what is wrong")
    validate.add_argument("file", type=Path, nargs="?", default=Path(DEFAULT_CONFIG_NAME))

    action = commands.add_parser(
        "action", help="the GitHub Action: reads INPUT_* and GITHUB_* from the environment (see action.yml)"
    )
    action.epilog = "Every setting comes from the environment, as a Docker action receives it."

    commands.add_parser("schema", help="print the JSON Schema of ci-perf.yml (for editor completion)")

    demo = commands.add_parser("demo", help="the whole pipeline against the bundled demo service")
    demo.add_argument("--out", type=Path, default=Path("ci-perf-demo"), help="output folder (default: %(default)s)")
    demo.add_argument(
        "--profile",
        choices=["smoke", "load", "stress", "spike", "soak", "breakpoint", "stages", "arrival-rate"],
        help="one run of this load profile against the demo service (its config: ci_perf/demo/profiles/)",
    )

    commands.add_parser("demo-service", help="run the bundled demo service (see --help)", add_help=False)
    return parser


def _add_watch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watch = commands.add_parser(
        "watch", help="list the change points in a store's runs on the baseline branch, with their commit ranges"
    )
    watch.add_argument("--baseline", type=Path, required=True, help="a store directory (ci-perf run --record)")
    watch.add_argument("--branch", help="the branch to watch (default: comparison.baseline_branch, main)")
    watch.add_argument("--out", type=Path, default=Path("ci-perf-out"), help="output folder (default: %(default)s)")
    watch.add_argument("--config", type=Path, help="comparison settings (default: ci-perf.yml if present)")
    watch.add_argument(
        "--fail-within",
        type=int,
        metavar="N",
        help="exit 1 when a regression's new level starts within the newest N runs of its series (default: never)",
    )


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def _install_signal_handlers() -> None:
    """Ctrl-C and SIGTERM (a cancelled CI job) both unwind, so Locust's process group is killed.

    SIGINT is set explicitly: a process started in the background by a shell inherits it ignored.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["demo-service"]:
        from ci_perf.demo.service import main as service_main

        return service_main(args_in[1:])
    extra: list[str] = []
    if "--" in args_in:
        cut = args_in.index("--")
        args_in, extra = args_in[:cut], args_in[cut + 1 :]
    args = _parser().parse_args(args_in)
    if extra and args.command != "run":
        print("ci-perf: error: only `run` passes arguments after -- to Locust", file=sys.stderr)
        return EXIT_BAD_INPUT
    _install_signal_handlers()
    try:
        return _dispatch(args, extra)
    except CiPerfError as exc:
        print(f"ci-perf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # the runner and the readiness wait say what was going on
        print(f"\nci-perf: interrupted{f'; {exc}' if str(exc) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace, extra: list[str]) -> int:
    simple = {"schema": _schema, "validate": _validate, "compare": _compare, "worker": _worker, "watch": _watch}
    if args.command in simple:
        return simple[args.command](args)
    from ci_perf.pipeline import ProgressLine

    progress = ProgressLine(sys.stderr, interactive=sys.stderr.isatty())
    if args.command == "action":
        from ci_perf.action import run_action

        return run_action(dict(os.environ), cwd=Path.cwd(), stream=sys.stdout, progress=progress)
    if args.command == "demo":
        from ci_perf.demo.run import run_demo

        return run_demo(
            out_dir=args.out, environ=dict(os.environ), stream=sys.stdout, progress=progress, profile=args.profile
        )
    return _run(args, extra, progress)


def _schema(_: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return EXIT_PASS


def _validate(args: argparse.Namespace) -> int:
    """The config, Locust's own settings, and the locustfile as Locust loads it (its users, its shape)."""
    from ci_perf.loadtest.runner import check_header_variables, check_run
    from ci_perf.pipeline import check_server_metrics

    config = load_config(args.file)
    check_header_variables(config, os.environ, source=args.file)  # as `run` will see them
    checked = check_run(config, extra_args=(), environ=os.environ, probe=True)
    check_server_metrics(config, environ=os.environ, echo=sys.stdout)  # server_metrics' PromQL, parsed by Prometheus
    report, shape = checked.report, checked.user_shape
    source = f"{len(config.endpoints or [])} endpoints"
    if config.locustfile and report is not None:
        if not report.users:
            raise InputError(
                f"locustfile {config.locustfile} defines no User class (a class deriving from HttpUser, "
                "FastHttpUser or User) and no pytest-style test_ function; add one"
            )
        kind = "pytest-style users" if report.pytest_style else "users"
        source = f"{config.locustfile}: {kind} {', '.join(report.users)}"
    load = config.load
    if shape is not None:
        length = "to its end" if shape.length_s is None else f"for {shape.length_s:g} s"
        peak = f"up to {shape.peak_users} users " if shape.peak_users is not None else ""
        print(f"{args.file}: valid ({source}; its LoadTestShape {shape.name} runs whole: {peak}{length})")
        return EXIT_PASS
    if load.stages:
        amount = f"{len(load.stages)} stages"
    else:
        amount = f"{load.arrival_rate:g} requests/s" if load.arrival_rate else f"{load.users} users"
    print(f"{args.file}: valid ({source}, profile {load.profile}, {amount} for {load.duration:g} s)")
    return EXIT_PASS


def _run(args: argparse.Namespace, extra: list[str], progress: ProgressLine) -> int:
    from ci_perf.loadtest.runner import check_header_variables
    from ci_perf.pipeline import run_pipeline

    config = _with_baseline_target(load_config(args.config), args.baseline_target)
    check_header_variables(config, os.environ, source=args.config)  # the pipeline checks too, without the file
    outcome = run_pipeline(
        config,
        out_dir=args.out,
        target=args.target,
        record=args.record,
        branch=args.branch,
        extra_args=extra,
        environ=dict(os.environ),
        cwd=Path.cwd(),
        progress=None if args.quiet else progress,
    )
    if outcome.recorded_at:
        print(f"ci-perf: recorded as a baseline run: {outcome.recorded_at}")
    return outcome.exit_code


def _with_baseline_target(config: Config, url: str | None) -> Config:
    if not url:
        return config
    try:
        return with_comparison(config, baseline_target=url)
    except ValueError as exc:
        raise InputError(f"--baseline-target: {exc}") from exc


def _worker(args: argparse.Namespace) -> int:
    """Become a Locust worker with the run's files and settings (the master's window grid included)."""
    from ci_perf.loadtest.locust_config import check_locust_settings
    from ci_perf.loadtest.runner import child_environment, worker_command

    config = _with_baseline_target(load_config(args.config), args.baseline_target)
    check_locust_settings((), environ=os.environ, cwd=Path.cwd())  # the worker's Locust reads them too
    host, _, port = args.master.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--master: {args.master!r} is not HOST:PORT, e.g. ci-perf-master:5557")
    command = worker_command(config, master=host, port=int(port))
    env = child_environment(config, collect_out=Path(os.devnull), progress=False, base=os.environ)
    print(f"ci-perf: joining the Locust master at {host}:{port}", file=sys.stderr, flush=True)
    os.execve(command[0], command, env)  # noqa: S606 - becomes Locust, so signals reach it directly


def _compare(args: argparse.Namespace) -> int:
    from ci_perf.config import Gate, load_gate
    from ci_perf.pipeline import compare_offline

    config_path = args.config or (Path(DEFAULT_CONFIG_NAME) if Path(DEFAULT_CONFIG_NAME).is_file() else None)
    gate = load_gate(config_path) if config_path else Gate()  # without a config: no budget, default comparison
    judgement = compare_offline(gate, baseline=args.baseline, current=args.current, out_dir=args.out, echo=sys.stdout)
    return judgement.exit_code


def _watch(args: argparse.Namespace) -> int:
    from ci_perf.config import Gate, load_gate
    from ci_perf.errors import EXIT_GATE_FAILED
    from ci_perf.watch import watch_local, write_watch

    if args.fail_within is not None and args.fail_within < 1:
        raise InputError(f"--fail-within: {args.fail_within} is not a number of runs; give 1 or more")
    config_path = args.config or (Path(DEFAULT_CONFIG_NAME) if Path(DEFAULT_CONFIG_NAME).is_file() else None)
    settings = (load_gate(config_path) if config_path else Gate()).comparison
    branch = args.branch or settings.baseline_branch
    watched = watch_local(args.baseline, branch=branch, settings=settings)
    write_watch(watched, args.out)
    report = watched.report
    print(f"ci-perf watch: {len(report.changes)} change point(s) in {report.runs} run(s) on {one_line(branch, 100)}")
    for line in watched.lines:
        print(f"  {line}")
    recent = report.recent_regressions(args.fail_within) if args.fail_within else []
    if recent:
        print(f"ci-perf watch: {len(recent)} regression(s) within the newest {args.fail_within} run(s)")
        return EXIT_GATE_FAILED
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
