"""Scaffolding a new environment spec: check the request against the repository, then write
environments/NAME.toml. The spec's text is pure (`spec_text`); only `new` touches the disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tomlkit

from nbenv.errors import UsageError
from nbenv.fs import atomic_write
from nbenv.spec.load import environment_names, poetry_groups
from nbenv.spec.models import SPEC_VERSION, _env_name, _group, text_problem
from nbenv.tomlio import did_you_mean
from nbenv.workspace import Workspace


def new(ws: Workspace, *, name: str, groups: Sequence[str], extends: str | None, description: str, force: bool) -> Path:
    """Write environments/NAME.toml; every check runs first, so nothing is written on error."""
    _check_request(ws, name, groups, extends, description)
    path = ws.spec_path(name)
    if path.exists() and not force:
        raise UsageError(f"{ws.rel(path)}: already exists", "edit it, or pass --force to replace it")
    atomic_write(path, spec_text(name, groups, extends, description))
    return path


def _check_request(ws: Workspace, name: str, groups: Sequence[str], extends: str | None, description: str) -> None:
    """The options as the CLI names them: the same rules as a spec file, plus what the repository defines."""
    try:
        _env_name(name)
        for group in groups:
            _group(group)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if any("\ud800" <= char <= "\udfff" for char in description):  # bytes the locale could not decode
        raise UsageError(
            "--description: not valid UTF-8 text", "give one line of plain text (check the terminal's locale)"
        )
    if problem := text_problem(description):
        raise UsageError(f"--description: {problem}", "give one line of plain text")
    known = poetry_groups(ws)
    for group in groups:
        if group not in known:
            raise UsageError(
                f"--groups: unknown Poetry group {group!r}{did_you_mean(group, known)}",
                f"pyproject.toml defines: {', '.join(known)}",
            )
    if not groups and extends is None:
        raise UsageError("--groups: name at least one Poetry group (e.g. --groups notebook)")
    if extends is not None and extends not in environment_names(ws):
        raise UsageError(f"--extends: no environment {extends!r}{did_you_mean(extends, environment_names(ws))}")


def spec_text(name: str, groups: Sequence[str], extends: str | None, description: str) -> str:
    """A commented starter spec (a [[data]] example, the Jupyter defaults), as tomlkit writes it."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("A notebook environment, written by `nbenv new`. Every key, with its type and meaning:"))
    doc.add(tomlkit.comment("`nbenv schema` prints the JSON Schema of this file (editors validate with it)."))
    doc.add("spec_version", SPEC_VERSION)
    doc.add("name", name)
    doc.add("description", description)
    if extends:
        doc.add("extends", extends)
    doc.add("groups", tomlkit.array().multiline(False))
    doc["groups"].extend(groups)
    doc.add("importable", True)
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment("DVC-tracked data, mounted read-only (path: a .dvc output or a dvc.yaml out):"))
    doc.add(tomlkit.comment("[[data]]"))
    doc.add(tomlkit.comment('path = "data/processed/example"'))
    doc.add(tomlkit.nl())
    jupyter = tomlkit.table()
    jupyter.add("port", 8888)
    jupyter.add("interface", "lab")
    doc.add("jupyter", jupyter)
    return tomlkit.dumps(doc)
