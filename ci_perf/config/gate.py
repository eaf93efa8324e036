"""The gate of ``ci-perf.yml``: the performance budget and the comparison with the baseline.

In the file they are the top-level ``performance_budget`` and ``comparison`` sections (the seed's
layout); in ``Config`` they are one ``Gate``, so a pull request is judged by its base branch's gate
replaced as a whole, and ``ci-perf compare`` reads nothing else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ci_perf.config.server import SECTIONS, SLOW_QUERY_PERCENT, ServerMetricsSettings
from ci_perf.config.units import HttpUrl, PositiveNumber
from ci_perf.models import Strict

DEFAULT_ERROR_RATE_PERCENT = 1.0  # README "Budget semantics": the limit when no rule limits an endpoint's errors


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

    ``database`` and ``external_services`` are measured through ``server_metrics`` (Prometheus); without
    it they are kept and shown as "not measured", never dropped. ``default_error_rate_percent`` is ours:
    the error limit of every endpoint that neither ``api_endpoints`` nor an override limits.
    ``max_task_exceptions`` is ours too: a task that raises is a failure of the run, as in Locust.
    """

    api_endpoints: EndpointBudget = EndpointBudget()
    endpoints: dict[str, EndpointBudget] = {}
    default_error_rate_percent: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=DEFAULT_ERROR_RATE_PERCENT,
        description=(
            "error-rate limit (%) for each endpoint that no error_rate_percent rule covers, so that a failing "
            "service never passes by default; null disables it (breakpoint runs never use it)"
        ),
    )
    max_task_exceptions: Annotated[int, Field(ge=0)] | None = Field(
        default=0,
        description=(
            "unhandled exceptions in the locustfile's tasks allowed before the run fails (plain Locust exits 1 on "
            "any); null disables the rule"
        ),
    )
    database: dict[str, float] | None = None
    external_services: dict[str, float] | None = None

    def server_rules(self) -> dict[str, float]:
        """``database``/``external_services`` as rules (``database.query_p95_ms`` → limit).

        ``slow_query_threshold_ms`` is a threshold, not a limit: its rule limits the share of slower
        queries to ``database.slow_query_percent`` (SLOW_QUERY_PERCENT unless set).
        """
        rules: dict[str, float] = {}
        for section in SECTIONS:
            block = getattr(self, section) or {}
            for key, value in block.items():
                if section == "database" and key == "slow_query_threshold_ms":
                    rules[f"{section}.{key}"] = block.get("slow_query_percent", SLOW_QUERY_PERCENT)
                elif not (section == "database" and key == "slow_query_percent"):
                    rules[f"{section}.{key}"] = value
        return rules


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
        default=3.0,
        ge=0,
        description=(
            "run-to-run noise assumed with 1-2 baseline runs when the store holds no history of 3 or more runs to "
            "learn it from"
        ),
    )
    gate_on_single_baseline: bool = Field(
        default=False,
        description=(
            "with only 1-2 baseline runs (single mode), regressions fail the check too; by default they warn only, "
            "since one run cannot show this scenario's run-to-run noise"
        ),
    )
    bootstrap: int = Field(default=1000, ge=100, le=100_000, description="resamples for the duet interval")
    seed: int = Field(default=0, description="seed of the resampling: same input, same report")
    confirm_runs: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "load runs repeated at once when a run shows a candidate regression; only a regression the combined "
            "runs confirm gates (docs/STATISTICS.md, 'Confirm before blocking'); 0 disables"
        ),
    )
    change_points: bool = Field(
        default=True,
        description=(
            "history mode: find level shifts in each metric's baseline runs (Apache Otava) and judge a run "
            "against the runs since the last one (docs/STATISTICS.md, 'Change points on main')"
        ),
    )
    change_point_max_p: float = Field(
        default=0.0001, gt=0, lt=1, description="largest p-value (Student-t between the segments) of a change point"
    )
    change_point_min_percent: float = Field(
        default=0.0, ge=0, description="smallest level shift, in %, that counts as a change point"
    )
    fail_on: list[Literal["budget", "regression"]] = ["budget", "regression"]


class Gate(Strict):
    """What a run is judged by: the budget and the comparison with the baseline.

    A pull request is judged by its base branch's gate, replaced as a whole (the action).
    """

    performance_budget: PerformanceBudget = PerformanceBudget()
    comparison: Comparison = Comparison()
    server_metrics: ServerMetricsSettings | None = None

    @field_validator("server_metrics")
    @classmethod
    def _every_server_rule_has_a_query(
        cls, server: ServerMetricsSettings | None, info: ValidationInfo
    ) -> ServerMetricsSettings | None:
        budget = info.data.get("performance_budget")  # validated first: declared first
        for rule in budget.server_rules() if server is not None and budget is not None else []:
            if server is not None and server.query_for(rule) is None:
                raise ValueError(
                    f"performance_budget.{rule} has no default query; give it one under "
                    f"server_metrics.queries (e.g. {rule}: 'max(my_metric{{{{matchers}}}})')"
                )
        return server


def gate_changes(base: Gate, head: Gate) -> list[str]:
    """What ``head`` changes in ``base``: ``performance_budget.api_endpoints.p95_latency_ms: 200 → 300``."""
    return [
        line for name in Gate.model_fields for line in setting_changes(name, getattr(base, name), getattr(head, name))
    ]


def setting_changes(section: str, base: BaseModel | None, head: BaseModel | None) -> list[str]:
    """What ``head`` changes in ``base``, a line per setting, named under ``section`` (``load.users: 10 → 2``)."""
    return _diff(section, _dump(base), _dump(head))


def _dump(section: BaseModel | None) -> object:
    return section.model_dump(mode="json") if section is not None else None


def _diff(path: str, before: object, after: object) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [line for key in keys for line in _diff(f"{path}.{key}", before.get(key), after.get(key))]
    if before == after:
        return []
    return [f"{path}: {_show(before)} → {_show(after)}"]


def _show(value: object) -> str:
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)
