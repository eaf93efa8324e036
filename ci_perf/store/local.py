"""The local baseline store: a directory (``.ci-perf/`` by default) of result files and an index.

Layout::

    .ci-perf/
      index.jsonl                                      one line per recorded run (appended)
      runs/<scenario_key>/<branch>/<time>-<sha>.json   the full RunResult

The index is append-only and each line is written with one ``write`` call, so a
crash never leaves a half-recorded run behind; a line whose file is gone is skipped.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ci_perf.errors import InputError
from ci_perf.results import History, RunResult, load_result, save_result
from ci_perf.store import IndexEntry, index_entry, run_file_name, select_history, select_noise_histories


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def index_path(self) -> Path:
        return self.root / "index.jsonl"

    def record(self, result: RunResult) -> str:
        relative = f"runs/{run_file_name(result)}"
        save_result(result, self.root / relative)
        with self.index_path.open("a", encoding="utf-8") as index:
            index.write(index_entry(result, relative).model_dump_json() + "\n")
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
        self, *, scenario_key: str, load_key: str, branch: str, limit: int, prefer_sha: str | None = None
    ) -> History:
        entries = self.entries()
        chosen = select_history(
            entries,
            scenario_key=scenario_key,
            load_key=load_key,
            branch=branch,
            limit=limit,
            prefer_sha=prefer_sha,
        )
        runs = self._load(chosen.entries)
        noise = select_noise_histories(entries, branch=branch, chosen=chosen.entries)
        others = [loaded for loaded in (self._load(group) for group in noise) if loaded]
        return History(runs=runs, matched_on=chosen.matched_on, anchor_sha=chosen.anchor_sha, others=others)

    def _load(self, entries: list[IndexEntry]) -> list[RunResult]:
        return [load_result(self.root / e.file) for e in entries if (self.root / e.file).is_file()]
