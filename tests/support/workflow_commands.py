"""What the Actions runner would read as workflow commands in a step's log (its rules, for the tests).

A line is a command when it starts with ``::`` (``::error::…``) or ``##[`` (the older form), unless
commands are stopped: ``::stop-commands::TOKEN`` stops them until a line ``::TOKEN::``.
"""

from __future__ import annotations


def workflow_commands(log: str) -> list[str]:
    """The lines of ``log`` the runner would act on, in order (the stop/resume lines included)."""
    commands: list[str] = []
    resume: str | None = None
    for line in log.splitlines():
        if resume is not None:
            if line == resume:
                commands.append(line)
                resume = None
            continue
        if line.startswith("::stop-commands::"):
            commands.append(line)
            resume = f"::{line.removeprefix('::stop-commands::')}::"
        elif line.startswith(("::", "##[")):
            commands.append(line)
    return commands
