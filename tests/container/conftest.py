"""The action's image, built once per test session and unpacked once, for every module in tests/container.

CI_PERF_CONTAINER_TEST decides what happens where the tools are missing: ``required`` (.ci/run sets it)
fails, ``skip`` skips always, unset (``auto``) runs where podman, mmdebstrap and root are at hand and skips
with the reason elsewhere (docs/CONTAINER.md, "Where it runs").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.container.image import BuiltImage, build_image, missing_requirements, mounts_under, remove_tree, unpack


def require(missing: list[str], *, what: str = "the container test") -> None:
    """Skip or fail, as CI_PERF_CONTAINER_TEST says, when anything is ``missing``; also for ``skip``."""
    mode = os.environ.get("CI_PERF_CONTAINER_TEST", "auto")
    if mode not in {"auto", "required", "skip"}:
        pytest.fail(f"CI_PERF_CONTAINER_TEST={mode!r}: use required, skip or auto")
    if mode == "skip":
        pytest.skip("CI_PERF_CONTAINER_TEST=skip")
    if missing:
        reason = f"{what} needs {', '.join(missing)} (.ci/run installs podman and mmdebstrap)"
        if mode == "required":
            pytest.fail(f"CI_PERF_CONTAINER_TEST=required: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def image() -> BuiltImage:
    require(missing_requirements())
    return build_image()


@pytest.fixture(scope="session")
def rootfs(image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("rootfs")
    try:
        unpack(image, root)
        yield root
        print("container test, seconds:", {step: round(s, 1) for step, s in image.seconds.items()})
        assert not mounts_under(root)
        left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(root) in " ".join(p.info["cmdline"] or [])]
        assert not left, f"processes still use the image's filesystem: {left}"
    finally:
        remove_tree(root)  # refuses, rather than delete through a mount
