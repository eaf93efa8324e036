"""The commit and branch a run belongs to: from the CI environment, else from git."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments
            ["git", *args],  # noqa: S607 - git from PATH, like any developer tool
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "HEAD" else None


def detect_git(environ: Mapping[str, str], cwd: Path) -> tuple[str | None, str | None]:
    """(sha, branch). GitHub's variables win; a detached HEAD has no branch."""
    sha = environ.get("GITHUB_SHA") or _git(["rev-parse", "HEAD"], cwd)
    branch = (
        environ.get("GITHUB_HEAD_REF")
        or environ.get("GITHUB_REF_NAME")
        or _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    )
    return sha, branch


def detect_repository(environ: Mapping[str, str], cwd: Path) -> str | None:
    """``owner/name``: GitHub's variable, else the last two parts of the ``origin`` remote's URL (no credentials)."""
    if environ.get("GITHUB_REPOSITORY"):
        return environ["GITHUB_REPOSITORY"]
    remote = _git(["remote", "get-url", "origin"], cwd)
    if not remote:
        return None
    if "://" in remote:  # https://user:token@host/owner/name.git, ssh://git@host:22/owner/name
        path = remote.split("://", 1)[1].partition("/")[2]
    else:  # git@host:owner/name.git, or a path
        path = remote.rpartition("@")[2].rpartition(":")[2]
    parts = [part for part in path.removesuffix(".git").split("/") if part]
    return "/".join(parts[-2:]) or None
