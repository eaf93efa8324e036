"""The whole ``ci-perf.yml`` as one model: target, users (``locustfile`` or ``endpoints``), load,
readiness, the gate and the store; the rules that hold across sections.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError, model_validator

from ci_perf.config.gate import Comparison, Gate
from ci_perf.config.load import BreakOn, Endpoint, LoadSettings, Readiness, endpoint_from_line
from ci_perf.config.server import ExportSettings, ServerMetricsSettings
from ci_perf.config.units import HttpUrl
from ci_perf.models import Strict

FILE_KEYS = (
    "target", "locustfile", "endpoints", "load", "readiness", "performance_budget", "comparison", "server_metrics",
    "store", "export",
)  # fmt: skip


class StoreSettings(Strict):
    path: str = ".ci-perf"


class Config(Strict):
    """A whole ``ci-perf.yml``. Relative paths are relative to the file's folder."""

    target: HttpUrl | None = None
    locustfile: str | None = None
    endpoints: list[Annotated[Endpoint, BeforeValidator(endpoint_from_line)]] | None = None
    load: LoadSettings = LoadSettings()
    readiness: Readiness = Readiness()
    gate: Gate = Gate()  # the file's performance_budget, comparison and server_metrics sections
    store: StoreSettings = StoreSettings()
    export: ExportSettings = ExportSettings()  # the run's RED metrics for Prometheus (a Pushgateway)

    @property
    def server_metrics(self) -> ServerMetricsSettings | None:
        """Server-side budgets through Prometheus (part of the gate: the base branch's in a pull request)."""
        return self.gate.server_metrics

    @model_validator(mode="before")
    @classmethod
    def _gate_from_sections(cls, data: object) -> object:
        """The file keeps the seed's layout: ``performance_budget`` and ``comparison`` at the top level."""
        if not isinstance(data, dict) or not any(key in data for key in Gate.model_fields):
            return data
        sections = {key: data[key] for key in Gate.model_fields if key in data}
        rest = {key: value for key, value in data.items() if key not in Gate.model_fields}
        gate = rest.get("gate")
        base = gate.model_dump(exclude_unset=True) if isinstance(gate, Gate) else gate if isinstance(gate, dict) else {}
        return {**rest, "gate": {**base, **sections}}

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
        if self.load.open_model and self.gate.comparison.baseline_target:
            # the second of a duet pair would be charged the first one's time from the shared intended start
            raise ValueError("duet mode (comparison.baseline_target) works with users, not with load.arrival_rate")
        if self.load.profile == "breakpoint" and not self.break_limits():
            raise ValueError(
                "the breakpoint profile needs a limit: set load.break_on (p95_latency_ms, error_rate_percent) "
                "or performance_budget.api_endpoints p95_latency_ms / error_rate_percent"
            )
        return self

    def break_limits(self) -> dict[str, float]:
        """Where a breakpoint run breaks: ``load.break_on``, else the budget's p95 and error rate."""
        source = self.load.break_on or BreakOn(
            p95_latency_ms=self.gate.performance_budget.api_endpoints.p95_latency_ms,
            error_rate_percent=self.gate.performance_budget.api_endpoints.error_rate_percent,
        )
        return {k: float(v) for k, v in source.model_dump().items() if v is not None}


def with_gate(config: Config, gate: Gate) -> Config:
    """``config`` judged by ``gate`` instead (e.g. the base branch's), checked across sections (ValueError if not)."""
    try:
        Config.model_validate({**config.model_dump(exclude_unset=True), "gate": gate.model_dump()})
    except ValidationError as exc:
        raise ValueError(_messages(exc)) from exc
    return config.model_copy(update={"gate": gate})


def with_load(config: Config, load: LoadSettings) -> Config:
    """``config`` run with ``load`` instead (e.g. the base branch's), checked across sections (ValueError if not)."""
    try:
        Config.model_validate({**config.model_dump(exclude_unset=True), "load": load.model_dump(exclude_unset=True)})
    except ValidationError as exc:
        raise ValueError(_messages(exc)) from exc
    return config.model_copy(update={"load": load})


def with_comparison(config: Config, **changes: object) -> Config:
    """``config`` with some comparison settings replaced, validated like the file (ValueError if not)."""
    try:
        comparison = Comparison.model_validate({**config.gate.comparison.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError(_messages(exc)) from exc
    return with_gate(config, config.gate.model_copy(update={"comparison": comparison}))


def _messages(exc: ValidationError) -> str:
    from ci_perf.config.messages import describe, file_location  # messages reads this module's models

    return "; ".join(describe(e, file_location(e["loc"])) for e in exc.errors())


def config_schema() -> dict[str, Any]:
    """JSON Schema of ``ci-perf.yml`` for editor completion."""
    schema = Config.model_json_schema(mode="validation")
    gate = schema["$defs"].pop("Gate")  # the file has the gate's sections at the top level
    properties = schema["properties"]
    schema["properties"] = {
        key: value
        for name, prop in properties.items()
        for key, value in ((gate["properties"].items()) if name == "gate" else [(name, prop)])
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ci-perf.yml"
    return schema
