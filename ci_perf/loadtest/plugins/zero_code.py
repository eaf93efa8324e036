"""A Locust user generated from the ``endpoints:`` list, for teams without a locustfile.

Runs INSIDE Locust. The runner passes the endpoints and the think time (seconds) in
``protocol.PluginSettings``. Each endpoint becomes one task, reported as ``METHOD path``
like every other endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from locust import constant
from locust.contrib.fasthttp import FastHttpUser

from ci_perf.loadtest.protocol import PluginSettings

_SETTINGS = PluginSettings.from_env(os.environ)


def _task(method: str, path: str, body: Any) -> Callable[[FastHttpUser], None]:
    def run(user: FastHttpUser) -> None:
        if body is None:
            user.client.request(method, path, name=path)
        else:
            user.client.request(method, path, name=path, json=body)

    run.__name__ = f"{method} {path}"
    return run


def _tasks(settings: PluginSettings) -> dict[Callable[[FastHttpUser], None], int]:
    return {_task(e.method, e.path, e.body): e.weight for e in settings.endpoints}


class EndpointsUser(FastHttpUser):
    """Requests the configured endpoints in proportion to their weights."""

    tasks = _tasks(_SETTINGS)  # type: ignore[assignment] # Locust documents {task: weight} too
    wait_time = constant(_SETTINGS.think_time)
