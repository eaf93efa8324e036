"""ci-perf owns Locust's configuration: the settings it decides are refused wherever Locust would read them.

Locust reads its options from the command line, from ``LOCUST_*`` environment variables and from
config files (``~/.locust.conf``, ``./locust.conf``, ``[tool.locust]`` in ``./pyproject.toml``, and a
``--config`` file), in that order of precedence: command line first. ci-perf passes some of them
itself (users, spawn rate, host, stop timeout …) and leaves others out on purpose (``--run-time``:
the collector owns the run clock). A value from any other source would either be overridden
without a word or, worse, change the run behind the config's back (a ``run-time = 8s`` in
``locust.conf`` once cut a 20-s run to 6 s). So every option in ``OWNED`` is refused, in every
spelling Locust accepts (``-u10``, ``-u 10``, ``--users=10``, ``--user 10``: argparse takes unique
prefixes; ``users = 10`` or ``user = 10`` in a file; ``LOCUST_USERS``), with exit code 2 and the
ci-perf setting to use instead. Every other option (``--tags``, ``--csv``, a locustfile's own
arguments, user class names) passes through to Locust unchanged.

``LOCUST_OPTIONS`` mirrors Locust's own option table (a unit test compares it with Locust's parser),
so that an abbreviation resolves exactly as argparse resolves it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_perf.errors import InputError


@dataclass(frozen=True)
class LocustOption:
    long: str
    short: str | None = None
    value: bool = True  # takes a value (False: a flag)
    env: str | None = None


LOCUST_OPTIONS: tuple[LocustOption, ...] = (
    LocustOption("--help", "-h", value=False),
    LocustOption("--locustfile", "-f", env="LOCUST_LOCUSTFILE"),
    LocustOption("--config"),
    LocustOption("--host", "-H", env="LOCUST_HOST"),
    LocustOption("--users", "-u", env="LOCUST_USERS"),
    LocustOption("--spawn-rate", "-r", env="LOCUST_SPAWN_RATE"),
    LocustOption("--run-time", "-t", env="LOCUST_RUN_TIME"),
    LocustOption("--list", "-l", value=False),
    LocustOption("--config-users", env="LOCUST_CONFIG_USERS"),
    LocustOption("--web-host", env="LOCUST_WEB_HOST"),
    LocustOption("--web-host-display-name", env="LOCUST_WEB_HOST_DISPLAY_NAME"),
    LocustOption("--web-port", "-P", env="LOCUST_WEB_PORT"),
    LocustOption("--headless", value=False, env="LOCUST_HEADLESS"),
    LocustOption("--autostart", value=False, env="LOCUST_AUTOSTART"),
    LocustOption("--autoquit", env="LOCUST_AUTOQUIT"),
    LocustOption("--headful", value=False, env="LOCUST_HEADFUL"),
    LocustOption("--web-auth", env="LOCUST_WEB_AUTH"),
    LocustOption("--web-login", value=False, env="LOCUST_WEB_LOGIN"),
    LocustOption("--tls-cert", env="LOCUST_TLS_CERT"),
    LocustOption("--tls-key", env="LOCUST_TLS_KEY"),
    LocustOption("--class-picker", value=False, env="LOCUST_USERCLASS_PICKER"),
    LocustOption("--build-path", env="LOCUST_BUILD_PATH"),
    LocustOption("--legacy-ui", value=False, env="LOCUST_LEGACY_UI"),
    LocustOption("--master", value=False, env="LOCUST_MODE_MASTER"),
    LocustOption("--master-bind-host", env="LOCUST_MASTER_BIND_HOST"),
    LocustOption("--master-bind-port", env="LOCUST_MASTER_BIND_PORT"),
    LocustOption("--expect-workers", env="LOCUST_EXPECT_WORKERS"),
    LocustOption("--expect-workers-max-wait", env="LOCUST_EXPECT_WORKERS_MAX_WAIT"),
    LocustOption("--enable-rebalancing", value=False),
    LocustOption("--expect-slaves", value=False),
    LocustOption("--worker", value=False, env="LOCUST_MODE_WORKER"),
    LocustOption("--processes", env="LOCUST_PROCESSES"),
    LocustOption("--slave", value=False),
    LocustOption("--master-host", env="LOCUST_MASTER_NODE_HOST"),
    LocustOption("--master-port", env="LOCUST_MASTER_NODE_PORT"),
    LocustOption("--web-base-path", env="LOCUST_WEB_BASE_PATH"),
    LocustOption("--tags", "-T", env="LOCUST_TAGS"),
    LocustOption("--exclude-tags", "-E", env="LOCUST_EXCLUDE_TAGS"),
    LocustOption("--csv", env="LOCUST_CSV"),
    LocustOption("--csv-full-history", value=False, env="LOCUST_CSV_FULL_HISTORY"),
    LocustOption("--print-stats", value=False, env="LOCUST_PRINT_STATS"),
    LocustOption("--only-summary", value=False, env="LOCUST_ONLY_SUMMARY"),
    LocustOption("--reset-stats", value=False, env="LOCUST_RESET_STATS"),
    LocustOption("--html", env="LOCUST_HTML"),
    LocustOption("--json", value=False),
    LocustOption("--json-file"),
    LocustOption("--skip-log-setup", value=False, env="LOCUST_SKIP_LOG_SETUP"),
    LocustOption("--loglevel", "-L", env="LOCUST_LOGLEVEL"),
    LocustOption("--logfile", env="LOCUST_LOGFILE"),
    LocustOption("--show-task-ratio", value=False),
    LocustOption("--show-task-ratio-json", value=False),
    LocustOption("--version", "-V", value=False),
    LocustOption("--exit-code-on-error", env="LOCUST_EXIT_CODE_ON_ERROR"),
    LocustOption("--stop-timeout", "-s", env="LOCUST_STOP_TIMEOUT"),
    LocustOption("--equal-weights", value=False),
    LocustOption("--profile"),
    LocustOption("--otel", value=False, env="LOCUST_ENABLE_OPENTELEMETRY"),
)
_BY_LONG = {o.long: o for o in LOCUST_OPTIONS}
_BY_SHORT = {o.short: o for o in LOCUST_OPTIONS if o.short}

_WORKERS = "load.workers (with load.master_host, load.master_port, load.worker_timeout)"
_WORKER = "`ci-perf worker --master HOST:PORT` (it starts Locust's worker itself)"
_UI = "ci-perf runs Locust headless, without its web UI"
_LOG = "ci-perf keeps Locust's log in <out>/locust.log at level INFO"
_NO_TEST = "it makes Locust print and exit without a test (run plain `locust` for it)"
_UI_OPTIONS = (  # --headless is what ci-perf does anyway: it passes
    "--headful", "--autostart", "--autoquit", "--web-host", "--web-host-display-name", "--web-port",
    "--web-auth", "--web-login", "--web-base-path", "--tls-cert", "--tls-key", "--class-picker", "--build-path",
    "--legacy-ui",
)  # fmt: skip
# option → (the ci-perf setting that replaces it, or None) and, without one, why it cannot apply
OWNED: dict[str, tuple[str | None, str]] = {
    "--locustfile": ("locustfile", ""),
    "--host": ("target (or --target)", ""),
    "--users": ("load.users", ""),
    "--spawn-rate": ("load.spawn_rate", ""),
    "--run-time": ("load.duration", ""),
    "--stop-timeout": ("load.stop_timeout", ""),
    "--processes": ("load.processes", ""),
    "--master": (_WORKERS, ""),
    "--master-bind-host": (_WORKERS, ""),
    "--master-bind-port": (_WORKERS, ""),
    "--expect-workers": (_WORKERS, ""),
    "--expect-workers-max-wait": (_WORKERS, ""),
    "--worker": (_WORKER, ""),
    "--master-host": (_WORKER, ""),
    "--master-port": (_WORKER, ""),
    "--exit-code-on-error": ("performance_budget (ci-perf's exit code is the gate's verdict)", ""),
    **dict.fromkeys(_UI_OPTIONS, (None, _UI)),
    **dict.fromkeys(("--loglevel", "--logfile", "--skip-log-setup"), (None, _LOG)),
    **dict.fromkeys(("--help", "--version", "--list", "--show-task-ratio", "--show-task-ratio-json"), (None, _NO_TEST)),
}
CONFIG_FILES = ("~/.locust.conf", "locust.conf", "pyproject.toml")  # where Locust looks, in its order
_FALSE = {"false", "no", "off", "0"}  # a flag set to one of these in a file is not set at all


def resolve_long(flag: str) -> LocustOption | None:
    """The option a ``--name`` means to argparse: an exact name, else the only one it is a prefix of."""
    if flag in _BY_LONG:
        return _BY_LONG[flag]
    matches = [o for o in LOCUST_OPTIONS if o.long.startswith(flag)]
    if len(matches) == 1 or (matches and all(m.long in OWNED for m in matches)):
        return matches[0]  # several owned matches: argparse calls it ambiguous, ci-perf's refusal says more
    return None


def options_in_args(args: Sequence[str]) -> Iterator[tuple[str, LocustOption, str | None]]:
    """Every Locust option the arguments set, as argparse reads them: (as written, option, its value).

    The value is the inline one (``--users=10``, ``-u10``) or else the next argument, for an option
    that takes one; ``None`` for a flag.
    """
    for index, arg in enumerate(args):
        if arg == "--":
            return  # the rest is positional (user class names)
        following = args[index + 1] if index + 1 < len(args) else None
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            option = resolve_long(name)
            if option is not None:
                yield arg, option, (value if has_value else following) if option.value else None
        elif arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            yield from _short_options(arg, following)


def _short_options(arg: str, following: str | None) -> Iterator[tuple[str, LocustOption, str | None]]:
    """``-u10``, ``-u 10``, ``-lu10`` (flags first, then one that takes the rest as its value)."""
    for index, char in enumerate(arg[1:], start=1):
        option = _BY_SHORT.get("-" + char)
        if option is None:
            return
        if not option.value:
            yield arg, option, None
            continue
        yield arg, option, arg[index + 1 :].removeprefix("=") or following
        return


def _is_number(arg: str) -> bool:
    return re.fullmatch(r"-\d+(\.\d*)?", arg) is not None


def _refusal(where: str, option: LocustOption, *, remove: str | None = None) -> InputError:
    setting, why = OWNED[option.long]
    if setting:
        fix = f"set {setting} in the config " + (f"and {remove}" if remove else "instead")
    else:
        fix = f"{why}; {remove or 'remove it'}"
    return InputError(f"{where} sets Locust's {option.long}, which ci-perf owns: {fix}")


def check_extra_args(extra_args: Sequence[str]) -> None:
    """Refuse an owned option after ``--``, however it is spelled."""
    for written, option, _ in options_in_args(extra_args):
        if option.long in OWNED:
            raise _refusal(f"extra Locust argument {written!r}", option)


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a ``LOCUST_*`` variable that sets an owned option (Locust reads it even when empty)."""
    for option in LOCUST_OPTIONS:
        if option.long in OWNED and option.env is not None and option.env in environ:
            where = f"the environment variable {option.env}={environ[option.env]!r}"
            raise _refusal(where, option, remove=f"unset {option.env} for ci-perf")


