"""Lint the workflows that the docs tell users to copy: actionlint and zizmor on every README workflow.

A fenced ```yaml block of README.md or docs/*.md is a workflow when it is a mapping with ``on:`` and
``jobs:``. Each goes to ``.github/workflows/<doc>-line<N>.yml`` of a temporary folder (N: the block's
first line in the doc, so a finding at line L of that file is line N + L - 1 of the doc), and both
linters run on them: ``actionlint`` and ``zizmor --offline`` with tests/support/zizmor.yml, whose
every ignore says why. `make lint` runs this; tests/unit/test_readme_workflows.py keeps it honest.

    python -m tests.support.readme_workflows [DOC.md ...]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ZIZMOR_CONFIG = Path(__file__).with_name("zizmor.yml")
# a fence may be indented (a block inside a list item): its indent is stripped from every line
FENCE = re.compile(r"^([ \t]*)```yaml[ \t]*\n(.*?)^\1```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Workflow:
    doc: Path
    line: int  # the block's first line in the doc
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.doc.stem}-line{self.line}.yml"


def default_docs() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def is_workflow(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # a workflow broken by an edit is still one, so that actionlint reports it instead of it being skipped
        return bool(re.search(r"^on:", text, re.MULTILINE) and re.search(r"^jobs:", text, re.MULTILINE))
    # YAML 1.1 reads a bare `on` key as True
    return isinstance(data, dict) and ("on" in data or True in data) and "jobs" in data


def workflows_in(doc: Path) -> list[Workflow]:
    text = doc.read_text()
    found = []
    for block in FENCE.finditer(text):
        indent = block[1]
        body = "".join(line.removeprefix(indent) for line in block[2].splitlines(keepends=True))
        if is_workflow(body):
            first_line = text.count("\n", 0, block.start(2)) + 1
            found.append(Workflow(doc=doc, line=first_line, text=body))
    return found


def write_workflows(workflows: list[Workflow], root: Path) -> Path:
    """The workflows as a repository's ``.github/workflows`` under ``root``; returns that folder."""
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    for workflow in workflows:
        (folder / workflow.file_name).write_text(workflow.text)
    return folder


def linters(folder: Path) -> list[list[str]]:
    files = sorted(str(path) for path in folder.glob("*.yml"))
    bin_dir = Path(sys.executable).parent
    actionlint = shutil.which("actionlint", path=str(bin_dir)) or "actionlint"
    zizmor = shutil.which("zizmor", path=str(bin_dir)) or "zizmor"
    return [
        [actionlint, "-no-color", *files],
        [zizmor, "--offline", "--no-progress", f"--config={ZIZMOR_CONFIG}", *files],
    ]


def lint(workflows: list[Workflow]) -> tuple[bool, str]:
    """Both linters on the workflows; (all clean, what they printed)."""
    with tempfile.TemporaryDirectory(prefix="readme-workflows-") as root:
        folder = write_workflows(workflows, Path(root))
        clean, output = True, ""
        for command in linters(folder):
            done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
            clean = clean and done.returncode == 0
            output += f"$ {Path(command[0]).name} ...: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return clean, output.replace(f"{folder}/", "")


def main(argv: list[str]) -> int:
    docs = [Path(arg).resolve() for arg in argv] or default_docs()
    workflows = [workflow for doc in docs for workflow in workflows_in(doc)]
    if not workflows:
        print(f"no workflow found in {', '.join(map(str, docs))}")
        return 1
    clean, output = lint(workflows)
    listed = ", ".join(f"{w.doc.name}:{w.line}" for w in workflows)
    print(f"{len(workflows)} workflows ({listed}): {'clean' if clean else 'FINDINGS'}")
    if not clean:
        print(output + "A finding at line L of <doc>-line<N>.yml is line N + L - 1 of <doc>.")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
