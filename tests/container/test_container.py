"""The GitHub Action's image: our Dockerfile built on a local Debian base and used without running a container.

How and why: docs/CONTAINER.md. The ``image`` and ``rootfs`` fixtures (conftest.py) build and unpack the
image once per session, and skip or fail where the tools are missing (CI_PERF_CONTAINER_TEST).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import struct
from pathlib import Path

from tests.conftest import DemoService, write
from tests.container.image import REPO, BuiltImage, in_rootfs

WORKSPACE = "/github/workspace"  # where GitHub runs a Docker action
MAX_IMAGE_BYTES = 300_000_000  # issue 12, item 10: `podman images` said 448 MB before docker/slim.py

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


def test_the_image_is_at_most_300_mb_and_its_build_is_timed(image: BuiltImage) -> None:
    # the build time is what a runner waits for in every job (cold: 0 steps from the cache); docs/CONTAINER.md
    print(f"image: {image.size / 1e6:.0f} MB, build {image.seconds['build']:.0f} s, {image.cached_steps} steps cached")
    assert image.size <= MAX_IMAGE_BYTES, f"{image.size / 1e6:.0f} MB: see docs/CONTAINER.md, 'Size'"


def elf_sections(path: Path) -> set[str]:
    """Section names of a 64-bit little-endian ELF file (what `readelf -S` lists)."""
    data = path.read_bytes()
    (offset,) = struct.unpack_from("<Q", data, 0x28)
    size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [data[offset + i * size : offset + (i + 1) * size] for i in range(count)]
    names_offset = struct.unpack_from("<Q", headers[names_index], 0x18)[0]
    names = set()
    for header in headers:
        start = names_offset + struct.unpack_from("<I", header, 0)[0]
        names.add(data[start : data.index(b"\0", start)].decode())
    return names


def test_the_venv_is_slimmed_and_has_bytecode_for_what_ci_perf_imports(rootfs: Path) -> None:
    (site_packages,) = (rootfs / "opt" / "ci-perf" / "lib").glob("python3*/site-packages")
    assert not [path for path in site_packages.rglob("tests") if path.is_dir()]
    assert not list(site_packages.rglob("*.pyx")), "Cython sources are for building against scipy, not running it"
    extension = next(site_packages.glob("pydantic_core/_pydantic_core*.so"))
    assert ".symtab" not in elf_sections(extension), "shared objects are stripped (docker/slim.py)"
    # bytecode for the modules ci-perf imports, valid whatever the file times (unchecked hash: flags 0b01)
    pyc = next((site_packages / "ci_perf" / "__pycache__").glob("cli.*.pyc"))
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 1
    assert list((site_packages / "scipy" / "stats" / "__pycache__").glob("*.pyc"))
    assert not (site_packages / "scipy" / "io" / "__pycache__").exists(), "ci-perf never imports scipy.io"
    # nothing installs packages at run time: no apt, no Perl
    assert not (rootfs / "usr" / "bin" / "apt-get").exists()
    assert not (rootfs / "usr" / "bin" / "perl").exists()


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
