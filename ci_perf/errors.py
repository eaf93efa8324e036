"""The errors ci-perf raises on purpose, and the exit code each one maps to.

Every failure a user can cause or meet is one of these; anything else escaping
``main`` is a bug. The tree::

    CiPerfError                  base; ``exit_code`` and a one-sentence message
    ├── InputError               exit 2: the user gave us something we cannot use
    │   └── ConfigError          ... and it is the config file (names file and field)
    └── EnvironmentFailure       exit 3: the world failed (target down, Locust crashed)
        └── GitHubError          GitHub's API failed after bounded retries
            └── PermissionDenied ... with 403: the workflow's token lacks a permission

Exit code 1 (the gate failed) is not an error: it is a verdict, decided with
exit code 0 (a pass) in one place, ``analysis.judge.Judgement``.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class CiPerfError(Exception):
    """Base class; ``str(err)`` is the human sentence printed before exiting."""

    exit_code = EXIT_ENVIRONMENT


class InputError(CiPerfError):
    """Bad flags, a missing or broken locustfile, an unreadable result file."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """The config file is malformed; the message names the file, the field and the fix."""


class EnvironmentFailure(CiPerfError):
    """The target did not answer, Locust crashed, a service we depend on failed."""

    exit_code = EXIT_ENVIRONMENT


class GitHubError(EnvironmentFailure):
    """GitHub's API answered with an error, or not at all, after bounded retries."""


class PermissionDenied(GitHubError):
    """403 "Resource not accessible by integration": ``permission`` names what the workflow must grant."""

    def __init__(self, message: str, *, permission: str) -> None:
        super().__init__(message)
        self.permission = permission
