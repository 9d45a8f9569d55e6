"""Scaffolding a new environment spec: check the request against the repository, then write
environments/NAME.toml. The spec's text is pure (`spec_text`); only `new` touches the disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement

from nbenv.dvc_outs import covering_output, tracked_outputs
from nbenv.errors import UsageError
from nbenv.fs import atomic_write
from nbenv.lock import name_problem
from nbenv.spec.load import environment_names, poetry_groups, pyproject_table
from nbenv.spec.models import SPEC_VERSION, _env_name, _group, _repo_path, text_problem
from nbenv.tomlio import did_you_mean
from nbenv.workspace import Workspace


@dataclass(frozen=True)
class Written:
    path: Path
    notes: list[str]  # what the user should know about the spec (printed, never an error)


def new(
    ws: Workspace,
    *,
    name: str,
    groups: Sequence[str],
    extends: str | None,
    description: str,
    force: bool,
    data: Sequence[str] = (),
) -> Written:
    """Write environments/NAME.toml; every check runs first, so nothing is written on error."""
    _check_request(ws, name, groups, extends, description)
    outputs = tracked_outputs(ws.root)
    paths = _check_data(data, outputs)
    path = ws.spec_path(name)
    if path.exists() and not force:
        raise UsageError(f"{ws.rel(path)}: already exists", "edit it, or pass --force to replace it")
    atomic_write(path, spec_text(name, groups, extends, description, paths, tracked=sorted(outputs)))
    return Written(path, notes(ws, groups=groups, extends=extends))


_SHOWN_OUTPUTS = 8  # DVC outputs named in a hint or in the starter spec's [[data]] examples


def _check_data(data: Sequence[str], outputs: dict[str, str]) -> list[str]:
    """`--data` paths: repo-relative and tracked by DVC (a .dvc file or a dvc.yaml output covers each),
    as `validate` will require; normalised, without duplicates."""
    paths: list[str] = []
    for value in data:
        try:
            path = _repo_path(value)
        except ValueError as exc:
            raise UsageError(f"--data: {exc}") from None
        if covering_output(path, outputs) is None:
            known = sorted(outputs)
            raise UsageError(
                f"--data: {path!r} is not tracked by DVC (no .dvc file or dvc.yaml output covers it)",
                f"DVC tracks here: {', '.join(known[:_SHOWN_OUTPUTS])}"
                if known
                else "track it first with `dvc add` (or a dvc.yaml stage)",
            )
        if path not in paths:
            paths.append(path)
    return paths


def main_dependencies(ws: Workspace) -> list[str]:
    """The names of the project's own dependencies (group `main`): `[project].dependencies`, else
    Poetry's `[tool.poetry.dependencies]` without `python`. Only well-formed names (they are printed)."""
    names: set[str] = set()
    for requirement in pyproject_table(ws, ("project",)).get("dependencies", []) or []:
        try:
            names.add(Requirement(requirement).name)
        except (InvalidRequirement, TypeError):
            continue  # not a PEP 508 string: nothing to name
    for key in pyproject_table(ws, ("tool", "poetry", "dependencies")):
        if key.lower() != "python" and name_problem(key) is None:
            names.add(key)
    return sorted(names, key=str.lower)


def notes(ws: Workspace, *, groups: Sequence[str], extends: str | None) -> list[str]:
    """What the user should know about the spec just written (printed, never an error): a root
    environment without `main` leaves out the project's own dependencies, which its package
    (importable = true) usually needs: `from PKG import ...` would then fail only inside the notebook."""
    if extends is not None or "main" in groups or not (deps := main_dependencies(ws)):
        return []
    shown = ", ".join(deps[:5]) + (", ..." if len(deps) > 5 else "")
    return [
        f"note: the groups leave out main, the project's own dependencies ({shown}); the project's package "
        f"(importable = true) may not import without them: add main to --groups unless no notebook imports it"
    ]


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


def spec_text(
    name: str,
    groups: Sequence[str],
    extends: str | None,
    description: str,
    data: Sequence[str] = (),
    *,
    tracked: Sequence[str] = (),
) -> str:
    """A commented starter spec, as tomlkit writes it: the chosen [[data]] (else commented examples
    naming what DVC tracks in this repository) and the Jupyter defaults."""
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
    if data:
        entries = tomlkit.aot()
        for path in data:
            entry = tomlkit.table()
            entry.add("path", path)
            entries.append(entry)
        doc.add("data", entries)
    else:
        for example in tracked[:_SHOWN_OUTPUTS] or ["data/processed/example"]:
            doc.add(tomlkit.comment("[[data]]"))
            doc.add(tomlkit.comment(f"path = {tomlkit.string(example).as_string()}"))
        doc.add(tomlkit.nl())
    jupyter = tomlkit.table()
    jupyter.add("port", 8888)
    jupyter.add("interface", "lab")
    doc.add("jupyter", jupyter)
    return tomlkit.dumps(doc)
