"""The local baseline store: a directory (``.ci-perf/`` by default) of result files and an index.

Layout::

    .ci-perf/
      index.jsonl                          one line per recorded run (appended)
      runs/<scenario_key>/<time>-<sha>.json the full RunResult

The index is append-only and each line is written with one ``write`` call, so a
crash never leaves a half-recorded run behind; a line whose file is gone is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ci_perf.errors import InputError
from ci_perf.results import RunResult, load_result, save_result
from ci_perf.store import MatchedOn


class IndexEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    scenario_key: str
    load_key: str
    branch: str | None
    sha: str | None
    ended_at: float


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def index_path(self) -> Path:
        return self.root / "index.jsonl"

    def record(self, result: RunResult) -> str:
        meta = result.meta
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(meta.ended_at))
        millis = int(meta.ended_at * 1000) % 1000
        relative = f"runs/{meta.scenario_key}/{stamp}{millis:03d}-{(meta.git_sha or 'nosha')[:12]}.json"
        save_result(result, self.root / relative)
        entry = IndexEntry(
            file=relative,
            scenario_key=meta.scenario_key,
            load_key=meta.load_key,
            branch=meta.git_branch,
            sha=meta.git_sha,
            ended_at=meta.ended_at,
        )
        with self.index_path.open("a", encoding="utf-8") as index:
            index.write(entry.model_dump_json() + "\n")
        return str(self.root / relative)

    def entries(self) -> list[IndexEntry]:
        if not self.index_path.is_file():
            return []
        entries = []
        for number, line in enumerate(self.index_path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(IndexEntry.model_validate_json(line))
            except ValidationError as exc:
                raise InputError(f"{self.index_path}:{number}: not a ci-perf index line; remove that line") from exc
        return sorted(entries, key=lambda e: e.ended_at)

    def history(
        self, *, scenario_key: str, load_key: str, branch: str, limit: int
    ) -> tuple[list[RunResult], MatchedOn]:
        on_branch = [e for e in self.entries() if e.branch == branch]
        same = [e for e in on_branch if e.scenario_key == scenario_key]
        matched_on: MatchedOn = "scenario"
        if not same:
            same = [e for e in on_branch if e.load_key == load_key]
            matched_on = "load" if same else "scenario"
        runs = [load_result(self.root / e.file) for e in same[-limit:] if (self.root / e.file).is_file()]
        return runs, matched_on
