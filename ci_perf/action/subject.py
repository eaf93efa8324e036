"""What a check judges a change against: the base branch's gate and load, and its history.

A pull request (or a merge queue's entry) is run with the base branch's load settings and judged by
the base branch's gate. It can neither loosen its budget nor escape its baseline by changing the
load: what it changes is listed in the comment and applies once it is merged. Its endpoints are
its own (a new endpoint is compared with nothing, the others one by one). ``trust_pr_config: true``
opts out: the pull request's own settings are used as they are.

When the base branch's load cannot run under the pull request's config (the two no longer fit
together), the pull request's own load runs; if the base branch has history only for its own load,
the run has no baseline and says so: inconclusive (a neutral check) or, with
``unmatched_baseline: fail``, failed. It never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ci_perf.analysis.judge import Unmatched
from ci_perf.analysis.summarize import scenario_keys
from ci_perf.config import Config, gate_changes, parse_config, setting_changes, with_comparison, with_gate, with_load
from ci_perf.errors import ConfigError, InputError
from ci_perf.github.context import ActionContext, Change
from ci_perf.github.gateway import GitHubGateway
from ci_perf.github.workflow import WorkflowLog
from ci_perf.store import BaselineStore


@dataclass(frozen=True)
class Subject:
    """What a run is of: its commit and branch, the settings it runs and is judged with, where its history ends."""

    config: Config
    head_sha: str | None
    branch: str | None
    prefer_sha: str | None = None
    changes: tuple[str, ...] = ()  # the gate and load settings the change alters (shown, not applied)
    unmatched: Unmatched | None = None


def against(config: Config, branch: str | None) -> Config:
    """Unless the config names one, the baseline branch is ``branch`` (a pull request's base, the default branch)."""
    if branch is None or "baseline_branch" in config.gate.comparison.model_fields_set:
        return config
    return with_comparison(config, baseline_branch=branch)


def change_subject(
    context: ActionContext,
    config: Config,
    change: Change,
    *,
    gateway: GitHubGateway,
    store: BaselineStore,
    out: WorkflowLog,
) -> Subject:
    """A change's run: its head, run and judged with the base branch's settings, its history up to the merge base."""
    config = against(config, change.base_ref)
    base = None if context.inputs.trust_pr_config else _base_config(context, gateway, change, out)
    changes: list[str] = []
    unmatched = None
    if base is not None:
        fails = context.inputs.unmatched_baseline == "fail"
        config, changes, unmatched = _adopt(config, base, change, store, out, fails=fails)
    prefer_sha = gateway.merge_base(change.base_sha or change.base_ref, change.head_sha)
    out.info(
        f"baseline: {context.inputs.data_branch}, branch {config.gate.comparison.baseline_branch}, "
        f"merge base {prefer_sha}"
    )
    return Subject(
        config, change.head_sha, change.head_ref, prefer_sha=prefer_sha, changes=tuple(changes), unmatched=unmatched
    )


def _base_config(context: ActionContext, gateway: GitHubGateway, change: Change, out: WorkflowLog) -> Config | None:
    """The base branch's config file, as of the change's base; ``None`` when it has none or it is invalid."""
    path = repository_path(context, context.resolve(context.inputs.config))
    text = gateway.read_file(path, ref=change.base_sha or change.base_ref)
    if text is None:
        out.info(f"the base branch has no {path}: this change's settings are used")
        return None
    try:
        return parse_config(text, source=Path(f"{change.base_ref}:{path}"), check_files=False)
    except ConfigError as exc:
        out.warning(f"the base branch's {path} is invalid, so this change's settings are used: {exc}")
        return None


def _adopt(
    config: Config, base: Config, change: Change, store: BaselineStore, out: WorkflowLog, *, fails: bool
) -> tuple[Config, list[str], Unmatched | None]:
    """``config`` with the base branch's gate and load; what the change alters in them; a load left unmatched."""
    gate = against(base, change.base_ref).gate
    changes = gate_changes(gate, config.gate)
    try:
        config = with_gate(config, gate)  # the rules across sections hold for the mix too
    except ValueError as exc:
        raise InputError(f"the base branch's gate and this change's load settings conflict: {exc}") from exc
    load_changes = setting_changes("load", base.load, config.load)
    if changes:
        out.warning(f"this change alters the gate; judged with {change.base_ref}'s settings: {'; '.join(changes)}")
    if not load_changes:
        return config, changes, None
    try:
        config = with_load(config, base.load)
    except ValueError as exc:
        out.warning(f"{change.base_ref}'s load settings do not fit this change's config ({exc}); its own load runs")
        return config, changes + load_changes, _unmatched(config, base, store, load_changes, fails=fails)
    out.warning(f"this change alters the load; run with {change.base_ref}'s settings: {'; '.join(load_changes)}")
    return config, changes + load_changes, None


def _unmatched(
    config: Config, base: Config, store: BaselineStore, load_changes: list[str], *, fails: bool
) -> Unmatched | None:
    """The change runs its own load: unmatched when the baseline branch has runs of the base branch's load only."""
    comparison = config.gate.comparison
    if comparison.baseline_target:  # duet: the base deployment measured in the same run is the baseline
        return None

    def has_runs(load_key: str) -> bool:
        history = store.history(
            scenario_key="", load_key=load_key, branch=comparison.baseline_branch, limit=1, prefer_sha=None
        )
        return bool(history.runs)

    _, own = scenario_keys(config.load, ())
    _, bases = scenario_keys(base.load, ())
    if has_runs(own) or not has_runs(bases):
        return None
    return Unmatched(
        why=(
            f"this change alters the load ({'; '.join(load_changes)}) and the base branch's load cannot run "
            f"with its config, so its runs have no baseline on '{comparison.baseline_branch}'"
        ),
        fails=fails,
    )


def repository_path(context: ActionContext, path: Path) -> str:
    relative = context.in_workspace(path)
    if relative is None:
        raise InputError(f"input config: {path} is outside the repository ({context.workspace})")
    return relative
