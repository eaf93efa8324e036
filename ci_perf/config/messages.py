"""Pydantic's validation errors in words a person can act on: the file, the line, the field, the fix.

``explain`` words a whole ``ValidationError`` for a file; ``describe`` one error (also for settings
that come from flags or action inputs). Locations are the file's: the ``gate`` that ``Config``
keeps ``performance_budget`` and ``comparison`` in is not a key of the file.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ci_perf.config.gate import Gate
from ci_perf.config.model import FILE_KEYS, Config


def explain(exc: ValidationError, *, source: Path, root: yaml.Node | None) -> str:
    lines = []
    for error in exc.errors():
        loc = file_location(error["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = line_of(root, loc)
        where = f"{source}:{line}" if line else str(source)
        lines.append(f"{where}: {field}: {describe(error, loc)}")
    shown = lines[:5]
    if len(lines) > 5:
        shown.append(f"... and {len(lines) - 5} more problems")
    return "\n".join(shown)


def file_location(loc: tuple[int | str, ...] | list[Any]) -> list[Any]:
    """A pydantic location as the file spells it: no validator tags, no ``gate`` level."""
    parts = [part for part in loc if not _is_validator_tag(part)]
    return parts[1:] if parts[:1] == ["gate"] else parts


def _is_validator_tag(part: object) -> bool:
    # pydantic adds union-member tags such as "function-before[...]" or "float" to locations
    return isinstance(part, str) and (part.startswith("function-") or part in {"float", "literal['auto']", "str"})


def describe(error: Any, loc: list[Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"allowed here: {', '.join(allowed)}"
        return f"unknown key; {hint}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"}:
        return f"expected a number, got {error['input']!r}; write a plain number such as 200"
    if kind == "literal_error":
        return f"got {error['input']!r}; {error['msg'].lower()}"
    if kind == "missing":
        return "this setting is required"
    return f"{error['msg']} (got {error['input']!r})"


def _allowed_keys(loc: list[Any]) -> list[str]:
    if not loc:
        return sorted(FILE_KEYS)
    model: type[BaseModel] | None = Config
    for index, part in enumerate(loc):
        if model is None or isinstance(part, int):
            continue
        field = (Gate if index == 0 and part in Gate.model_fields else model).model_fields.get(str(part))
        annotation = field.annotation if field else None
        model = _model_in(annotation)
    return sorted(model.model_fields) if model else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None


def line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or its nearest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((k for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            line = match.start_mark.line + 1
            node = {k.value: v for k, v in node.value}.get(str(part))
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
