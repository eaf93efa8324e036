"""host/action.yml, the composite action for host mode: the Docker action's inputs and outputs, its uv, no injection."""

from __future__ import annotations

import re

from tests.support.actions_runner import EXPRESSION, REPO, Action

DOCKER = Action.load(REPO / "action.yml")
HOST = Action.load(REPO / "host" / "action.yml")
FIX = "copy them from action.yml (host/action.yml says how)"


def test_host_mode_has_exactly_the_docker_actions_inputs() -> None:
    assert HOST.inputs == DOCKER.inputs, f"host/action.yml's inputs differ from action.yml's: {FIX}"


def test_host_mode_has_the_docker_actions_outputs_each_from_the_run_step() -> None:
    assert list(HOST.outputs) == list(DOCKER.outputs), FIX
    for name, spec in HOST.outputs.items():
        assert spec["description"] == DOCKER.outputs[name]["description"], name
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}", name


def test_host_mode_maps_every_input_to_the_same_variable_as_the_docker_action() -> None:
    (run,) = [step for step in HOST.runs["steps"] if step.get("id") == "run"]
    inputs = {name: value for name, value in run["env"].items() if name.startswith("INPUT_")}
    assert inputs == DOCKER.runs["env"]


def test_no_script_of_host_mode_interpolates_an_expression() -> None:
    """Inputs reach the scripts through env: only; ${{ }} in a script is template injection (zizmor)."""
    for step in HOST.runs["steps"]:
        assert not EXPRESSION.search(step["run"]), step["name"]
        assert step["shell"] == "bash", step["name"]


def test_host_mode_installs_the_makefiles_uv() -> None:
    makefile = re.search(r"^UV_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert makefile is not None
    (install,) = [step for step in HOST.runs["steps"] if step.get("id") == "install"]
    assert install["env"]["CI_PERF_UV_VERSION"] == makefile[1]
