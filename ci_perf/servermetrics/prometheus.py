"""The HTTP client of Prometheus's query API, and its faults in words.

Only ``/api/v1/query`` (instant) and ``/api/v1/query_range`` are used. Every fault is a ``QueryFailed``
whose ``reason`` reads after "not measured: " (unreachable, slow, an error answer, no data); a
query Prometheus cannot parse (400 ``bad_data``) is a ``BadQuery``, which the check before the load
turns into a config error. Header values arrive expanded and never appear in a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx

from ci_perf.formatting import one_line

Labels = dict[str, str]
Point = tuple[float, float]
MAX_REASON = 200  # characters of Prometheus's own error text kept in a reason


class QueryFailed(Exception):
    """A query that gave no value; ``reason`` completes "not measured: …"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadQuery(QueryFailed):
    """Prometheus could not parse the expression (400 bad_data)."""


@dataclass(frozen=True)
class Series:
    labels: Labels
    points: list[Point]


class Prometheus:
    """One Prometheus server; ``transport`` is for tests that bring their own server (httpx's ``MockTransport``)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._client = httpx.Client(base_url=url, headers=dict(headers), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def instant(self, expr: str, *, at: float) -> list[Series]:
        """The query's value at ``at`` (epoch seconds): one one-point series per result (a scalar too)."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return _series(data)

    def range(self, expr: str, *, start: float, end: float, step: float) -> list[Series]:
        """The query evaluated every ``step`` seconds from ``start`` to ``end``."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return _series(self._get("/api/v1/query_range", params))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise QueryFailed(f"Prometheus at {self.url} did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise QueryFailed(f"Prometheus at {self.url} is unreachable ({type(exc).__name__})") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise QueryFailed(f"Prometheus at {self.url} answered {response.status_code} without a query result")
        if body["status"] != "success":
            error = one_line(str(body.get("error", "")), MAX_REASON)
            if body.get("errorType") == "bad_data" and response.status_code == httpx.codes.BAD_REQUEST:
                raise BadQuery(error)
            raise QueryFailed(f"Prometheus answered {response.status_code}: {error or body.get('errorType')}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryFailed(f"Prometheus at {self.url} answered without data")
        return data


def _series(data: dict[str, Any]) -> list[Series]:
    """Prometheus's ``data`` (vector, matrix or scalar) as series of finite and infinite points (NaN dropped)."""
    kind, result = data.get("resultType"), data.get("result") or []
    try:
        if kind == "scalar":
            return [Series({}, _points([result]))]
        if kind == "vector":
            return [Series(dict(r["metric"]), _points([r["value"]])) for r in result]
        if kind == "matrix":
            return [Series(dict(r["metric"]), _points(r["values"])) for r in result]
    except (KeyError, TypeError, ValueError) as exc:
        raise QueryFailed(f"Prometheus answered a {kind} that is not readable") from exc
    raise QueryFailed(f"the query gives a {kind}, not a number")


def _points(pairs: list[Any]) -> list[Point]:
    points = [(float(at), float(value)) for at, value in pairs]
    return [(at, value) for at, value in points if not math.isnan(value)]
