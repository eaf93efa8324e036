"""What GitHub's runner does with an action, for tests that play the runner: metadata and file commands.

- ``Action``: an ``action.yml`` read as the runner reads it: the inputs with their defaults and the
  step's ``with:``, and the ``${{ … }}`` expressions of ``env:`` and ``outputs:`` evaluated. Only the
  contexts our actions use are known (``inputs``, ``github.token``, ``github.action_path``,
  ``steps.<id>.outputs``); any other expression is an error, so an action that starts using one
  fails here rather than being emulated wrongly.
- ``FileCommands``: the files behind ``GITHUB_OUTPUT``, ``GITHUB_ENV``, ``GITHUB_STEP_SUMMARY``,
  ``GITHUB_PATH`` and ``GITHUB_STATE``, named as the runner names them (``set_output_<uuid>`` …),
  and ``read_file_command``, which reads ``name=value`` lines and ``name<<DELIMITER`` blocks back
  the way the runner does after the step.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")

# variable → the runner's file name prefix (actions/runner: FileCommandManager)
FILE_COMMANDS = {
    "GITHUB_OUTPUT": "set_output",
    "GITHUB_ENV": "set_env",
    "GITHUB_STEP_SUMMARY": "step_summary",
    "GITHUB_PATH": "add_path",
    "GITHUB_STATE": "save_state",
}


def expand(text: str, context: Mapping[str, str]) -> str:
    """``text`` with each ``${{ name }}`` replaced from ``context`` (dotted names, as written in the file)."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name.startswith("steps.") and name not in context:
            return ""  # an output the step did not set is empty, as on the runner
        if name not in context:
            raise KeyError(f"expression ${{{{ {name} }}}} is not emulated (known: {', '.join(sorted(context))})")
        return context[name]

    return EXPRESSION.sub(value, text)


@dataclass(frozen=True)
class Action:
    """An action's metadata file."""

    path: Path
    metadata: dict[str, Any] = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> Action:
        return cls(path=path, metadata=yaml.safe_load(path.read_text(encoding="utf-8")))

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        inputs: dict[str, dict[str, Any]] = self.metadata["inputs"]
        return inputs

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        outputs: dict[str, dict[str, Any]] = self.metadata["outputs"]
        return outputs

    @property
    def runs(self) -> dict[str, Any]:
        runs: dict[str, Any] = self.metadata["runs"]
        return runs

    def context(self, with_: Mapping[str, str], *, github_token: str) -> dict[str, str]:
        """The expression context of the action's steps: ``inputs.*`` (``with:`` over the defaults) and ``github.*``."""
        unknown = set(with_) - set(self.inputs)
        assert not unknown, f"{self.path} has no input {sorted(unknown)}"
        github = {"github.token": github_token, "github.action_path": str(self.path.parent)}
        values = {name: str(spec.get("default", "")) for name, spec in self.inputs.items()} | dict(with_)
        return github | {f"inputs.{name}": expand(value, github) for name, value in values.items()}

    @staticmethod
    def env(env: Mapping[str, str], context: Mapping[str, str]) -> dict[str, str]:
        """An ``env:`` block evaluated; the runner passes an empty string for an empty result."""
        return {name: expand(str(value), context) for name, value in env.items()}


@dataclass(frozen=True)
class FileCommands:
    """One step's file-command files in ``folder`` (the runner's ``_runner_file_commands``), empty at the start."""

    folder: Path
    names: dict[str, str] = field(
        default_factory=lambda: {variable: f"{prefix}_{uuid.uuid4()}" for variable, prefix in FILE_COMMANDS.items()}
    )

    def create(self) -> FileCommands:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in self.names.values():
            (self.folder / name).write_text("", encoding="utf-8")
        return self

    def environ(self, seen_at: str | None = None) -> dict[str, str]:
        """The variables, pointing at ``seen_at`` (the folder as the step sees it: a container path) or the folder."""
        where = seen_at or str(self.folder)
        return {variable: f"{where}/{name}" for variable, name in self.names.items()}

    def path(self, variable: str) -> Path:
        return self.folder / self.names[variable]

    def read(self, variable: str) -> dict[str, str]:
        return read_file_command(self.path(variable))

    def summary(self) -> str:
        return self.path("GITHUB_STEP_SUMMARY").read_text(encoding="utf-8")


def read_file_command(path: Path) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` … ``DELIMITER`` blocks, as the runner reads GITHUB_OUTPUT/ENV."""
    values: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines())
    for line in lines:
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            else:
                raise ValueError(f"{path}: {name}'s block never ends with {delimiter}")
            values[name] = "\n".join(block)
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@dataclass(frozen=True)
class CompositeRun:
    code: int
    output: str
    outputs: dict[str, str]  # the action's outputs, as the calling job sees them
    summary: str  # every step's job summary, in order


def run_composite(
    action: Action, *, with_: Mapping[str, str], environ: Mapping[str, str], workspace: Path, temp: Path, timeout: float
) -> CompositeRun:
    """A composite action's steps as the runner runs them: ``bash --noprofile --norc -eo pipefail`` on each ``run:``.

    Each step gets ``environ`` (the job's), what earlier steps wrote to ``GITHUB_ENV``, ``GITHUB_ACTION_PATH``,
    fresh file-command files and its own ``env:`` evaluated; it runs in ``workspace``. A failing step ends the run.
    """
    context = action.context(with_, github_token=environ.get("GITHUB_TOKEN", ""))
    job_env = {**environ, "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp)}
    output, summary = [], []
    for index, step in enumerate(action.runs["steps"]):
        assert step.get("shell") == "bash", f"{action.path}: step {index} must say shell: bash"
        files = FileCommands(temp / "_runner_file_commands" / str(index)).create()
        script = temp / f"step-{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        step_env = job_env | {"GITHUB_ACTION_PATH": str(action.path.parent)} | files.environ()
        step_env |= action.env(step.get("env", {}), context)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        output.append(done.stdout + done.stderr)
        summary.append(files.summary())
        job_env |= files.read("GITHUB_ENV")
        if "id" in step:
            context |= {f"steps.{step['id']}.outputs.{k}": v for k, v in files.read("GITHUB_OUTPUT").items()}
        if done.returncode != 0:
            return CompositeRun(done.returncode, "".join(output), {}, "".join(summary))
    outputs = {name: expand(spec["value"], context) for name, spec in action.outputs.items()}
    return CompositeRun(0, "".join(output), outputs, "".join(summary))
