"""``ci-perf.yml``: its models, loading, and readable validation errors.

Everything is validated with ``extra="forbid"`` so that a typo is an error, not a silently
ignored setting. The package is split by concern: ``units`` (durations, rates, URLs), ``load``
(what load, how much, which shape), ``gate`` (budget and comparison), ``model`` (the whole file
and the rules across sections), ``files`` (reading, paths) and ``messages`` (errors in words).
Import from here.
"""

from __future__ import annotations

from ci_perf.config.files import DEFAULT_CONFIG_NAME, load_config, load_gate, parse_config
from ci_perf.config.gate import Comparison, EndpointBudget, Gate, PerformanceBudget, gate_changes, setting_changes
from ci_perf.config.load import (
    BreakOn,
    Endpoint,
    LoadSettings,
    Readiness,
    StageSetting,
    header_variable_problems,
    unset_header_variables,
)
from ci_perf.config.model import Config, StoreSettings, config_schema, with_comparison, with_gate, with_load
from ci_perf.config.server import DEFAULT_QUERIES, CustomMetric, ExportSettings, ServerMetricsSettings
from ci_perf.config.units import check_http_url, format_duration, parse_duration, parse_rate

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_QUERIES",
    "BreakOn",
    "Comparison",
    "Config",
    "CustomMetric",
    "Endpoint",
    "EndpointBudget",
    "ExportSettings",
    "Gate",
    "LoadSettings",
    "PerformanceBudget",
    "Readiness",
    "ServerMetricsSettings",
    "StageSetting",
    "StoreSettings",
    "check_http_url",
    "config_schema",
    "format_duration",
    "gate_changes",
    "header_variable_problems",
    "load_config",
    "load_gate",
    "parse_config",
    "parse_duration",
    "parse_rate",
    "setting_changes",
    "unset_header_variables",
    "with_comparison",
    "with_gate",
    "with_load",
]
