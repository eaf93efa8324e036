"""The GitHub Action's image: our Dockerfile built on a local Debian base and used without running a container.

How and why: docs/CONTAINER.md. The ``image`` and ``rootfs`` fixtures (conftest.py) build and unpack the
image once per session, and skip or fail where the tools are missing (CI_PERF_CONTAINER_TEST).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

from tests.conftest import DemoService, write
from tests.container.image import REPO, BuiltImage, in_rootfs

WORKSPACE = "/github/workspace"  # where GitHub runs a Docker action

CONFIG = """\
endpoints:
  - GET /api/products
  - 'POST /api/orders {"productId": 1}'
load: {users: 2, spawn_rate: 2, duration: 3s, warmup: 1s, stop_timeout: 2s}
readiness: {path: /health, timeout: 10s}
"""


def test_the_dockerfile_installs_the_makefiles_uv() -> None:
    makefile = re.search(r"^UV_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    dockerfile = re.search(r"^ARG UV_VERSION=(\S+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert makefile is not None
    assert dockerfile is not None
    assert dockerfile[1] == makefile[1]


def run_in_image(image: BuiltImage, rootfs: Path, *args: str, workdir: str = "/") -> tuple[int, str]:
    done = in_rootfs(rootfs, image.entrypoint[0], *args, env=[*image.env, "HOME=/root"], workdir=workdir)
    return done.returncode, done.stdout + done.stderr


def test_the_image_is_the_locked_venv_on_its_base_and_nothing_else(image: BuiltImage, rootfs: Path) -> None:
    assert image.entrypoint == ["ci-perf", "action"]
    assert "PYTHONUNBUFFERED=1" in image.env
    assert any(item.startswith("PATH=/opt/ci-perf/bin:") for item in image.env), image.env
    # no build tools or sources in the final stage
    assert not (rootfs / "opt" / "uv").exists()
    assert not (rootfs / "src").exists()
    assert not (rootfs / "opt" / "ci-perf" / "bin" / "pip").exists()
    # ci-perf installed from its wheel, templates included, not as an editable link to /src
    (site_packages,) = (rootfs / "opt" / "ci-perf" / "lib").glob("python3*/site-packages")
    assert (site_packages / "ci_perf" / "templates" / "comment.md.j2").is_file()
    assert not [path.name for path in site_packages.glob("*.pth") if "/src" in path.read_text()]


def test_ci_perf_starts_in_the_image(image: BuiltImage, rootfs: Path) -> None:
    code, output = run_in_image(image, rootfs, "--version")
    assert code == 0, output
    assert output.strip() == f"ci-perf {importlib.metadata.version('ci-perf')}"


def test_a_load_test_in_the_image_measures_a_service_on_the_host(
    image: BuiltImage, rootfs: Path, fresh_demo: DemoService
) -> None:
    workspace = rootfs / WORKSPACE.lstrip("/")
    write(workspace / "ci-perf.yml", CONFIG)

    code, output = run_in_image(
        image, rootfs, "run", "--config", "ci-perf.yml", "--target", fresh_demo.url, "--quiet", workdir=WORKSPACE
    )

    assert code in {0, 1}, output  # a verdict, pass or fail; never bad input or a broken environment
    out = workspace / "ci-perf-out"
    assert (out / "report.md").read_text().startswith("<!-- ci-perf -->"), output
    result = json.loads((out / "result.json").read_text())
    requests = sum(window["requests"] for endpoint in result["endpoints"] for window in endpoint["windows"])
    assert 0 < requests <= fresh_demo.total()
