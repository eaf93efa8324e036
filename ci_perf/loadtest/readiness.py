"""Wait until the target answers before sending load, or fail with exit code 3."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

import httpx

from ci_perf.config import Readiness, format_duration
from ci_perf.errors import EnvironmentFailure


class NotReady(EnvironmentFailure):
    """The target never answered below 500 within ``readiness.timeout``."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine itself: ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wait_until_ready(target: str, readiness: Readiness, *, transport: httpx.BaseTransport | None = None) -> float:
    """Poll ``target + readiness.path`` until it answers below 500; return the seconds waited.

    Any status below 500 counts (an API's ``/`` often answers 404); 5xx and
    connection errors mean "not yet". Ctrl-C here says that no load was sent.
    """
    try:
        return _poll(target + readiness.path, readiness, transport=transport)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"no load was sent: the target was not ready yet ({target})") from None


def _poll(url: str, readiness: Readiness, *, transport: httpx.BaseTransport | None) -> float:
    began = time.monotonic()
    deadline = began + readiness.timeout
    last = "no answer"
    with httpx.Client(transport=transport, follow_redirects=False) as client:
        while True:
            remaining = deadline - time.monotonic()
            try:
                response = client.get(url, timeout=max(0.5, min(5.0, remaining)))
            except httpx.HTTPError as exc:
                last = _describe(exc)
            else:
                if response.status_code < 500:
                    return time.monotonic() - began
                last = f"HTTP {response.status_code}"
            if time.monotonic() + readiness.interval > deadline:
                raise NotReady(
                    f"the target did not become ready: GET {url} gave {last} for "
                    f"{format_duration(readiness.timeout)}; check the URL and that the service is up, "
                    "or raise readiness.timeout",
                    url=url,
                )
            time.sleep(readiness.interval)


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"connection error ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return "a timeout"
    return f"{type(exc).__name__} ({exc})"
