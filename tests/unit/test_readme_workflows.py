"""The workflows the docs tell users to copy lint clean, and the lint would notice if one stopped to.

tests/support/readme_workflows.py runs actionlint and zizmor on them; `make lint` runs it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.readme_workflows import REPO, default_docs, lint, main, workflows_in

CLEAN = """\
name: perf
on: pull_request
permissions: {}
jobs:
  check:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1
        with:
          persist-credentials: false
      - run: echo checked
"""


def doc_with(tmp_path: Path, *blocks: str) -> Path:
    doc = tmp_path / "GUIDE.md"
    doc.write_text("# Guide\n\n" + "\n".join(f"Some prose.\n\n```yaml\n{block}```\n" for block in blocks))
    return doc


def test_every_workflow_in_the_docs_lints_clean() -> None:
    workflows = [workflow for doc in default_docs() for workflow in workflows_in(doc)]
    assert len([w for w in workflows if w.doc == REPO / "README.md"]) >= 5  # the README has five
    clean, output = lint(workflows)
    assert clean, output


def test_only_blocks_with_on_and_jobs_are_workflows_and_their_lines_are_the_docs(tmp_path: Path) -> None:
    config = "load: {users: 2}\nendpoints: [GET /]\n"
    broken = "on: pull_request\njobs:\n  check: [unclosed\n"  # a workflow an edit broke is still linted
    doc = doc_with(tmp_path, config, CLEAN, broken)

    workflows = workflows_in(doc)

    assert [w.text for w in workflows] == [CLEAN, broken]
    lines = doc.read_text().splitlines()
    assert [lines[w.line - 1] for w in workflows] == ["name: perf", "on: pull_request"]


def test_a_workflow_in_a_list_item_is_found_without_its_indent(tmp_path: Path) -> None:
    doc = tmp_path / "STEPS.md"
    indented = "".join(f"   {line}" if line.strip() else line for line in CLEAN.splitlines(keepends=True))
    doc.write_text(f"1. Publish it:\n\n   ```yaml\n{indented}   ```\n")

    (workflow,) = workflows_in(doc)

    assert workflow.text == CLEAN
    assert workflow.line == 4


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        pytest.param(("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest"), "actionlint", id="broken-yaml"),
        pytest.param(("run: echo checked", "run: echo ${{ github.event.pull_request.title }}"), "template-injection"),
        pytest.param(("@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7.0.1", "@v7"), "unpinned-uses"),
        pytest.param(
            ("        with:\n          persist-credentials: false\n", ""), "artipacked", id="token-kept-in-git"
        ),
    ],
)
def test_a_workflow_that_stops_linting_fails_the_lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], finding: str
) -> None:
    assert main([str(doc_with(tmp_path, CLEAN))]) == 0
    doc = doc_with(tmp_path, CLEAN.replace(*edit))

    assert main([str(doc)]) == 1
    assert finding in capsys.readouterr().out


def test_docs_without_workflows_fail_rather_than_pass_silently(tmp_path: Path) -> None:
    assert main([str(doc_with(tmp_path, "load: {users: 2}\n"))]) == 1
