"""ci-perf: catch backend performance regressions before they merge.

The public API is what this module exports; everything else is internal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ci_perf.config import Config, load_config
from ci_perf.errors import CiPerfError, ConfigError, EnvironmentFailure, InputError
from ci_perf.results import RunResult, load_result

try:
    __version__ = version("ci-perf")
except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
    __version__ = "0.0.0"

__all__ = [
    "CiPerfError",
    "Config",
    "ConfigError",
    "EnvironmentFailure",
    "InputError",
    "RunResult",
    "__version__",
    "load_config",
    "load_result",
]
