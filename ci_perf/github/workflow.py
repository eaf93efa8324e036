"""Talking to the Actions runner: workflow commands, step outputs, the job summary.

Off GitHub Actions (``on_actions=False``) the commands degrade to plain lines, so the same
code prints a readable log in a terminal or another CI system.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ci_perf.formatting import inert

SUMMARY_LIMIT = 1024 * 1024  # GitHub rejects a step summary above 1 MiB
# every problem a ConfigError reports is one line "FILE[:LINE]: text" (config.py writes them so)
_PROBLEM = re.compile(r"^(?P<file>[^:\n]+?)(?::(?P<line>\d+))?: (?P<text>.+)$")


class WorkflowLog:
    def __init__(self, stream: TextIO, *, on_actions: bool) -> None:
        self.stream = stream
        self.on_actions = on_actions

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        """A plain line; what it quotes (a config's endpoint, an artifact's commit) never reads as a command."""
        self._write(f"ci-perf: {inert(message)}")

    def warning(self, message: str) -> None:
        self._write(f"::warning title=ci-perf::{_escape_data(message)}" if self.on_actions else f"warning: {message}")

    def error(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        if not self.on_actions:
            self._write(f"error: {message}")
            return
        where = ",".join(
            f"{key}={_escape_property(str(value))}" for key, value in (("file", file), ("line", line)) if value
        )
        self._write(f"::error {where + ',' if where else ''}title=ci-perf::{_escape_data(message)}")

    def mask(self, secret: str) -> None:
        """Ask the runner to hide ``secret`` in the log. Only on Actions: elsewhere it would print it."""
        if self.on_actions and secret:
            self._write(f"::add-mask::{secret}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.on_actions:
            self._write(f"::group::{title}")
        try:
            yield
        finally:
            if self.on_actions:
                self._write("::endgroup::")

    @contextmanager
    def untrusted(self) -> Iterator[None]:
        """Lines written inside are never workflow commands: the runner stops reading commands until a
        token only this process knows (``::stop-commands::``). For text from load-test results (endpoint
        names, error messages) that a pull request's code or an artifact chose."""
        if not self.on_actions:
            yield
            return
        token = f"ci-perf-{secrets.token_hex(16)}"
        self._write(f"::stop-commands::{token}")
        try:
            yield
        finally:
            self._write(f"::{token}::")

    def config_problems(self, message: str, *, workspace: Path) -> None:
        """One ``::error file=…,line=…::`` annotation per problem of a ConfigError."""
        for raw in message.splitlines():
            match = _PROBLEM.match(raw)
            if not match:
                self.error(raw)
                continue
            file = Path(match["file"])
            relative = file.relative_to(workspace) if file.is_absolute() and file.is_relative_to(workspace) else file
            line = int(match["line"]) if match["line"] else None
            self.error(match["text"], file=str(relative), line=line)


def write_outputs(path: Path | None, outputs: Mapping[str, str]) -> None:
    """Append step outputs (``name<<DELIMITER`` blocks, safe for any value)."""
    if path is None:
        return
    with path.open("a", encoding="utf-8") as out:
        for name, value in outputs.items():
            delimiter = f"ci_perf_{secrets.token_hex(8)}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path | None, markdown: str) -> None:
    if path is None:
        return
    if len(markdown.encode()) > SUMMARY_LIMIT:
        markdown = markdown[: SUMMARY_LIMIT // 4] + "\n\n… cut to fit the job summary's 1 MiB limit\n"
    with path.open("a", encoding="utf-8") as summary:
        summary.write(markdown + "\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
