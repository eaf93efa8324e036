"""Pytest-style locustfiles (``def test_x(session): …``), loaded as plain ``locust`` loads them, whatever the
repository's pytest settings say.

When no file of ``-f`` defines a User class, Locust collects every file of ``-f`` with pytest
(``locust.util.load_locustfile.load_locustfile_pytest``). Under ci-perf that list holds ci-perf's own
plugins too, and collecting them would import each a second time (a second collector) and find
pytest's settings of whatever project they are installed in. ``install`` makes Locust skip ci-perf's
files, and ``pytest_users`` adds options that keep the user's pytest configuration from breaking the
load: no warning filters (``filterwarnings = error`` turns pytest's own "module already imported"
warning into a crash), no ``required_plugins``, no cache directory written into their repository.
Everything else (``conftest.py`` fixtures, ``python_functions``, ``pythonpath``) applies as with plain
``locust``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from locust.util import load_locustfile as loader

PLUGINS = Path(__file__).resolve().parent
# no warning filters (filterwarnings = error), no .pytest_cache, no required_plugins, minversion or strict_config
PYTEST_OPTIONS = (
    "-p", "no:warnings", "-p", "no:cacheprovider",
    "-o", "required_plugins=", "-o", "minversion=", "-o", "strict_config=false",
)  # fmt: skip
_LOCUSTS_LOADER = loader.load_locustfile_pytest


def is_ci_perf_file(path: str) -> bool:
    return Path(path).resolve().parent == PLUGINS


def pytest_users(path: str) -> dict[str, type]:
    """Locust's own pytest loader, with ``PYTEST_OPTIONS`` added to the options it gives pytest."""
    if is_ci_perf_file(path):
        return {}
    from _pytest.config import Config

    original = Config.__dict__["fromdictargs"]

    def with_our_options(cls: type[Config], option_dict: dict[str, Any], args: list[str]) -> Config:
        built: Config = original.__func__(cls, option_dict, [*PYTEST_OPTIONS, *args])
        return built

    Config.fromdictargs = classmethod(with_our_options)  # type: ignore[method-assign,assignment]
    try:
        users: dict[str, type] = _LOCUSTS_LOADER(str(Path(path).resolve()))
    finally:
        Config.fromdictargs = original  # type: ignore[method-assign]
    return users


def install() -> None:
    """Make Locust's ``main`` load pytest-style files through ``pytest_users``."""
    import locust.main  # here, not at the top: the probe has no use for Locust's main (and its web UI)

    locust.main.load_locustfile_pytest = pytest_users  # type: ignore[attr-defined]
