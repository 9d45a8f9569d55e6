"""No user value can add an instruction to a generated Dockerfile or a key to a generated compose file.

Every free-text field of a spec holds hostile text: quotes, backslashes (also last, before the
closing quote), `$`, `${{ }}`, `$(...)`, instruction-looking text, unicode and values at the length
limit. Either the loader refuses a value with one line (newlines and other control characters, see
the bad-input corpus) or the output parses back to exactly the same structure with the value
intact.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

pytestmark = pytest.mark.security

HOSTILE = 'q"uo\'te \\ back$lash ${HOME} $(id) `id` ${{ secrets.X }} " RUN rm -rf / # ☃ \u202e end\\'
LONG = ("x" * 4000) + '"\\$'  # near the 4096-character limit, ending on characters that need escaping
PLAIN = "plain"


def spec(value: str, long: str) -> str:
    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)  # a TOML basic string is JSON-compatible here

    return f"""\
spec_version = 1
name = "hostile"
description = {q(value)}
groups = ["notebook"]
importable = false

[[mounts]]
source = "."
target = {q("/home/jovyan/w $x")}

[env]
A = {q(value)}
B = {q(long)}

[jupyter]
kernel_display_name = {q(value)}
"""


def render(workspace: Path, value: str, long: str) -> tuple[str, str]:
    (workspace / "environments/hostile.toml").write_text(spec(value, long), encoding="utf-8")
    result = run_cli("generate", "hostile", cwd=workspace)
    assert result.code == 0, result.err
    out = workspace / "docker/hostile"
    return (out / "Dockerfile").read_text(encoding="utf-8"), (out / "compose.yaml").read_text(encoding="utf-8")


def instructions(dockerfile: str) -> list[str]:
    """The instruction keyword of each logical line (continuations joined, comments dropped)."""
    logical, current = [], ""
    for line in dockerfile.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line
        if line.endswith("\\"):
            current = current[:-1]
            continue
        logical.append(current)
        current = ""
    assert current == "", "the file must not end inside a continuation"
    return [line.split()[0] for line in logical]


def label(dockerfile: str, key: str) -> str:
    """A LABEL value, unescaped the way the Dockerfile parser does it."""
    match = re.search(rf'{re.escape(key)}="((?:[^"\\]|\\.)*)"', dockerfile)
    assert match, key
    return re.sub(r"\\(.)", r"\1", match.group(1))


def register_arguments(dockerfile: str) -> list[str]:
    line = next(line for line in dockerfile.splitlines() if line.startswith("RUN [") and "register.py" in line)
    return list(json.loads(line.removeprefix("RUN ")))


@pytest.fixture
def rendered(workspace: Path) -> dict[str, tuple[str, str]]:
    plain = render(workspace, PLAIN, PLAIN)
    hostile = render(workspace, HOSTILE, LONG)
    return {"plain": plain, "hostile": hostile}


def test_hostile_values_add_no_dockerfile_instruction(rendered: dict[str, tuple[str, str]]) -> None:
    plain, hostile = rendered["plain"][0], rendered["hostile"][0]
    assert instructions(hostile) == instructions(plain)
    assert label(hostile, "org.opencontainers.image.description") == HOSTILE
    assert register_arguments(hostile)[3] == HOSTILE, "the kernel display name reaches register.py intact"


def test_hostile_values_add_no_compose_key_and_round_trip(rendered: dict[str, tuple[str, str]]) -> None:
    plain, hostile = (yaml.safe_load(rendered[k][1]) for k in ("plain", "hostile"))

    def shape(node: object) -> object:
        if isinstance(node, dict):
            return {k: shape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shape(v) for v in node]
        return type(node).__name__

    assert shape(hostile) == shape(plain)
    service = hostile["services"]["jupyter"]
    assert service["environment"] == {"A": HOSTILE.replace("$", "$$"), "B": LONG.replace("$", "$$")}
    assert "/home/jovyan/w $$x" in [v["target"] for v in service["volumes"]]


def test_docker_compose_reads_the_values_back_literally(workspace: Path, rendered: dict[str, tuple[str, str]]) -> None:
    compose = shutil.which("docker")
    command = [compose, "compose"] if compose else [str(Path(sys.executable).parent / "docker-compose")]
    path = workspace / "docker/hostile/compose.yaml"
    result = subprocess.run(
        [*command, "-f", str(path), "config", "--format", "json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    service = json.loads(result.stdout)["services"]["jupyter"]
    # compose prints literal dollars escaped again ($$): anything interpolated would have lost its `$`
    assert service["environment"]["A"] == HOSTILE.replace("$", "$$")
    assert service["environment"]["B"] == LONG.replace("$", "$$")
    targets = {v["target"] for v in service["volumes"]}
    assert targets & {"/home/jovyan/w $x", "/home/jovyan/w $$x"}, targets
