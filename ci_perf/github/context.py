"""The GitHub Actions runner's environment, read in one place into frozen models.

``ActionContext.from_environ`` is the only reader of ``INPUT_*`` and ``GITHUB_*``; the
rest of the action gets these models. Inputs have underscore-only names (hyphenated
inputs are reported not to reach Docker actions) and ``action.yml`` maps each one
explicitly, so a missing variable means "not set", never "misspelt".
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from ci_perf.errors import InputError
from ci_perf.models import Frozen

Mode = Literal["auto", "check", "record", "report", "watch"]
CommentPolicy = Literal["always", "on-change", "never"]
FailOn = Literal["budget", "regression"]
Unmatched = Literal["neutral", "fail"]

_MODES: tuple[Mode, ...] = ("auto", "check", "record", "report", "watch")
_COMMENTS: tuple[CommentPolicy, ...] = ("always", "on-change", "never")
_UNMATCHED: tuple[Unmatched, ...] = ("neutral", "fail")
_SUITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


class ActionInputs(Frozen):
    target_url: str | None = None
    config: str = "ci-perf.yml"
    locustfile: str | None = None
    github_token: str | None = None
    baseline_url: str | None = None
    mode: Mode = "auto"
    fail_on: tuple[FailOn, ...] | None = None
    comment: CommentPolicy = "always"
    out_dir: str = "ci-perf-out"
    extra_args: tuple[str, ...] = ()
    data_branch: str = "ci-perf-data"
    keep_runs: int = 100
    trust_pr_config: bool = False
    id: str = ""  # several suites in one repository: marker, check name, data-branch folder, title
    allow_pull_request_target: bool = False
    unmatched_baseline: Unmatched = "neutral"  # a change whose changed load has no baseline: neutral or fail


class Change(Frozen):
    """What a check judges: a pull request's head, or a merge queue's merge commit, and the base it goes into."""

    number: int | None  # the pull request; None for a merge group (a queue entry has no comment to post)
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str | None
    fork: bool


class ActionContext(Frozen):
    inputs: ActionInputs
    event_name: str
    event: dict[str, Any]
    repository: str | None
    sha: str | None
    ref: str | None
    api_url: str
    server_url: str
    run_id: str | None
    output_path: Path | None
    summary_path: Path | None
    workspace: Path
    on_actions: bool  # GITHUB_ACTIONS=true: workflow commands (::error::, ::group::) are understood

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, cwd: Path) -> ActionContext:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        inputs = _read_inputs(get)
        event_path = get("GITHUB_EVENT_PATH")
        return cls(
            inputs=inputs,
            event_name=get("GITHUB_EVENT_NAME") or "local",
            event=_read_event(Path(event_path)) if event_path else {},
            repository=get("GITHUB_REPOSITORY"),
            sha=get("GITHUB_SHA"),
            ref=get("GITHUB_REF"),
            api_url=(get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            server_url=(get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            run_id=get("GITHUB_RUN_ID"),
            output_path=Path(p) if (p := get("GITHUB_OUTPUT")) else None,
            summary_path=Path(p) if (p := get("GITHUB_STEP_SUMMARY")) else None,
            workspace=Path(get("GITHUB_WORKSPACE") or cwd),
            on_actions=get("GITHUB_ACTIONS") == "true",
        )

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"

    @property
    def branch(self) -> str | None:
        """The branch a push or scheduled run is on (``GITHUB_REF`` = ``refs/heads/<branch>``)."""
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref and self.ref.startswith(prefix) else None

    @property
    def default_branch(self) -> str | None:
        repo = self.event.get("repository")
        branch = repo.get("default_branch") if isinstance(repo, dict) else None
        return branch if isinstance(branch, str) else None

    @property
    def change(self) -> Change | None:
        """The pull request of a ``pull_request``/``pull_request_target`` event, or a ``merge_group``'s entry."""
        pr = self.event.get("pull_request")
        if isinstance(pr, dict):
            return _pull_from_payload(pr)
        group = self.event.get("merge_group")
        return _merge_group_from_payload(group) if isinstance(group, dict) else None

    def resolve(self, path: str) -> Path:
        """A path from an input, relative to the workspace (the checked-out repository)."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.workspace / candidate

    def in_workspace(self, path: Path) -> str | None:
        """``path`` relative to the workspace (``ci-perf-out/result.json``); ``None`` when it lies outside."""
        try:
            return path.resolve().relative_to(self.workspace.resolve()).as_posix()
        except ValueError:
            return None

    def for_later_steps(self, path: Path) -> str:
        """A path as a later step of the job can open it: relative to the workspace when inside it.

        A Docker action sees the workspace at ``/github/workspace``; the runner passes outputs on as
        they are, and the job's other steps see the workspace elsewhere (``$GITHUB_WORKSPACE``).
        """
        return self.in_workspace(path) or str(path)


def _pull_from_payload(pr: dict[str, Any]) -> Change | None:
    try:
        head, base = pr["head"], pr["base"]
        head_repo = (head.get("repo") or {}).get("full_name")
        base_repo = (base.get("repo") or {}).get("full_name")
        return Change(
            number=int(pr["number"]),
            head_sha=str(head["sha"]),
            head_ref=str(head["ref"]),
            base_ref=str(base["ref"]),
            base_sha=base.get("sha"),
            fork=bool(head_repo and base_repo and head_repo != base_repo),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _merge_group_from_payload(group: dict[str, Any]) -> Change | None:
    """``merge_group.{head,base}_{sha,ref}``; the refs are full (``refs/heads/main``), the branch is what counts."""
    try:
        return Change(
            number=None,
            head_sha=str(group["head_sha"]),
            head_ref=str(group["head_ref"]).removeprefix("refs/heads/"),
            base_ref=str(group["base_ref"]).removeprefix("refs/heads/"),
            base_sha=group.get("base_sha"),
            fork=False,
        )
    except (KeyError, TypeError):
        return None


def _read_event(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"GITHUB_EVENT_PATH: cannot read the event file {path} ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"GITHUB_EVENT_PATH: {path} is not a JSON object")
    return data


def _read_inputs(get: Callable[[str], str | None]) -> ActionInputs:
    values: dict[str, Any] = {}
    for name in ("target_url", "config", "locustfile", "github_token", "baseline_url", "out_dir", "data_branch"):
        if (value := get(f"INPUT_{name.upper()}")) is not None:
            values[name] = value
    if (mode := get("INPUT_MODE")) is not None:
        values["mode"] = _choice("mode", mode.lower(), _MODES)
    if (comment := get("INPUT_COMMENT")) is not None:
        values["comment"] = _choice("comment", comment.lower(), _COMMENTS)
    if (unmatched := get("INPUT_UNMATCHED_BASELINE")) is not None:
        values["unmatched_baseline"] = _choice("unmatched_baseline", unmatched.lower(), _UNMATCHED)
    if (fail_on := get("INPUT_FAIL_ON")) is not None:
        values["fail_on"] = _fail_on(fail_on)
    if (extra := get("INPUT_EXTRA_ARGS")) is not None:
        try:
            values["extra_args"] = tuple(shlex.split(extra))
        except ValueError as exc:
            raise InputError(f"input extra_args: {exc}; quote it like a shell command line") from exc
    if (keep := get("INPUT_KEEP_RUNS")) is not None:
        if not keep.isdigit() or int(keep) < 1:
            raise InputError(f"input keep_runs: expected a whole number ≥ 1, got {keep!r}")
        values["keep_runs"] = int(keep)
    for flag in ("trust_pr_config", "allow_pull_request_target"):
        if (value := get(f"INPUT_{flag.upper()}")) is not None:
            values[flag] = _boolean(flag, value)
    if (suite := get("INPUT_ID")) is not None:
        if not _SUITE_ID.fullmatch(suite):
            raise InputError(
                f"input id: {suite!r} must be 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(it names a folder on the data branch and the check run)"
            )
        values["id"] = suite
    return ActionInputs(**values)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"input {name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _fail_on(value: str) -> tuple[str, ...]:
    parts = tuple(p.strip().lower() for p in value.replace(",", " ").split())
    if parts in {("none",), ("never",)}:
        return ()
    for part in parts:
        _choice("fail_on", part, ("budget", "regression"))
    return parts


def _boolean(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InputError(f"input {name}: expected true or false, got {value!r}")
