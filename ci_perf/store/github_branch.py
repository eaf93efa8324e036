"""The baseline store on a data branch of the repository (default ``ci-perf-data``).

Layout of the branch (an orphan: it shares no history with the code)::

    README.md                                        what this branch is
    index.json                                       {"schema_version": 1, "runs": [IndexEntry, ...]}
    runs/<scenario_key>/<branch>/<time>-<sha>.json   the full RunResult of each recorded run
    suites/<suite>/index.json, suites/<suite>/runs/  the same for a named suite (the action's ``id``)

Several suites of one repository (a matrix of services) share the branch, each in its own
folder, so that none overwrites another's history; the default suite ("") is the root.

A run is recorded with one commit made through the Git Data API (blobs → tree → commit) and
a compare-and-swap on the branch ref (a fast-forward-only update): when another job moved
the branch meanwhile, the update is refused and the record is redone on the new tip, up to
``MAX_ATTEMPTS`` times with jittered back-off. So concurrent recorders never lose a run and
never rewrite each other's. A branch protected against the update is not a race: the gateway
says so at once. Recording a commit again (a re-run of the job) replaces that commit's run of
the same scenario and branch, so a re-run never counts twice in the history. Retention keeps
the last ``keep`` runs per scenario and branch; older files leave the tree in the same commit,
so the branch never bloats (old commits keep them in git history, as any deleted file).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable

from pydantic import ValidationError

from ci_perf.errors import GitHubError, InputError
from ci_perf.github.gateway import GitHubGateway, Tree
from ci_perf.models import Frozen
from ci_perf.results import History, RunResult, parse_result
from ci_perf.store import IndexEntry, index_entry, run_file_name, select_history, select_noise_histories

INDEX = "index.json"
MAX_ATTEMPTS = 8
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
README = """# ci-perf data

