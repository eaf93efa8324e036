"""Build the action's image from our Dockerfile on a local Debian base, and unpack it.

Nothing here reaches a container registry or runs a container. The base is made with
mmdebstrap from Debian's packages; podman, with storage of our own under ``.cache/container``,
imports it and builds the Dockerfile on it with chroot isolation; the image is then unpacked
(``podman create`` + ``podman export``, never started) for ``in-rootfs.sh`` to run commands in.

Both expensive steps are cached across runs: the base tarball by a hash of everything that
makes it, the image by podman's own layer cache. A clean clone builds everything from nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "container"
RUN_DIRS = Path("/run/ci-perf-test")
IN_ROOTFS = Path(__file__).with_name("in-rootfs.sh")
TOOLS = ("podman", "mmdebstrap", "unshare", "chroot")

IMAGE = "localhost/ci-perf-action:test"
# each earlier stage gets a tag of its own so that pruning old images keeps its layers cached
STAGES = {"build": "localhost/ci-perf-action-build:test", "slim-base": "localhost/ci-perf-action-base:test"}

# Debian's python3 is the interpreter the image must also work with (/usr/bin/python3, 3.11,
# externally managed, no pip): the official image has /usr/local/bin/python3 instead.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The build downloads from PyPI inside the base, so the base trusts what the host trusts
# (a TLS-intercepting proxy's CA included); its hash is part of the cache key.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

LOCK_TIMEOUT_S = 900
MMDEBSTRAP_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 900
STEP_TIMEOUT_S = 300


class ContainerBuildError(RuntimeError):
    """A tool failed; the message has its command and the end of what it printed."""


def missing_requirements() -> list[str]:
    """What this machine lacks to build and unpack the image: tools, and root for chroot."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (chroot, mounts and mmdebstrap --mode=root need it)")
    return missing


