"""action.yml and the README's workflows are consistent with what ``ci-perf action`` reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ci_perf.github.context import ActionInputs

ROOT = Path(__file__).parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def _readme_workflows() -> list[dict[str, object]]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## GitHub Action") : readme.index("## How it measures")]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)]


def test_every_input_has_an_underscore_name_and_is_mapped_explicitly_to_its_variable() -> None:
    env = ACTION["runs"]["env"]
    for name in ACTION["inputs"]:
        assert re.fullmatch(r"[a-z][a-z_]*", name), name
        assert env[f"INPUT_{name.upper()}"] == f"${{{{ inputs.{name} }}}}"
    assert set(env) == {f"INPUT_{name.upper()}" for name in ACTION["inputs"]}


def test_every_input_is_read_by_the_action_and_every_setting_is_an_input() -> None:
    assert set(ACTION["inputs"]) == set(ActionInputs.model_fields)


def test_the_action_is_a_docker_action_with_the_outputs_it_writes() -> None:
    assert ACTION["runs"]["using"] == "docker"
    assert ACTION["runs"]["image"] == "Dockerfile"
    assert set(ACTION["outputs"]) == {
        "verdict",
        "regressions",
        "budget_violations",
        "result_path",
        "report_path",
        "comment_url",
        "comment_file_written",
        "change_points",
    }
    assert ACTION["branding"]["icon"]


WORKFLOWS = _readme_workflows()


def test_the_readme_has_the_six_workflows() -> None:
    names = [w["name"] for w in WORKFLOWS]
    assert names == ["perf", "perf-host", "perf-check", "perf-report", "perf-duet", "perf-watch"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[str(w["name"]) for w in WORKFLOWS])
def test_each_readme_workflow_is_complete_and_uses_only_real_inputs(workflow: dict[str, object]) -> None:
    assert workflow.get(True) or workflow.get("on")  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict)
    assert jobs
    for job in jobs.values():
        assert job["runs-on"] == "ubuntu-latest"
        assert job.get("permissions") or workflow.get("permissions")
        steps = job["steps"]
        # the Docker action or host mode (host/action.yml: the same inputs)
        ours = [s for s in steps if str(s.get("uses", "")).startswith(("ci-perf/ci-perf@", "ci-perf/ci-perf/host@"))]
        assert len(ours) == 1
        assert set(ours[0].get("with", {})) <= set(ACTION["inputs"])


def test_every_yaml_example_in_the_readme_parses() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) >= 7
    for block in blocks:
        assert yaml.safe_load(block) is not None