This branch is written by [ci-perf](https://github.com/) on pushes to the default branch: one
JSON file per recorded load-test run under `runs/`, listed in `index.json`. Pull requests read it
to compare their run with the base branch's history. Do not merge it into your code; deleting it
only deletes the history.
"""


class DataIndex(Frozen):
    schema_version: int = 1
    runs: list[IndexEntry] = []


class DataBranchStore:
    def __init__(
        self,
        gateway: GitHubGateway,
        *,
        branch: str = "ci-perf-data",
        keep: int = 100,
        suite: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if suite and (not SUITE_NAME.fullmatch(suite) or ".." in suite):
            raise InputError(
                f"suite {suite!r} cannot name a folder on the data branch: use up to 64 letters, digits, '.', '_' "
                "and '-', starting with a letter or digit (the action's id input)"
            )
        self.gateway = gateway
        self.branch = branch
        self.keep = keep
        self.suite = suite
        self.root = f"suites/{suite}/" if suite else ""
        self._sleep = sleep

    @property
    def index_path(self) -> str:
        return f"{self.root}{INDEX}"

    def record(self, result: RunResult) -> str:
        """Add ``result`` (replacing an earlier run of the same commit, scenario and branch); return where."""
        file = f"{self.root}runs/{run_file_name(result)}"
        content = result.model_dump_json().encode()
        entry = index_entry(result, file)
        sha = (result.meta.git_sha or "unknown")[:12]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            tip = self.gateway.branch_tip(self.branch)
            tree = self.gateway.tree_of(tip) if tip else None
            files, replaced = self._changes(tree, entry, content)
            verb = "re-record" if replaced else "record"
            commit = self.gateway.commit_files(
                parent=tip,
                base_tree=tree.sha if tree else None,
                files=files,
                message=f"ci-perf: {verb} {result.meta.scenario_key} @ {sha}",
            )
            moved = (
                self.gateway.move_branch(self.branch, commit, parent=tip)
                if tip
                else self.gateway.create_branch(self.branch, commit)
            )
            if moved:
                return f"{self.branch}:{file}"
            self._sleep(random.uniform(0.1, 0.5) * attempt)  # noqa: S311 - jitter, not cryptography
        raise GitHubError(
            f"could not record the run on branch {self.branch}: it moved {MAX_ATTEMPTS} times while writing; "
            "too many concurrent recorders"
        )

    def history(
        self, *, scenario_key: str, load_key: str, branch: str, limit: int, prefer_sha: str | None = None
    ) -> History:
        tip = self.gateway.branch_tip(self.branch)
        if tip is None:
            return History()
        tree = self.gateway.tree_of(tip)
        entries = self._index(tree).runs
        chosen = select_history(
            entries,
            scenario_key=scenario_key,
            load_key=load_key,
            branch=branch,
            limit=limit,
            prefer_sha=prefer_sha,
        )
        runs = self._load(tree, chosen.entries)
        noise = select_noise_histories(entries, branch=branch, chosen=chosen.entries)  # one blob per run, ≤ 20
        others = [loaded for loaded in (self._load(tree, group) for group in noise) if loaded]
        return History(runs=runs, matched_on=chosen.matched_on, anchor_sha=chosen.anchor_sha, others=others)

    def _load(self, tree: Tree, entries: list[IndexEntry]) -> list[RunResult]:
        runs = []
        for entry in entries:
            blob = tree.files.get(entry.file)
            if blob is None:
                continue
            source = f"{self.branch}:{entry.file}"
            runs.append(parse_result(self.gateway.read_blob(blob).decode("utf-8", errors="replace"), source=source))
        return runs

    def _changes(self, tree: Tree | None, entry: IndexEntry, content: bytes) -> tuple[dict[str, bytes | None], bool]:
        """The files of the record's commit (``None`` deletes), and whether it replaces a run of the same commit."""
        index = self._index(tree)
        replaced = [e for e in index.runs if e.file == entry.file or _same_commit(e, entry)]
        runs, dropped = _retain([*[e for e in index.runs if e not in replaced], entry], keep=self.keep)
        files: dict[str, bytes | None] = {
            e.file: None for e in [*replaced, *dropped] if tree and e.file in tree.files and e.file != entry.file
        }
        files |= {entry.file: content, self.index_path: _dump(DataIndex(runs=runs))}
        if tree is None:
            files["README.md"] = README.encode()
        return files, bool(replaced)

    def entries(self) -> list[IndexEntry]:
        """Every run in the index, oldest first (``ci-perf watch`` finds the scenarios in it)."""
        tip = self.gateway.branch_tip(self.branch)
        return sorted(self._index(self.gateway.tree_of(tip) if tip else None).runs, key=lambda e: e.ended_at)

    def _index(self, tree: Tree | None) -> DataIndex:
        if tree is None or self.index_path not in tree.files:
            return DataIndex()
        text = self.gateway.read_blob(tree.files[self.index_path])
        try:
            return DataIndex.model_validate_json(text)
        except ValidationError as exc:
            raise InputError(
                f"{self.branch}:{self.index_path} is not a ci-perf index; fix or delete the file on that branch "
                "(deleting it starts a new history)"
            ) from exc


def _same_commit(recorded: IndexEntry, new: IndexEntry) -> bool:
    """A run of the same commit, scenario and branch: a re-run of the record job, which replaces it."""
    return recorded.sha is not None and (recorded.sha, recorded.scenario_key, recorded.branch) == (
        new.sha,
        new.scenario_key,
        new.branch,
    )


def _retain(entries: list[IndexEntry], *, keep: int) -> tuple[list[IndexEntry], list[IndexEntry]]:
    """(kept, dropped): the newest ``keep`` runs of each (scenario, branch), in time order."""
    ordered = sorted(entries, key=lambda e: e.ended_at)
    seen: dict[tuple[str, str | None], int] = {}
    kept_reversed: list[IndexEntry] = []
    dropped: list[IndexEntry] = []
    for entry in reversed(ordered):
        key = (entry.scenario_key, entry.branch)
        seen[key] = seen.get(key, 0) + 1
        (kept_reversed if seen[key] <= keep else dropped).append(entry)
    return kept_reversed[::-1], dropped


def _dump(index: DataIndex) -> bytes:
    return json.dumps(index.model_dump(mode="json"), indent=None, separators=(",", ":")).encode()
