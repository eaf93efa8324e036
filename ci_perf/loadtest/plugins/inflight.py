"""Requests in flight, so that the end of the run can measure what was never answered.

Locust fires its request event only when a request is done; a request that hangs past the end of
the run would vanish. So the collector wraps ``HttpSession.request`` and ``FastHttpSession.request``
at class level (``install``): each call is registered with its start time and a token in its
``context`` (``protocol.INFLIGHT_KEY``) and leaves the register when its request event arrives (the
collector calls ``InFlight.forget``) or when the call raises. ``InFlight.close`` hands over what is
still registered — recorded as unfinished — and from then on a new request waits until its user is
stopped, so nothing is sent after the measured window.

Runs INSIDE Locust (imports Locust's clients).
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent.event
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession
from requests.models import PreparedRequest

from ci_perf.loadtest.protocol import INFLIGHT_KEY


@dataclass(slots=True)
class Pending:
    """One request sent and not yet reported; what Locust would report is worked out only if needed."""

    session: Any
    method: str
    url: str
    name: str | None
    params: Any
    context: dict[str, Any]
    started: float

    def request_type(self) -> str:
        return self.method.decode() if isinstance(self.method, bytes) else str(self.method)

    def full_url(self) -> str:
        return str(self.session._build_url(self.url))  # noqa: SLF001 - the URL Locust itself builds

    def report_name(self) -> str:
        """The name Locust gives the request: the ``name`` given, else (HttpSession) the path with the query."""
        if self.name:
            return self.name
        if isinstance(self.session, FastHttpSession):
            return str(self.url)
        prepared = PreparedRequest()
        try:
            prepared.prepare_url(self.full_url(), self.params)
        except Exception:  # noqa: BLE001 - an unpreparable URL is reported as given, like Locust does
            return str(self.url)
        return str(prepared.path_url)

    def full_context(self) -> dict[str, Any]:
        """The context Locust reports: the user's ``context()`` overlaid with the request's."""
        user = getattr(self.session, "user", None)
        return {**(user.context() if user is not None else {}), **self.context}


class InFlight:
    """The register of requests in flight in this process."""

    def __init__(self) -> None:
        self.pending: dict[int, Pending] = {}
        self.closed = False
        self._tokens = itertools.count()
        self._never = gevent.event.Event()

    def begin(self, pending: Pending) -> int:
        token = next(self._tokens)
        self.pending[token] = pending
        return token

    def forget(self, token: int) -> None:
        """The request was reported (its event arrived) or will never be (the call raised)."""
        self.pending.pop(token, None)

    def close(self) -> list[Pending]:
        """The measured window ended: what is still in flight; later requests wait for their user's end."""
        self.closed = True
        left = list(self.pending.values())
        self.pending.clear()  # the same dict: the collector holds it
        return left

    def park(self) -> None:
        """A request after the end: never sent (the user is about to be stopped)."""
        self._never.wait()


def _wrapped(original: Callable[..., Any], register: InFlight) -> Callable[..., Any]:
    positional = [
        parameter.name
        for parameter in list(inspect.signature(original).parameters.values())[3:]
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]  # after self, method, url: name, catch_response, … in the client's own order

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if register.closed:
            register.park()
        if args:
            kwargs.update(zip(positional, args, strict=False))
        context = kwargs.get("context") or {}
        pending = Pending(
            session=self,
            method=method,
            url=url,
            name=kwargs.get("name") or getattr(self, "request_name", None),
            params=kwargs.get("params"),
            context=context,
            started=time.time(),
        )
        token = register.begin(pending)
        kwargs["context"] = {**context, INFLIGHT_KEY: token}
        try:
            response = original(self, method, url, **kwargs)
        except BaseException:
            register.forget(token)  # no event follows (a broken URL, or the user was stopped)
            raise
        if not kwargs.get("catch_response"):
            register.forget(token)  # reported inside the call; with catch_response when its block ends
        return response

    request.__wrapped__ = original  # type: ignore[attr-defined]
    return request


def install(register: InFlight) -> None:
    """Route both Locust HTTP clients' requests through ``register`` (once per process)."""
    for session_class in (HttpSession, FastHttpSession):
        original = session_class.request
        original = getattr(original, "__wrapped__", original)
        session_class.request = _wrapped(original, register)  # type: ignore[method-assign]
