"""ci-perf: catch backend performance regressions before they merge.

The public API is what this module exports; everything else is internal. Every Locust process
imports this package (the plugins live in it), so it loads nothing heavy itself: the config and
result names, and ``__version__``, are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ci_perf.errors import CiPerfError, ConfigError, EnvironmentFailure, InputError

if TYPE_CHECKING:
    from ci_perf.config import Config, load_config
    from ci_perf.results import RunResult, load_result

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

__version__: str  # bound on first use (reading the installed metadata costs ~50 ms)

_LAZY = {
    "Config": "ci_perf.config",
    "load_config": "ci_perf.config",
    "RunResult": "ci_perf.results",
    "load_result": "ci_perf.results",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the first use of a lazy name imports its module (and caches the name here)."""
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'ci_perf' has no attribute {name!r}")
    globals()[name] = value
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ci-perf")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0.0.0"


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
