"""Duet mode, inside Locust: every request goes to the head *and* the base deployment, in random order.

The runner adds this file to ``-f`` when ``comparison.baseline_target`` is set and passes the base URL
(``protocol.PluginSettings.baseline_target``). At ``init`` each User class (``HttpUser`` or ``FastHttpUser``, the
zero-code user included) gets a client that sends each call twice: to the head (``--host``) and to
the base, one after the other in a random order, so both arms share the same moment, the same
runner noise and the same load. The user's code sees the head's response; the base's request is
tagged ``context[protocol.ARM_KEY] = "base"`` for the collector. The base request never uses
``catch_response`` (its failures are counted by status code), so a user's validation code runs once.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from locust import events
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession, FastHttpUser
from locust.env import Environment
from locust.user.users import HttpUser

from ci_perf.loadtest.protocol import ARM_KEY, BASE, PluginSettings

_METHODS = ("request", "get", "post", "put", "patch", "delete", "head", "options")


class DuetClient:
    """Looks like the user's client; each request method calls the head and the base clients.

    Settings a user changes on its client (``client.auth = …``, ``client.headers[...] = …`` — the
    two sessions share one headers mapping) reach both; ``rename_request`` names both requests.
    """

    def __init__(self, head: Any, base: Any, rng: random.Random) -> None:
        object.__setattr__(self, "_head", head)
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_rng", rng)
        if hasattr(head, "headers") and hasattr(base, "headers"):
            base.headers = head.headers

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._head, name, value)
        setattr(self._base, name, value)

    @contextmanager
    def rename_request(self, name: str) -> Iterator[None]:
        with self._head.rename_request(name), self._base.rename_request(name):
            yield

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._head, name)
        if name not in _METHODS:
            return attribute

        def both(*args: Any, **kwargs: Any) -> Any:
            base_kwargs = {k: v for k, v in kwargs.items() if k != "catch_response"}
            base_kwargs["context"] = {**(kwargs.get("context") or {}), ARM_KEY: BASE}
            call_base = getattr(self._base, name)
            if self._rng.random() < 0.5:
                call_base(*args, **base_kwargs)
                return attribute(*args, **kwargs)
            response = attribute(*args, **kwargs)
            call_base(*args, **base_kwargs)
            return response

        return both


# FastHttpSession's settings, copied from the user as FastHttpUser builds its own client
_FAST_SETTINGS = (
    *("network_timeout", "connection_timeout", "max_redirects", "max_retries", "insecure", "concurrency"),
    *("client_pool", "ssl_context_factory", "proxy_host", "proxy_port"),
)


def _base_client(user: Any, base_url: str) -> Any:
    if isinstance(user, FastHttpUser):
        settings = {name: getattr(user, name) for name in _FAST_SETTINGS}
        return FastHttpSession(
            base_url=base_url,
            request_event=user.environment.events.request,
            user=user,
            headers=user.default_headers,
            **settings,
        )
    if isinstance(user, HttpUser):
        session = HttpSession(
            base_url=base_url, request_event=user.environment.events.request, user=user, pool_manager=user.pool_manager
        )
        session.trust_env = False  # as HttpUser's own client: no proxy from the environment for one arm only
        return session
    raise TypeError(f"duet mode needs HttpUser or FastHttpUser users; {type(user).__name__} is neither")


def _wrap(user_class: type, base_url: str, rng: random.Random) -> None:
    original = user_class.__init__  # type: ignore[misc] # the class's own, patched once per process

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not isinstance(self.client, DuetClient):
            self.client = DuetClient(self.client, _base_client(self, base_url), rng)

    user_class.__init__ = init  # type: ignore[misc]


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    base_url = PluginSettings.from_env(os.environ).baseline_target
    if not base_url:
        return
    rng = random.Random()  # noqa: S311 - the order of two requests, not cryptography
    for user_class in environment.user_classes:
        if not issubclass(user_class, (HttpUser, FastHttpUser)):
            raise TypeError(f"duet mode needs HttpUser or FastHttpUser users; {user_class.__name__} is neither")
        _wrap(user_class, base_url, rng)
