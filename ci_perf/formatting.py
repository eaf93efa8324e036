"""How numbers read, everywhere: the headline, the templates' filters, junit and the terminal.

Pure functions of a value; the templates get them as filters (``ms``, ``pct``, ``delta``, ``rps``,
``points``, ``p``, ``count``, ``value``) in ``report.py``.
"""

from __future__ import annotations

import math
import re


def format_value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "rps":
        return f"{value:.1f} rps" if value < 100 else f"{value:,.0f} rps"
    return f"{value:g}"


def format_ms(value: float | None) -> str:
    return format_value(value, "ms")


def format_pct(value: float | None) -> str:
    return format_value(value, "%")


def format_rps(value: float | None) -> str:
    return format_value(value, "rps")


def format_delta(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f} %"


def format_points(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f} pp"


def format_p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}" if value < 0.01 else f"{value:.2f}"


def format_count(value: int) -> str:
    return f"{value:,}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# Workflow commands the Actions runner reads from a log line: ``::name::`` at its start, ``##[name]`` anywhere;
# a zero-width space after the first character of each ``::`` and ``##[`` leaves neither to read.
_COMMAND_OPENER = re.compile(r"[:](?=:)|#(?=#\[)")


def flat_text(text: object, limit: int) -> str:
    """Untrusted text as one line: whitespace of any kind (newlines, CR, U+2028) becomes one space, control and
    format characters (escapes, zero-width and bidi controls) are dropped, and it is cut at ``limit`` characters."""
    return _cut(_printable_line(text), limit)


def one_line(text: object, limit: int) -> str:
    """Untrusted text as one inert line for a log, a terminal, a check run's title or an XML attribute:
    ``flat_text``, and no ``::`` or ``##[`` left for the runner to read as a workflow command."""
    return _cut(inert(_printable_line(text)), limit)


def inert(text: str) -> str:
    """``text`` with a zero-width space inside every ``::`` and ``##[``: no line of it is a workflow command."""
    return _COMMAND_OPENER.sub(lambda match: match[0] + "\u200b", text)


def _printable_line(text: object) -> str:
    return "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
