"""Error hints name what a user of the installed package can do (install Docker Engine, start it,
install mmdebstrap with apt), never this repository's development scripts, which an installed nbenv
does not have."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

# Strings in nbenv/ that may name scripts/: not messages to a user, but the header of a file that
# nbenv ships and this repo's scripts/server-pins writes.
ALLOWED = {("nbenv/server_env.py", "\nWritten by scripts/server-pins; do not edit")}


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return {
        id(body[0].value)
        for node in nodes
        if (body := getattr(node, "body", None))
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    }


def _message_strings() -> list[tuple[str, str]]:
    """(module, text) of every string constant in nbenv's code, docstrings left out (f-strings: their text parts)."""
    found = []
    for path in sorted((REPO / "nbenv").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                found.append((rel, node.value))
    return found


def test_no_message_in_the_package_names_the_repos_scripts() -> None:
    strings = _message_strings()
    assert len(strings) > 1000, "the scan saw nbenv's strings"
    naming = [(module, text) for module, text in strings if "scripts/" in text]
    unexpected = [(m, t) for m, t in naming if not any(m == module and part in t for module, part in ALLOWED)]
    assert not unexpected


COMMANDS = [
    ("ps",),
    ("down", "traffic-analysis"),
    ("image", "build", "traffic-analysis"),
    ("image", "status", "traffic-analysis"),
]


@pytest.mark.fault
@pytest.mark.parametrize("engine", ["missing", "stopped"])
@pytest.mark.parametrize("args", COMMANDS, ids=["-".join(a) for a in COMMANDS])
def test_no_engine_hint_says_what_to_install_or_start(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, args: tuple[str, ...]
) -> None:
    docker = tmp_path / "no-such" / "docker"
    if engine == "missing":
        monkeypatch.setenv("NBENV_DOCKER", str(docker))
    else:  # the real CLI and the Engine API, both pointed at a socket nothing listens on
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'stopped.sock'}")
    result = run_cli(*args, cwd=workspace)
    assert result.code == 6, result.err
    assert len(result.err_lines) == 2, result.err
    message, hint = result.err_lines
    if engine == "missing":
        assert message.endswith(f"the docker command ({docker}) is not installed")
        assert hint.startswith("  hint: install Docker Engine (Debian: `sudo apt-get install docker.io`)")
    else:
        assert "no Docker engine answers: Cannot connect to the Docker daemon" in message
        assert hint.startswith("  hint: start Docker (`sudo systemctl start docker`")
    assert "scripts/" not in result.err and "the project's" not in result.err


@pytest.mark.fault
def test_no_mmdebstrap_hint_is_an_apt_command() -> None:
    from nbenv.base_image import _find_mmdebstrap
    from nbenv.errors import BuildError

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", "/nonexistent")
        with pytest.raises(BuildError) as caught:
            _find_mmdebstrap()
    assert caught.value.hint == "apt-get install mmdebstrap"
