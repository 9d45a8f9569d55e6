"""scripts/host-tools: each argument is COMMAND or COMMAND:PACKAGE (newuidmap comes from uidmap);
anything else is one clear line, exit 2, and nothing reaches apt-get."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "host-tools"


def host_tools(*args: str) -> subprocess.CompletedProcess[str]:
    # PATH without apt-get: should validation ever let an argument through, nothing gets installed
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}
    )


@pytest.mark.badinput
@pytest.mark.parametrize(
    "argument",
    [":uidmap", "newuidmap:", "a:b:c", "x;y", "-rf", "ok:-rf", "ok:Upper", "sh:$(id)", "sh:a b", "", "../x", "x:y/z"],
)
def test_host_tools_refuses_what_is_not_command_or_command_package(argument: str) -> None:
    result = host_tools("sh", argument)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "not COMMAND or COMMAND:PACKAGE" in result.stderr
    assert "installing" not in result.stderr


@pytest.mark.parametrize("arguments", [("sh",), ("sh:dash",), ("sh", "bash:bash", "env:coreutils")])
def test_host_tools_installs_nothing_when_every_command_is_there(arguments: tuple[str, ...]) -> None:
    result = host_tools(*arguments)
    assert result.returncode == 0 and result.stderr == ""
