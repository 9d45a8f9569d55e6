"""Running external commands: argv built without None options, logged without the environment."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("nbenv")


def argv(*parts: str | Sequence[str] | None) -> list[str]:
    """Flatten parts into an argv, dropping None (an option that is not set)."""
    out: list[str] = []
    for part in parts:
        if part is None:
            continue
        out.extend([part] if isinstance(part, str) else part)
    return out


def run(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = False, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    log.debug("$ %s", shlex.join(command))
    return subprocess.run(list(command), env=env, capture_output=True, text=True, check=check, timeout=timeout)


def stream(command: Sequence[str], *, env: Mapping[str, str] | None, on_line: Callable[[str], None]) -> int:
    """Run `command`, handing each output line (stdout and stderr merged) to `on_line`; return the exit code."""
    log.debug("$ %s", shlex.join(command))
    with subprocess.Popen(
        list(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                on_line(line.rstrip("\n"))
        except BaseException:
            process.kill()
            raise
        return process.wait()
