"""Fixtures of the live tests that more than one module uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_github import FakeGitHub


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A fresh stateful fake GitHub on a free loopback port."""
    with FakeGitHub() as server:
        yield server
