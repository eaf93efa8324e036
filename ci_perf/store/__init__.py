"""Where base-branch runs are kept between CI runs; the history a new run is compared with."""

from __future__ import annotations

from typing import Literal, Protocol

from ci_perf.results import RunResult

MatchedOn = Literal["scenario", "load"]


class BaselineStore(Protocol):
    def record(self, result: RunResult) -> str:
        """Append a run; return where it was stored."""
        ...

    def history(
        self, *, scenario_key: str, load_key: str, branch: str, limit: int
    ) -> tuple[list[RunResult], MatchedOn]:
        """The last ``limit`` runs on ``branch`` (oldest first) of the same scenario.

        Falls back to runs with the same load settings (``matched_on="load"``) when
        none has the same endpoint set, so that adding an endpoint keeps the history
        of the others.
        """
        ...
