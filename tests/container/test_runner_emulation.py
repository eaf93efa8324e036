"""The action's image run as GitHub's runner runs a Docker action: network, mounts, environment, file commands.

The check that would have caught the README's ``target_url: http://localhost:8000`` (issue 12): inside the
action's container, ``localhost`` is not the runner. How: runner_emulation.py and docs/CONTAINER.md.
The emulated job has no token (``github_token: ""``): GitHub's API is not reachable from the namespace,
and the in-process tests (tests/live/test_action.py) cover the API against the fake GitHub.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_perf.action import LOOPBACK_HINT
from tests.conftest import DemoService, start_demo_service, write
from tests.container.conftest import require
from tests.container.image import BuiltImage
from tests.container.runner_emulation import ActionRun, Bridge, Job, docker_bridge, leftovers, run_docker_action

CONFIG = """\
endpoints:
  - GET /api/products
  - 'POST /api/orders {"productId": 1}'
load: {users: 2, spawn_rate: 2, duration: 3s, warmup: 1s, stop_timeout: 2s}
readiness: {path: /health, timeout: 4s}
performance_budget:
  api_endpoints: {p95_latency_ms: 5000}
"""
NO_API = {"github_token": ""}  # the namespace reaches the runner only, not api.github.com


@pytest.fixture(scope="module")
def bridge(image: BuiltImage) -> Iterator[Bridge]:  # image: skipped or failed with the container tests
    require(["iproute2 (ip)"] if shutil.which("ip") is None else [], what="the runner emulation")
    with docker_bridge() as made:
        yield made
    assert not leftovers(made)


@pytest.fixture(scope="module")
def published(bridge: Bridge) -> Iterator[DemoService]:
    """A service whose port is published on the runner: it listens on the gateway's address (never a public one)."""
    service = start_demo_service(host=bridge.gateway)
    yield service
    service.stop()


def new_job(root: Path) -> Job:
    job = Job(root=root)
    write(job.workspace / "ci-perf.yml", CONFIG)
    return job


@pytest.fixture(scope="module")
def through_the_gateway(
    image: BuiltImage, rootfs: Path, bridge: Bridge, published: DemoService, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Job, ActionRun]:
    """The README's workflow: ports published on the runner, targeted at the Docker host's gateway."""
    job = new_job(tmp_path_factory.mktemp("job"))
    port = published.url.rsplit(":", 1)[1]
    target = f"http://{bridge.gateway}:{port}"
    return job, run_docker_action(image, rootfs, bridge, job, with_={"target_url": target, **NO_API})


def test_the_action_reaches_a_port_published_on_the_runner_through_the_gateway(
    through_the_gateway: tuple[Job, ActionRun], published: DemoService
) -> None:
    _, run = through_the_gateway
    assert run.code == 0, run.output
    assert published.total() > 0


def test_outputs_and_summary_land_in_the_file_command_files_as_a_later_step_reads_them(
    through_the_gateway: tuple[Job, ActionRun],
) -> None:
    job, run = through_the_gateway
    outputs = run.files.read("GITHUB_OUTPUT")
    assert outputs["verdict"] == "pass", run.output
    assert outputs["regressions"] == "0"
    assert outputs["budget_violations"] == "0"
    # a later step runs on the runner, in $GITHUB_WORKSPACE: the paths resolve there, not only in the container
    for name in ("result_path", "report_path"):
        assert not Path(outputs[name]).is_absolute(), outputs
        assert (job.workspace / outputs[name]).is_file(), outputs
    assert (job.workspace / outputs["report_path"]).read_text().startswith("<!-- ci-perf")
    assert "ci-perf" in run.files.summary()
    assert "GET /api/products" in run.files.summary()
    assert run.files.read("GITHUB_ENV") == {}  # nothing leaks into the job's environment


def test_a_service_container_is_reached_by_its_name_on_the_job_network(
    image: BuiltImage, rootfs: Path, bridge: Bridge, published: DemoService, tmp_path: Path
) -> None:
    port = published.url.rsplit(":", 1)[1]
    run = run_docker_action(
        image,
        rootfs,
        bridge,
        new_job(tmp_path),
        with_={"target_url": f"http://api:{port}", **NO_API},
        names={"api": bridge.gateway},  # the job network's DNS: the service's name → its address
    )
    assert run.code == 0, run.output
    assert run.files.read("GITHUB_OUTPUT")["verdict"] == "pass"


def test_a_loopback_target_is_the_actions_own_container_and_the_error_says_so(
    image: BuiltImage, rootfs: Path, bridge: Bridge, fresh_demo: DemoService, tmp_path: Path
) -> None:
    port = fresh_demo.url.rsplit(":", 1)[1]  # on the host's loopback: `npm start &` on the runner
    run = run_docker_action(
        image, rootfs, bridge, new_job(tmp_path), with_={"target_url": f"http://localhost:{port}", **NO_API}
    )
    assert run.code == 3, run.output
    assert LOOPBACK_HINT.format(host="localhost") in run.output
    assert fresh_demo.total() == 0  # not one request left the container's own network