def mmdebstrap_command(output: Path) -> list[str]:
    """A minimal Debian bookworm with python3 and its venv module, as a tarball.

    No mirror is named: mmdebstrap then uses Debian's own, with bookworm's updates and security.
    """
    command = [
        "mmdebstrap",
        "--quiet",
        "--mode=root",
        "--variant=minbase",
        "--format=tar",
        f"--include={','.join(BASE_PACKAGES)}",
        # merged /usr without the usrmerge package (which would pull in perl)
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude=/usr/share/{folder}/*" for folder in ("doc", "man", "info", "locale")),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        # the host's name and resolver are no part of an image
        '--customize-hook=rm -f "$1/etc/hostname" "$1/etc/resolv.conf"',
    ]
    if HOST_CA_BUNDLE.is_file():
        command.append(f"--customize-hook=upload {HOST_CA_BUNDLE} {HOST_CA_BUNDLE}")
    return [*command, "bookworm", str(output)]


def base_key() -> str:
    digest = hashlib.sha256(json.dumps(mmdebstrap_command(Path("OUT"))).encode())
    if HOST_CA_BUNDLE.is_file():
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def run_tool(command: list[str], *, timeout: float, stdin: int | IO[bytes] | None = None) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, stdin=stdin)
    except subprocess.TimeoutExpired as exc:
        raise ContainerBuildError(f"{command[0]} ran over {timeout:.0f} s: {' '.join(command)}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise ContainerBuildError(f"exit {done.returncode}: {' '.join(command)}\n{output}")
    return done.stdout


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, as this process's mount namespace sees them."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split(" ")[4].replace("\\040", " ")
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(mount_point)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf, refused while anything is mounted below: it would delete through the mount."""
    if not path.exists():
        return
    if mounted := mounts_under(path):
        raise ContainerBuildError(f"not removing {path}: still mounted there: {mounted}")
    shutil.rmtree(path)


@contextmanager
def cache_lock() -> Iterator[None]:
    """One builder at a time per checkout; a second test run waits, up to a deadline."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ContainerBuildError(f"{CACHE / 'lock'} still held after {LOCK_TIMEOUT_S} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Podman:
    """podman on storage of our own, so that nothing lands in the system's and cleanup is rm -rf."""

    storage: Path
    driver: str

    @property
    def run_dir(self) -> Path:
        """Run and tmp dirs: on /run (cleared at boot, as podman expects) and stable per storage,
        because podman refuses a storage whose recorded run root differs; overlay wants ≤ 50 chars."""
        return RUN_DIRS / hashlib.sha256(str(self.storage).encode()).hexdigest()[:12]

    def command(self, *args: str) -> list[str]:
        return [
            "podman",
            f"--root={self.storage}",
            f"--runroot={self.run_dir / 'storage'}",
            f"--tmpdir={self.run_dir / 'libpod'}",
            f"--storage-driver={self.driver}",
            "--events-backend=none",
            "--cgroup-manager=cgroupfs",
            *args,
        ]

    def run(self, *args: str, timeout: float = STEP_TIMEOUT_S) -> str:
        return run_tool(self.command(*args), timeout=timeout)

    def has_image(self, name: str) -> bool:
        done = subprocess.run(self.command("image", "exists", name), check=False, timeout=STEP_TIMEOUT_S)
        return done.returncode == 0


def open_storage(key: str) -> Podman:
    """overlay where the kernel and filesystem allow it (3× faster than vfs, ¼ of the disk), else vfs."""
    refusals = []
    for driver in ("overlay", "vfs"):
        podman = Podman(storage=CACHE / f"podman-{driver}-{key}", driver=driver)
        probe = subprocess.run(podman.command("info"), capture_output=True, text=True, check=False, timeout=60)
        if probe.returncode == 0:
            break
        refusals.append(f"{driver}: {probe.stderr.strip()[-500:]}")
    else:
        raise ContainerBuildError(f"podman can use no storage driver in {CACHE}: {refusals}")
    for stale in CACHE.glob("podman-*"):  # storage of an older base: its layers are never used again
        if stale != podman.storage:
            remove_tree(stale)
            remove_tree(Podman(storage=stale, driver="").run_dir)
    return podman


def build_base(tarball: Path) -> None:
    partial = tarball.with_suffix(".partial.tar")
    partial.unlink(missing_ok=True)
    run_tool(mmdebstrap_command(partial), timeout=MMDEBSTRAP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    partial.rename(tarball)
    for stale in CACHE.glob("base-*.tar"):
        if stale != tarball:
            stale.unlink()


@dataclass
class BuiltImage:
    podman: Podman
    config: dict[str, object]
    size: int  # bytes, as `podman images` counts them (uncompressed)
    cached_steps: int  # steps of the Dockerfile's build that came from the layer cache; 0: a cold build
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> list[str]:
        env = self.config.get("Env") or []
        assert isinstance(env, list)
        return [str(item) for item in env]

    @property
    def entrypoint(self) -> list[str]:
        entrypoint = self.config.get("Entrypoint") or []
        assert isinstance(entrypoint, list)
        return [str(item) for item in entrypoint]


def build_image() -> BuiltImage:
    """The Dockerfile built on the local Debian base; cached layers are reused."""
    seconds: dict[str, float] = {}
    with cache_lock():
        key = base_key()
        tarball = CACHE / f"base-{key}.tar"
        started = time.monotonic()
        if not tarball.exists():
            build_base(tarball)
        seconds["base (mmdebstrap)"] = time.monotonic() - started

        started = time.monotonic()
        podman = open_storage(key)
        base_image = f"localhost/ci-perf-test-base:{key}"
        if not podman.has_image(base_image):
            podman.run("import", str(tarball), base_image)
        seconds["import"] = time.monotonic() - started

        cached_steps = build_dockerfile(podman, base_image, seconds)
        podman.run("image", "prune", "--force")  # earlier builds' layers, now untagged

        inspected = json.loads(podman.run("image", "inspect", IMAGE))
    return BuiltImage(
        podman=podman,
        config=inspected[0]["Config"],
        size=int(inspected[0]["Size"]),
        cached_steps=cached_steps,
        seconds=seconds,
    )


def build_dockerfile(podman: Podman, base_image: str, seconds: dict[str, float]) -> int:
    """``podman build`` of the Dockerfile on our base, timed (``seconds["build"]``); returns how many of its
    steps came from the cache.

    0 steps from the cache is the cold build that a GitHub runner does for every job. The earlier
    stages are then tagged (all from the cache, not timed) so that the prune keeps their layers.
    """
    build = ["build", "--pull=never", "--layers", "--isolation=chroot", f"--build-arg=BASE_IMAGE={base_image}"]
    build += ["--file", str(REPO / "Dockerfile")]
    started = time.monotonic()
    output = podman.run(*build, f"--tag={IMAGE}", str(REPO), timeout=BUILD_TIMEOUT_S)
    seconds["build"] = time.monotonic() - started
    for stage, tag in STAGES.items():
        podman.run(*build, f"--target={stage}", f"--tag={tag}", str(REPO), timeout=BUILD_TIMEOUT_S)
    return output.count("--> Using cache")


def unpack(image: BuiltImage, rootfs: Path) -> None:
    """The image's filesystem, as a container would see it, into ``rootfs`` (an empty folder)."""
    started = time.monotonic()
    with cache_lock():
        container = image.podman.run("create", "--network=none", IMAGE).strip()
        try:
            with subprocess.Popen(image.podman.command("export", container), stdout=subprocess.PIPE) as export:
                assert export.stdout is not None
                try:
                    untar = ["tar", "-x", "--numeric-owner", "-C", str(rootfs)]
                    run_tool(untar, timeout=STEP_TIMEOUT_S, stdin=export.stdout)
                finally:
                    export.stdout.close()  # a tar that failed must not leave podman blocked on a full pipe
                if export.wait(timeout=STEP_TIMEOUT_S) != 0:
                    raise ContainerBuildError(f"podman export {container} failed with exit {export.returncode}")
        finally:
            image.podman.run("rm", "--force", container)
    image.seconds["unpack"] = time.monotonic() - started


def in_rootfs(
    rootfs: Path, *command: str, env: list[str], workdir: str = "/", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``command`` in the unpacked image with exactly ``env``; mounts and processes end with it."""
    return subprocess.run(
        [str(IN_ROOTFS), str(rootfs), workdir, *env, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
