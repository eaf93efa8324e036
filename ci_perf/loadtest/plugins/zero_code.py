"""A Locust user generated from the ``endpoints:`` list, for teams without a locustfile.

Runs INSIDE Locust. The runner passes the endpoints and the think time (seconds) in
``protocol.PluginSettings``. Each endpoint becomes one task, reported as ``METHOD path``
like every other endpoint. An endpoint's ``headers`` are expanded here, once, from this
process's environment (``${API_TOKEN}``): the secret stays in Locust's memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from locust import constant
from locust.contrib.fasthttp import FastHttpUser

from ci_perf.loadtest.protocol import PluginEndpoint, PluginSettings

_SETTINGS = PluginSettings.from_env(os.environ)


def _task(endpoint: PluginEndpoint) -> Callable[[FastHttpUser], None]:
    method, path, arguments = endpoint.method, endpoint.path, endpoint.request_arguments(os.environ)

    def run(user: FastHttpUser) -> None:
        user.client.request(method, path, **arguments)

    run.__name__ = f"{method} {path}"
    return run


def _tasks(settings: PluginSettings) -> dict[Callable[[FastHttpUser], None], int]:
    return {_task(e): e.weight for e in settings.endpoints}


class EndpointsUser(FastHttpUser):
    """Requests the configured endpoints in proportion to their weights."""

    tasks = _tasks(_SETTINGS)  # type: ignore[assignment] # Locust documents {task: weight} too
    wait_time = constant(_SETTINGS.think_time)
