"""What the Actions runner would read as workflow commands in a step's log (its rules, for the tests).

The runner (``ActionCommandManager``) reads each line of a step's output: a line is a command when,
trimmed of whitespace, it starts with ``::`` (``::error::…``), or when it holds ``##[`` anywhere (the
older form, ``##[error]…``). ``::stop-commands::TOKEN`` stops both until a line ``::TOKEN::``. A line
ends at ``\\n`` or ``\\r``. These rules are read on the safe side: any name counts, registered or not.
"""

from __future__ import annotations

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def workflow_commands(log: str) -> list[str]:
    """The lines of ``log`` the runner would act on, in order (the stop/resume lines included)."""
    commands: list[str] = []
    resume: str | None = None
    for line in _LINE_BREAK.split(log):
        trimmed = line.strip()
        if resume is not None:
            if trimmed == resume:
                commands.append(line)
                resume = None
            continue
        if trimmed.startswith("::stop-commands::"):
            commands.append(line)
            resume = f"::{trimmed.removeprefix('::stop-commands::')}::"
        elif trimmed.startswith("::") or "##[" in line:
            commands.append(line)
    return commands
