"""Reading ``ci-perf.yml``: YAML → ``Config`` (or only its ``Gate``), relative paths resolved.

``load_config`` is the way in; every problem becomes one ``ConfigError`` that names the file,
the field (with its line) and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ci_perf.config.gate import Gate
from ci_perf.config.messages import explain, line_of
from ci_perf.config.model import FILE_KEYS, Config, StoreSettings
from ci_perf.errors import ConfigError

DEFAULT_CONFIG_NAME = "ci-perf.yml"


def load_config(path: Path) -> Config:
    """Read and validate a config file, or raise one ``ConfigError`` a person can act on."""
    return parse_config(_read(path), source=path)


def load_gate(path: Path) -> Gate:
    """Only the gate of a config file (``performance_budget``, ``comparison``): what ``compare`` needs.

    The load settings are not read, so a file of another machine (a locustfile that is not here) judges too.
    """
    data, root = _parse_yaml(_read(path), source=path)
    unknown = sorted(str(key) for key in data if key not in FILE_KEYS)
    if unknown:
        raise _unknown_key(unknown[0], root, source=path)
    try:
        return Gate.model_validate({key: data[key] for key in Gate.model_fields if key in data})
    except ValidationError as exc:
        raise ConfigError(explain(exc, source=path, root=root)) from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file; create one (see `ci-perf schema`) or pass --config") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc


def parse_config(text: str, *, source: Path, check_files: bool = True) -> Config:
    """Validate config text. ``check_files=False`` for a config read from another commit (no checkout)."""
    data, root = _parse_yaml(text, source=source)
    if "gate" in data:  # Config's own field, not a key of the file; pydantic names every other unknown key
        raise _unknown_key("gate", root, source=source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source=source, root=root)) from exc
    return _resolve_paths(config, source=source, root=root) if check_files else config


def _unknown_key(key: str, root: yaml.Node | None, *, source: Path) -> ConfigError:
    guess = difflib.get_close_matches(key, FILE_KEYS, n=1)
    hint = f"did you mean '{guess[0]}'?" if guess else f"allowed: {', '.join(sorted(FILE_KEYS))}"
    return ConfigError(f"{source}:{line_of(root, [key])}: {key}: unknown key; {hint}")


def _parse_yaml(text: str, *, source: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """The top-level mapping and its node tree (for line numbers), or a ``ConfigError``."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}; fix the syntax there") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings like 'target: ...'")
    return data, root


def _resolve_paths(config: Config, *, source: Path, root: yaml.Node | None) -> Config:
    base = source.parent
    updates: dict[str, Any] = {}
    if config.locustfile:
        locustfile = base / config.locustfile
        if not locustfile.is_file():
            line = line_of(root, ["locustfile"])
            raise ConfigError(
                f"{source}:{line}: locustfile: {locustfile} does not exist; "
                "fix the path (it is relative to the config file's folder)"
            )
        updates["locustfile"] = str(locustfile)
    updates["store"] = StoreSettings(path=str(base / config.store.path))
    return config.model_copy(update=updates)
