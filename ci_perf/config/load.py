"""The load settings of ``ci-perf.yml``: what requests (``endpoints``), how many users or what rate,
for how long, in what shape (``profile``, ``stages``), and when the target is ready.

The stage math itself is pure and lives in ``ci_perf.profiles``; this module validates settings.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ci_perf import profiles
from ci_perf.config.units import (
    DURATION_HINT,
    Duration,
    PositiveNumber,
    Rate,
    StageRate,
    absolute_path,
    format_duration,
    parse_duration,
)
from ci_perf.models import Strict

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Names are tokens; values are one line, and every ``$`` starts ``${NAME}`` (``$$`` is a literal ``$``)."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name (letters, digits and -, e.g. Authorization)")
        if any(ord(ch) < 32 and ch != "\t" for ch in value):
            raise ValueError(f"the value of {name} must be one line without control characters")
        if not string.Template(value).is_valid():
            raise ValueError(
                f"the value of {name} has a '$' that does not start ${{NAME}}; write ${{API_TOKEN}} for an "
                "environment variable, $$ for a literal $"
            )
    return headers


class Endpoint(Strict):
    """One request of zero-code mode; ``name`` is how it appears in every table.

    ``headers`` go with every request; ``${NAME}`` in a value is the environment variable NAME,
    expanded inside Locust (the runner passes the text as written, so a secret is never written
    to a file or a variable of ours).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: Annotated[str, AfterValidator(partial(absolute_path, example="/api/products"))]
    body: Any = None
    weight: int = Field(default=1, ge=1)
    headers: Annotated[dict[str, str], AfterValidator(check_headers)] = Field(
        default={}, description="sent with every request; ${NAME} is the environment variable NAME (e.g. a token)"
    )

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def unset_header_variables(
    endpoints: Sequence[Endpoint], environ: Mapping[str, str], *, withheld: Collection[str] = ()
) -> str | None:
    """What the ``${NAME}`` references of ``endpoints[i].headers`` miss in the load test's environment.

    ``environ`` is ours; ``withheld`` names what the runner keeps from Locust's on purpose (the
    GitHub token: the locustfile is the pull request's code). ``None`` when every one is set.
    """
    problems = [
        problem
        for index, endpoint in enumerate(endpoints)
        for problem in header_variable_problems(f"endpoints[{index}].headers", endpoint.headers, environ, withheld)
    ]
    return "; ".join(problems) or None


def header_variable_problems(
    field: str, headers: Mapping[str, str], environ: Mapping[str, str], withheld: Collection[str] = ()
) -> list[str]:
    """One sentence per ``${NAME}`` in ``headers`` (the setting ``field``) that ``environ`` lacks or withholds."""
    problems = []
    for header, value in headers.items():
        for variable in string.Template(value).get_identifiers():
            if variable in environ and variable not in withheld:
                continue
            if variable in withheld:
                problems.append(
                    f"{field}.{header}: ${{{variable}}} is withheld from the load test (ci-perf never passes "
                    f"{', '.join(sorted(withheld))} to Locust); put the credential in another variable"
                )
            else:
                problems.append(
                    f"{field}.{header}: the environment variable {variable} is not set; export it before running "
                    f"ci-perf (in a workflow: env: {{{variable}: ${{{{ secrets.{variable} }}}}}})"
                )
    return problems


def endpoint_from_line(value: object) -> object:
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

    Shaped profiles and stages are in ``ci_perf/profiles.py``; ``arrival_rate`` switches to the open
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
    stop_timeout: Duration = Field(
        default=10.0,
        description=(
            "no longer waited for: the run ends when its time is up and requests still in flight are measured "
            "(kept so that older configs load)"
        ),
    )
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
                step_users, max_users = data.get("step_users"), data.get("max_users")
                steps = profiles.breakpoint_steps(
                    int(data.get("users", 20)),
                    int(step_users) if step_users else None,
                    int(max_users) if max_users else None,
                )
                filled["duration"] = steps * parse_duration(data.get("step_duration", 10.0))
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

    def stage_plan(self) -> list[profiles.Stage] | None:
        """The stages Locust's shape or the open model follows; ``None`` for Locust's own spawning."""
        return profiles.stage_plan(self)

    def window_seconds(self) -> float:
        """Window length: ≥ 30 windows after warm-up, never under 1 s, a round number."""
        if self.window != "auto":
            return float(self.window)
        wanted = (self.duration - self.warmup) / 30
        if self.profile == "breakpoint":  # every step's settled half must hold whole windows
            wanted = min(wanted, self.step_duration / 4)
        return max([1.0] + [w for w in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0) if w <= wanted])


class Readiness(Strict):
    path: Annotated[str, AfterValidator(partial(absolute_path, example="/health"))] = "/"
    timeout: Duration = 60.0
    interval: Duration = 0.5
