"""The locked environment has what its packages need: an override in pyproject.toml's [tool.uv]
applies to every package that asks for a name, so dropping one of apache-otava's CLI libraries can
take a library from another package too (it once took Locust's configargparse)."""

from __future__ import annotations

import importlib.metadata as metadata
import re

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

pytestmark = pytest.mark.unit

# apache-otava's own CLI (importers, notifiers); ci-perf imports only otava.analysis
DROPPED_FOR_OTAVA = {
    "google-cloud-bigquery",
    "pg8000",
    "slack-sdk",
    "dateparser",
    "pystache",
    "validators",
    "tabulate",
    "ruamel-yaml",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _missing(distribution: str) -> list[str]:
    environment = {**default_environment(), "extra": ""}
    missing = []
    for line in metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        try:
            metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(_normal(requirement.name))
    return missing


@pytest.mark.parametrize("distribution", ["ci-perf", "locust", "pygithub", "httpx", "scipy", "jinja2", "pydantic"])
def test_every_requirement_of_the_stack_is_installed(distribution: str) -> None:
    assert _missing(distribution) == []


def test_only_otava_s_cli_libraries_are_left_out_of_otava() -> None:
    assert set(_missing("apache-otava")) <= DROPPED_FOR_OTAVA
    import otava.analysis  # noqa: F401 - what ci_perf.analysis.changepoints imports
