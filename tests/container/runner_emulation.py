"""GitHub's runner starting the Docker action, emulated on the unpacked image (docs/CONTAINER.md, "Runner emulation").

For a job without ``services:`` or ``container:`` the runner (actions/runner, ``ContainerActionHandler``) runs

    docker run --workdir /github/workspace -e HOME=/github/home -e GITHUB_… -e RUNNER_… -e INPUT_…
      -v <workspace>:/github/workspace -v <temp>/_github_home:/github/home
      -v <temp>/_github_workflow:/github/workflow -v <temp>/_runner_file_commands:/github/file_commands IMAGE

without ``--network``: on Docker's default bridge. The container has a network namespace of its own,
its ``localhost`` is its own, and the runner is the bridge's gateway (172.17.0.1 on GitHub's runners).

Here the same without Docker: ``Bridge`` is a network namespace (``ip netns add``) joined to the host by a
veth pair whose host end carries the gateway address, on a private /24 that no host route uses;
``run_docker_action`` runs the image's entry point in it through ``in-rootfs.sh`` (chroot, private mount
and PID namespaces) with the runner's bind mounts, environment and file-command files. Namespace and
veth names are unique per use, and both are deleted however the test ends.
"""

from __future__ import annotations

import ipaddress
import json
import random
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.container.image import IN_ROOTFS, REPO, BuiltImage, run_tool
from tests.support.actions_runner import Action, FileCommands

WORKSPACE = "/github/workspace"
FILE_COMMANDS = "/github/file_commands"
# a private range for the emulated bridges: one /24 each, chosen where no host route or address lies
BRIDGES = ipaddress.ip_network("10.213.0.0/16")
IP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Bridge:
    """A network namespace that sees the host only at ``gateway``, as a container on Docker's bridge does."""

    namespace: str
    host_interface: str
    network: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        return str(self.network[1])

    @property
    def address(self) -> str:
        return str(self.network[2])


def ip(*args: str) -> str:
    return run_tool(["ip", *args], timeout=IP_TIMEOUT_S)


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    routes = [route["dst"] for route in json.loads(ip("-json", "-4", "route", "show", "table", "all"))]
    addresses = [
        f"{address['local']}/{address['prefixlen']}"
        for link in json.loads(ip("-json", "-4", "address"))
        for address in link.get("addr_info", [])
    ]
    used = [ipaddress.ip_network(item, strict=False) for item in [*routes, *addresses] if item != "default"]
    return [network for network in used if isinstance(network, ipaddress.IPv4Network)]


def free_network() -> ipaddress.IPv4Network:
    """A /24 of ``BRIDGES`` that overlaps no route or address of the host (nor a parallel run's bridge)."""
    used = _networks_in_use()
    candidates = list(BRIDGES.subnets(new_prefix=24))
    random.shuffle(candidates)
    for network in candidates:
        if not any(network.overlaps(other) for other in used):
            return network
    raise RuntimeError(f"every /24 of {BRIDGES} is in use on this host")


def leftovers(bridge: Bridge) -> list[str]:
    """What of ``bridge`` still exists: its namespace, its host interface."""
    left = [f"namespace {bridge.namespace}"] if bridge.namespace in ip("netns", "list") else []
    links = subprocess.run(["ip", "link", "show", bridge.host_interface], capture_output=True, check=False)
    return left + ([f"interface {bridge.host_interface}"] if links.returncode == 0 else [])


