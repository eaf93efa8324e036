"""The ``ci-perf.yml`` file: its models, loading, and readable validation errors.

Everything here is validated with ``extra="forbid"`` so that a typo is an error,
not a silently ignored setting. ``load_config`` is the only way in; it turns
YAML and pydantic errors into one ``ConfigError`` that names the file, the
field (with its line) and the fix.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ci_perf.errors import ConfigError
from ci_perf.loadtest import shapes
from ci_perf.models import Strict

DEFAULT_CONFIG_NAME = "ci-perf.yml"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_HINT = "write a number with a unit, e.g. 90s, 2m, 1h or 1m30s"


def parse_duration(value: object) -> float:
    """Seconds from ``90s``, ``2m``, ``1h``, ``1m30s``, ``250ms`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}; {DURATION_HINT}")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {value!r}; {DURATION_HINT}")  # noqa: TRY004 - pydantic wants ValueError
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION_PART.sub("", text) != "":
        raise ValueError(f"{value!r} is not a duration; {DURATION_HINT}")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The inverse of ``parse_duration`` for display: ``90s`` → ``1m30s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def check_http_url(value: str) -> str:
    """Accept only absolute http(s) URLs; return them without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL; write it like http://127.0.0.1:8000")
    return value.rstrip("/")


HttpUrl = Annotated[str, BeforeValidator(lambda v: check_http_url(v) if isinstance(v, str) else v)]

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _absolute_path(path: str, *, example: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/', e.g. {example}")
    return path


class Endpoint(Strict):
    """One request of zero-code mode; ``name`` is how it appears in every table."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: Annotated[str, AfterValidator(partial(_absolute_path, example="/api/products"))]
    body: Any = None
    weight: int = Field(default=1, ge=1)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _endpoint_from_line(value: object) -> object:
    """``"POST /api/orders {"id": 1}"`` → the mapping form of ``Endpoint``."""
    if not isinstance(value, str):
        return value
    method, _, rest = value.strip().partition(" ")
    path, _, body_text = rest.strip().partition(" ")
    if method.upper() not in HTTP_METHODS or not path:
        raise ValueError(f"{value!r} is not 'METHOD /path [json body]', e.g. 'GET /api/products?page=1'")
    endpoint: dict[str, object] = {"method": method.upper(), "path": path}
    if body_text.strip():
        try:
            endpoint["body"] = json.loads(body_text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the body of {value!r} is not valid JSON ({exc.msg})") from exc
    return endpoint


PositiveNumber = Annotated[float, Field(gt=0)]
RATE_HINT = "write requests per second like 200/s (or 1200/m)"


def parse_rate(value: object, *, allow_zero: bool = False) -> float:
    """Requests per second from ``200/s``, ``1200/m``, ``7200/h`` or a bare number (per second)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected an arrival rate, got {value!r}; {RATE_HINT}")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|h))?\s*", value.lower())
        if not match:
            raise ValueError(f"{value!r} is not an arrival rate; {RATE_HINT}")
        rate = float(match[1]) / _UNIT_SECONDS[match[2] or "s"]
    if rate < 0 or (rate == 0 and not allow_zero):
        raise ValueError(f"an arrival rate must be positive; {RATE_HINT}")
    return rate


Rate = Annotated[float, BeforeValidator(parse_rate)]
StageRate = Annotated[float, BeforeValidator(partial(parse_rate, allow_zero=True))]  # a stage may ramp to 0
Profile = Literal["smoke", "load", "stress", "spike", "soak", "breakpoint"]
# the settings that belong to one profile only, and the defaults a profile brings when unset
_PROFILE_SETTINGS = {
    "stress_factors": "stress",
    "spike_users": "spike",
    "step_users": "breakpoint",
    "step_duration": "breakpoint",
    "max_users": "breakpoint",
    "break_on": "breakpoint",
}
_PROFILE_DEFAULTS: dict[str, dict[str, object]] = {
    "smoke": {"users": 2, "duration": 30.0, "warmup": 5.0},
    "soak": {"duration": 600.0},
    "breakpoint": {"warmup": 0.0},
}


class StageSetting(Strict):
    """One of ``stages:``, k6 style: over ``duration`` move linearly to ``users`` (or ``arrival_rate``)."""

    duration: Duration
    users: int | None = Field(default=None, ge=0)
    arrival_rate: StageRate | None = None

    @model_validator(mode="after")
    def _one_target(self) -> StageSetting:
        if (self.users is None) == (self.arrival_rate is None):
            raise ValueError("a stage sets either users or arrival_rate, e.g. {duration: 30s, users: 20}")
        return self


class BreakOn(Strict):
    """Where the breakpoint profile stops: the first step past either limit is the breaking point."""

    error_rate_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    p95_latency_ms: PositiveNumber | None = None


class LoadSettings(Strict):
    """How much load, for how long, in what shape (``profile``, ``stages``, ``arrival_rate``).

    Shaped profiles and stages are in ``loadtest/shapes.py``; ``arrival_rate`` switches to the open
    model (requests start on schedule whatever the response time).
    """

    profile: Profile = "load"
    users: int = Field(default=20, ge=1)
    spawn_rate: float = Field(default=10.0, gt=0)
    duration: Duration = 60.0
    warmup: Duration = 10.0
    window: Duration | Literal["auto"] = "auto"
    processes: int | Literal["auto"] = Field(default=1, description="Locust processes on this machine, or auto")
    workers: int = Field(default=0, ge=0, le=1000, description="external Locust workers to wait for")
    master_host: str = Field(default="127.0.0.1", description="where the master listens for external workers")
    master_port: int = Field(default=5557, ge=1, le=65535, description="its port (external workers only)")
    worker_timeout: Duration = 120.0
    stop_timeout: Duration = 10.0
    think_time: Duration = 0.0
    arrival_rate: Rate | None = None
    stages: list[StageSetting] | None = None
    stress_factors: list[PositiveNumber] = [1.0, 1.5, 2.0, 3.0]
    spike_users: int | None = Field(default=None, ge=1)
    step_users: int | None = Field(default=None, ge=1)
    step_duration: Duration = 10.0
    max_users: int | None = Field(default=None, ge=1)
    break_on: BreakOn | None = None

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: object) -> object:
        """A profile's own defaults for what the file leaves unset; stages set the duration."""
        if not isinstance(data, dict):
            return data
        profile = data.get("profile", "load")
        filled = {**_PROFILE_DEFAULTS.get(str(profile), {}), **data}
        stages = data.get("stages")
        try:
            if isinstance(stages, list) and "duration" not in data:
                filled["duration"] = sum(parse_duration(s.get("duration", 0)) for s in stages if isinstance(s, dict))
            elif profile == "breakpoint" and "duration" not in data:  # every step up to max_users
                users = int(data.get("users", 20))
                step = int(data.get("step_users") or users)
                steps = math.floor((int(data.get("max_users") or 20 * users) - users) / step) + 1
                filled["duration"] = max(1, steps) * parse_duration(data.get("step_duration", 10.0))
        except (ValueError, TypeError):
            pass  # the fields' own validation says what is wrong
        return filled

    @field_validator("duration", "step_duration", "worker_timeout")
    @classmethod
    def _duration_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be positive; {DURATION_HINT}")
        return value

    @field_validator("warmup", "stop_timeout", "think_time")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be zero or positive, e.g. 10s")
        return value

    @field_validator("processes")
    @classmethod
    def _processes(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("must be between 1 and 256, or auto (one per CPU core)")
        return value

    @field_validator("window")
    @classmethod
    def _window_at_least_a_second(cls, value: float | str) -> float | str:
        if isinstance(value, float) and value < 1:
            raise ValueError("a statistics window shorter than 1s is too noisy; use 1s or more, or 'auto'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LoadSettings:
        for name, profile in _PROFILE_SETTINGS.items():
            if name in self.model_fields_set and self.profile != profile:
                raise ValueError(f"{name} is a setting of profile: {profile}; remove it or set profile: {profile}")
        if self.stages and self.profile != "load":
            raise ValueError(f"stages replace the profile's own shape; remove profile: {self.profile}")
        if self.stages and "duration" in self.model_fields_set:
            total = sum(s.duration for s in self.stages)
            if abs(total - self.duration) > 1e-9:
                raise ValueError(
                    f"duration ({format_duration(self.duration)}) differs from the stages' total "
                    f"({format_duration(total)}); remove duration, the stages set it"
                )
        kinds = {s.arrival_rate is not None for s in self.stages or []}
        if len(kinds) > 1:
            raise ValueError("stages set either users or arrival_rate, not a mix")
        if self.arrival_rate is not None and (self.stages or self.profile not in {"load", "soak", "smoke"}):
            raise ValueError(
                "arrival_rate is a constant rate for the load, soak and smoke profiles; for a changing rate "
                "use stages with arrival_rate"
            )
        if self.workers and self.processes != 1:
            raise ValueError("use either workers (external Locust workers) or processes (on this machine)")
        generators = self.workers or (self.processes if isinstance(self.processes, int) else 1)
        if self.open_model and self.users < generators:
            raise ValueError(
                f"the open model splits the rate over {generators} Locust processes; users (the pool, "
                f"{self.users}) must be at least that, or some shares are never sent"
            )
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({format_duration(self.warmup)}) must be shorter than duration "
                f"({format_duration(self.duration)}); shorten warmup or lengthen duration"
            )
        return self

    @property
    def open_model(self) -> bool:
        return self.arrival_rate is not None or any(s.arrival_rate is not None for s in self.stages or [])

    def process_count(self, cpu_count: int) -> int:
        return cpu_count if self.processes == "auto" else int(self.processes)

    def stage_plan(self) -> list[shapes.Stage] | None:
        """The stages Locust's shape or the open model follows; ``None`` for Locust's own spawning."""
        if self.stages:
            return [
                shapes.Stage(s.duration, float(s.users if s.users is not None else s.arrival_rate or 0.0))
                for s in self.stages
            ]
        if self.arrival_rate is not None:
            return [shapes.Stage(self.duration, self.arrival_rate, jump=True)]
        if self.profile == "stress":
            return shapes.stress_stages(self.users, self.duration, self.stress_factors)
        if self.profile == "spike":
            return shapes.spike_stages(self.users, self.spike_users or 5 * self.users, self.duration)
        if self.profile == "breakpoint":
            return shapes.breakpoint_stages(
                self.users, self.step_users or self.users, self.step_duration, self.max_users or 20 * self.users
            )[: max(1, math.ceil(self.duration / self.step_duration))]
        return None

    def window_seconds(self) -> float:
        """Window length: ≥ 30 windows after warm-up, never under 1 s, a round number."""
        if self.window != "auto":
            return float(self.window)
        wanted = (self.duration - self.warmup) / 30
        if self.profile == "breakpoint":  # every step's settled half must hold whole windows
            wanted = min(wanted, self.step_duration / 4)
        return max([1.0] + [w for w in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0) if w <= wanted])


class Readiness(Strict):
    path: Annotated[str, AfterValidator(partial(_absolute_path, example="/health"))] = "/"
    timeout: Duration = 60.0
    interval: Duration = 0.5


class EndpointBudget(Strict):
    """The seed's ``api_endpoints`` block; every limit is optional."""

    p50_latency_ms: PositiveNumber | None = None
    p95_latency_ms: PositiveNumber | None = None
    p99_latency_ms: PositiveNumber | None = None
    max_latency_ms: PositiveNumber | None = None
    error_rate_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    throughput_rps: PositiveNumber | None = None


class PerformanceBudget(Strict):
    """The seed's ``performance_budget`` block, accepted verbatim, plus per-endpoint overrides.

    ``database`` and ``external_services`` need a server-metrics source; they are
    kept and shown as "not measured", never dropped.
    """

    api_endpoints: EndpointBudget = EndpointBudget()
    endpoints: dict[str, EndpointBudget] = {}
    database: dict[str, float] | None = None
    external_services: dict[str, float] | None = None


class Comparison(Strict):
    """How a run is judged against its baseline; docs/STATISTICS.md explains each setting."""

    baseline_branch: str = "main"
    baseline_target: HttpUrl | None = Field(
        default=None,
        description="duet mode: a deployment of the base branch, loaded in the same run as the target",
    )
    history: int = Field(default=20, ge=1, le=1000)
    min_effect_percent: float = Field(default=5.0, ge=0, description="smallest change worth a verdict")
    min_abs_ms: float = Field(default=1.0, ge=0, description="latency changes below this are never verdicts")
    min_error_rate_points: float = Field(default=0.1, ge=0, description="error-rate floor, percentage points")
    q: float = Field(default=0.01, gt=0, lt=1, description="false discovery rate (Benjamini-Hochberg)")
    power: float = Field(default=0.8, gt=0, lt=1, description="power at which the MDE is computed")
    run_noise_percent: float = Field(
        default=3.0, ge=0, description="run-to-run noise assumed when fewer than 3 baseline runs can show it"
    )
    bootstrap: int = Field(default=1000, ge=100, le=100_000, description="resamples for the interval")
    seed: int = Field(default=0, description="seed of the resampling: same input, same report")
    fail_on: list[Literal["budget", "regression"]] = ["budget", "regression"]


class Gate(Strict):
    """What a run is judged by: the budget and the comparison with the baseline.

    A pull request is judged by its base branch's gate, replaced as a whole (the action).
    """

    performance_budget: PerformanceBudget = PerformanceBudget()
    comparison: Comparison = Comparison()


class StoreSettings(Strict):
    path: str = ".ci-perf"


class Config(Strict):
    """A whole ``ci-perf.yml``. Relative paths are relative to the file's folder."""

    target: HttpUrl | None = None
    locustfile: str | None = None
    endpoints: list[Annotated[Endpoint, BeforeValidator(_endpoint_from_line)]] | None = None
    load: LoadSettings = LoadSettings()
    readiness: Readiness = Readiness()
    performance_budget: PerformanceBudget = PerformanceBudget()
    comparison: Comparison = Comparison()
    store: StoreSettings = StoreSettings()

    @model_validator(mode="after")
    def _one_source_of_users(self) -> Config:
        if self.locustfile and self.endpoints:
            raise ValueError("set either locustfile or endpoints, not both")
        if not self.locustfile and not self.endpoints:
            raise ValueError("set locustfile: (a Locust file) or endpoints: (a list like 'GET /api/products')")
        if self.load.open_model and self.locustfile:
            raise ValueError(
                "load.arrival_rate needs endpoints: (ci-perf then starts each request on schedule); with a "
                "locustfile, pace users with Locust's constant_throughput instead"
            )
        if self.load.open_model and self.comparison.baseline_target:
            # the second of a duet pair would be charged the first one's time from the shared intended start
            raise ValueError("duet mode (comparison.baseline_target) works with users, not with load.arrival_rate")
        if self.load.profile == "breakpoint" and not self.break_limits():
            raise ValueError(
                "the breakpoint profile needs a limit: set load.break_on (p95_latency_ms, error_rate_percent) "
                "or performance_budget.api_endpoints p95_latency_ms / error_rate_percent"
            )
        return self

    @property
    def gate(self) -> Gate:
        return Gate(performance_budget=self.performance_budget, comparison=self.comparison)

    def break_limits(self) -> dict[str, float]:
        """Where a breakpoint run breaks: ``load.break_on``, else the budget's p95 and error rate."""
        source = self.load.break_on or BreakOn(
            p95_latency_ms=self.performance_budget.api_endpoints.p95_latency_ms,
            error_rate_percent=self.performance_budget.api_endpoints.error_rate_percent,
        )
        return {k: float(v) for k, v in source.model_dump().items() if v is not None}


def with_gate(config: Config, gate: Gate) -> Config:
    """``config`` judged by ``gate`` instead (e.g. the base branch's), checked across sections (ValueError if not)."""
    try:
        Config.model_validate({**config.model_dump(exclude_unset=True), **gate.model_dump()})
    except ValidationError as exc:
        raise ValueError("; ".join(_message(e, list(e["loc"])) for e in exc.errors())) from exc
    return config.model_copy(update={"performance_budget": gate.performance_budget, "comparison": gate.comparison})


def with_comparison(config: Config, **changes: object) -> Config:
    """``config`` with some comparison settings replaced, validated like the file (ValueError if not)."""
    try:
        comparison = Comparison.model_validate({**config.comparison.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError("; ".join(_message(e, list(e["loc"])) for e in exc.errors())) from exc
    return with_gate(config, config.gate.model_copy(update={"comparison": comparison}))


def config_schema() -> dict[str, Any]:
    """JSON Schema of ``ci-perf.yml`` for editor completion."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ci-perf.yml"
    return schema


def load_config(path: Path) -> Config:
    """Read and validate a config file, or raise one ``ConfigError`` a person can act on."""
    return parse_config(_read(path), source=path)


def load_gate(path: Path) -> Gate:
    """Only the gate of a config file (``performance_budget``, ``comparison``): what ``compare`` needs.

    The load settings are not read, so a file of another machine (a locustfile that is not here) judges too.
    """
    data, root = _parse_yaml(_read(path), source=path)
    unknown = sorted(str(key) for key in data if key not in Config.model_fields)
    if unknown:
        guess = difflib.get_close_matches(unknown[0], list(Config.model_fields), n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"allowed: {', '.join(sorted(Config.model_fields))}"
        raise ConfigError(f"{path}:{_line_of(root, [unknown[0]])}: {unknown[0]}: unknown key; {hint}")
    try:
        return Gate.model_validate({key: data[key] for key in Gate.model_fields if key in data})
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source=path, root=root)) from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file; create one (see `ci-perf schema`) or pass --config") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc


def parse_config(text: str, *, source: Path, check_files: bool = True) -> Config:
    """Validate config text. ``check_files=False`` for a config read from another commit (no checkout)."""
    data, root = _parse_yaml(text, source=source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source=source, root=root)) from exc
    return _resolve_paths(config, source=source, root=root) if check_files else config


def _parse_yaml(text: str, *, source: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """The top-level mapping and its node tree (for line numbers), or a ``ConfigError``."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}; fix the syntax there") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings like 'target: ...'")
    return data, root


def _resolve_paths(config: Config, *, source: Path, root: yaml.Node | None) -> Config:
    base = source.parent
    updates: dict[str, Any] = {}
    if config.locustfile:
        locustfile = base / config.locustfile
        if not locustfile.is_file():
            line = _line_of(root, ["locustfile"])
            raise ConfigError(
                f"{source}:{line}: locustfile: {locustfile} does not exist; "
                "fix the path (it is relative to the config file's folder)"
            )
        updates["locustfile"] = str(locustfile)
    updates["store"] = StoreSettings(path=str(base / config.store.path))
    return config.model_copy(update=updates)


def _explain(exc: ValidationError, *, source: Path, root: yaml.Node | None) -> str:
    lines = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not _is_validator_tag(part)]
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else str(source)
        lines.append(f"{where}: {field}: {_message(error, loc)}")
    shown = lines[:5]
    if len(lines) > 5:
        shown.append(f"... and {len(lines) - 5} more problems")
    return "\n".join(shown)


def _is_validator_tag(part: object) -> bool:
    # pydantic adds union-member tags such as "function-before[...]" or "float" to locations
    return isinstance(part, str) and (part.startswith("function-") or part in {"float", "literal['auto']", "str"})


def _message(error: Any, loc: list[Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"allowed here: {', '.join(allowed)}"
        return f"unknown key; {hint}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"}:
        return f"expected a number, got {error['input']!r}; write a plain number such as 200"
    if kind == "literal_error":
        return f"got {error['input']!r}; {error['msg'].lower()}"
    if kind == "missing":
        return "this setting is required"
    return f"{error['msg']} (got {error['input']!r})"


def _allowed_keys(loc: list[Any]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        model = _model_in(annotation)
    return sorted(model.model_fields) if model else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or its nearest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((k for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            line = match.start_mark.line + 1
            node = {k.value: v for k, v in node.value}.get(str(part))
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
