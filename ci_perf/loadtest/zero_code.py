"""A Locust user generated from the ``endpoints:`` list, for teams without a locustfile.

Runs INSIDE Locust. The runner passes the endpoints as JSON in
``CI_PERF_ENDPOINTS`` (``[{"method", "path", "body", "weight"}, ...]``) and the
think time in ``CI_PERF_THINK_TIME`` (seconds). Each endpoint becomes one task,
reported as ``METHOD path`` like every other endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from locust import constant
from locust.contrib.fasthttp import FastHttpUser


def _task(method: str, path: str, body: Any) -> Callable[[FastHttpUser], None]:
    def run(user: FastHttpUser) -> None:
        if body is None:
            user.client.request(method, path, name=path)
        else:
            user.client.request(method, path, name=path, json=body)

    run.__name__ = f"{method} {path}"
    return run


def _tasks_from_environment() -> dict[Callable[[FastHttpUser], None], int]:
    endpoints = json.loads(os.environ.get("CI_PERF_ENDPOINTS", "[]"))
    return {_task(e["method"], e["path"], e.get("body")): int(e.get("weight", 1)) for e in endpoints}


class EndpointsUser(FastHttpUser):
    """Requests the configured endpoints in proportion to their weights."""

    tasks = _tasks_from_environment()  # type: ignore[assignment] # Locust documents {task: weight} too
    wait_time = constant(float(os.environ.get("CI_PERF_THINK_TIME", "0")))