@contextmanager
def docker_bridge() -> Iterator[Bridge]:
    """A bridge of the test's own, deleted at the end even when setting it up failed half way."""
    token = secrets.token_hex(4)
    bridge = Bridge(namespace=f"ci-perf-test-{token}", host_interface=f"cpt{token}h", network=free_network())
    peer = f"cpt{token}c"
    prefix = bridge.network.prefixlen
    try:
        ip("netns", "add", bridge.namespace)
        ip("link", "add", bridge.host_interface, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", bridge.namespace)
        ip("address", "add", f"{bridge.gateway}/{prefix}", "dev", bridge.host_interface)
        ip("link", "set", bridge.host_interface, "up")
        inside = ("-netns", bridge.namespace)
        ip(*inside, "link", "set", "lo", "up")
        ip(*inside, "address", "add", f"{bridge.address}/{prefix}", "dev", peer)
        ip(*inside, "link", "set", peer, "up")
        ip(*inside, "route", "add", "default", "via", bridge.gateway)
        yield bridge
    finally:
        # deleting the namespace deletes the peer, and with it the host end; delete that too if it was never moved
        subprocess.run(["ip", "netns", "delete", bridge.namespace], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", bridge.host_interface], capture_output=True, check=False)


@dataclass(frozen=True)
class Job:
    """The job as the runner lays it out on its disk: the checked-out workspace and its temp folders."""

    root: Path
    repository: str = "octo-org/shop"
    event_name: str = "workflow_dispatch"
    ref: str = "refs/heads/main"
    sha: str = "5" * 40

    @property
    def workspace(self) -> Path:
        return self.root / "work" / "shop" / "shop"

    @property
    def temp(self) -> Path:
        return self.root / "work" / "_temp"

    def event(self) -> dict[str, object]:
        repository = {"full_name": self.repository, "default_branch": "main"}
        return {"ref": self.ref, "inputs": {}, "repository": repository, "workflow": ".github/workflows/perf.yml"}


@dataclass(frozen=True)
class ActionRun:
    code: int
    output: str
    files: FileCommands


def runner_environ(job: Job, files: FileCommands) -> dict[str, str]:
    """The variables the runner passes to a Docker action's container (besides the inputs)."""
    owner = job.repository.split("/")[0]
    github = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "HOME": "/github/home",
        "GITHUB_WORKSPACE": WORKSPACE,
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_EVENT_NAME": job.event_name,
        "GITHUB_REPOSITORY": job.repository,
        "GITHUB_REPOSITORY_OWNER": owner,
        "GITHUB_REF": job.ref,
        "GITHUB_REF_NAME": job.ref.rsplit("/", 1)[-1],
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_SHA": job.sha,
        "GITHUB_RUN_ID": "9001",
        "GITHUB_RUN_NUMBER": "17",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "perf",
        "GITHUB_ACTION": "__ci-perf_ci-perf",
        "GITHUB_ACTION_REPOSITORY": "ci-perf/ci-perf",
        "GITHUB_ACTION_REF": "v1",
        "GITHUB_ACTOR": owner,
        "GITHUB_WORKFLOW": "perf",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_NAME": "GitHub Actions 2",
        "RUNNER_ENVIRONMENT": "github-hosted",
        "RUNNER_TEMP": str(job.temp),
        "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
        "ACTIONS_RUNTIME_URL": "https://pipelines.actions.githubusercontent.com/emulated/",
        "ACTIONS_RUNTIME_TOKEN": "emulated-runtime-token",
    }
    return github | files.environ(seen_at=FILE_COMMANDS)


def hosts_file(bridge: Bridge, names: Mapping[str, str]) -> str:
    """/etc/hosts as Docker writes it, plus ``names`` (a job network's DNS names for its service containers)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"{bridge.address}\temulated"]
    return "\n".join([*lines, *(f"{address}\t{name}" for name, address in names.items())]) + "\n"


def run_docker_action(
    image: BuiltImage,
    rootfs: Path,
    bridge: Bridge,
    job: Job,
    *,
    with_: Mapping[str, str],
    names: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> ActionRun:
    """``uses: ci-perf/ci-perf@v1`` with ``with_``, as the runner runs it: the image's entry point in ``bridge``."""
    action = Action.load(REPO / "action.yml")
    inputs = action.env(action.runs["env"], action.context(with_, github_token="ghs_emulated"))
    files = FileCommands(job.temp / "_runner_file_commands").create()
    workflow = job.temp / "_github_workflow"
    workflow.mkdir(parents=True, exist_ok=True)
    (workflow / "event.json").write_text(json.dumps(job.event()), encoding="utf-8")
    (job.temp / "_github_home").mkdir(parents=True, exist_ok=True)
    (job.temp / "hosts").write_text(hosts_file(bridge, names or {}), encoding="utf-8")
    mounts = {
        job.workspace: WORKSPACE,
        job.temp / "_github_home": "/github/home",
        workflow: "/github/workflow",
        files.folder: FILE_COMMANDS,
        job.temp / "hosts": "/etc/hosts",
    }
    binds = [part for host, inside in mounts.items() for part in ("--bind", str(host), inside)]
    # docker run: the image's Env first, then each -e (later assignments win in env(1) too)
    environ = [f"{k}={v}" for k, v in (runner_environ(job, files) | inputs).items()]
    command = ["ip", "netns", "exec", bridge.namespace, str(IN_ROOTFS), str(rootfs), WORKSPACE, *binds]
    command += [*image.env, *environ, *image.entrypoint]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    return ActionRun(code=done.returncode, output=done.stdout + done.stderr, files=files)
