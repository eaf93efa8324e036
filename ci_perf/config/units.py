"""Units a config file is written in: durations (``90s``, ``1m30s``), rates (``200/s``), URLs, paths.

Each parser raises ``ValueError`` with the fix in its message; pydantic turns it into a located error.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field

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


def absolute_path(path: str, *, example: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/', e.g. {example}")
    return path


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