def config_files(*, cwd: Path, environ: Mapping[str, str], extra_args: Sequence[str] = ()) -> list[Path]:
    """The config files Locust would read in ``cwd`` with this environment and these arguments."""
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    files = [home / ".locust.conf", cwd / "locust.conf", cwd / "pyproject.toml"]
    files += [cwd / value for _, option, value in options_in_args(extra_args) if option.long == "--config" and value]
    return [f for f in files if f.is_file()]


def settings_in_file(path: Path) -> dict[str, object]:
    """A Locust config file's settings, read as Locust reads them (``[tool.locust]`` of a ``.toml``)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".toml":
        try:
            section = tomllib.loads(text).get("tool", {}).get("locust", {})
        except tomllib.TOMLDecodeError:
            return {}  # Locust refuses the file itself, with its own words
        return dict(section) if isinstance(section, dict) else {}
    settings: dict[str, object] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;[" or line.startswith("---"):
            continue
        match = re.match(r"^(?P<key>[^:=;#\s]+)\s*(?:[:=\s]\s*(?P<value>.*?))?\s*(?:\s[;#].*)?$", line)
        if match:
            settings[match["key"]] = (match["value"] or "true").strip("'\"")
    return settings


def check_config_files(files: Sequence[Path], *, cwd: Path) -> None:
    """Refuse an owned setting in a Locust config file (a key is a long option without its dashes)."""
    for path in files:
        for key, value in settings_in_file(path).items():
            option = resolve_long("--" + key.removeprefix("--"))
            if option is None or option.long not in OWNED:
                continue
            if not option.value and str(value).lower() in _FALSE | {"none"}:
                continue
            shown = str(path.relative_to(cwd) if path.is_relative_to(cwd) else path)
            shown += " [tool.locust]" if path.suffix == ".toml" else ""
            raise _refusal(f"{shown} ({key} = {value})", option, remove=f"remove {key} from {shown}")


def check_locust_settings(extra_args: Sequence[str], *, environ: Mapping[str, str], cwd: Path) -> None:
    """Everything Locust would read besides what ci-perf passes: flags after ``--``, variables, files."""
    check_extra_args(extra_args)
    check_environment(environ)
    check_config_files(config_files(cwd=cwd, environ=environ, extra_args=extra_args), cwd=cwd)
