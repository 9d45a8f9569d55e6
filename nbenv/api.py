"""Typed, keyword-only entry points; the CLI parses arguments and calls exactly one of these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from nbenv.errors import DriftError, SpecError, UsageError
from nbenv.fs import atomic_write
from nbenv.generate import GenerateResult, load_lock, plan_for
from nbenv.generate import generate as write_generated
from nbenv.spec.load import Loader, SpecErrors, environment_names, poetry_groups
from nbenv.spec.models import SPEC_VERSION, Environment, _env_name, _group
from nbenv.tomlio import did_you_mean
from nbenv.workspace import Workspace


def _workspace(repo: Path | None) -> Workspace:
    return Workspace.discover(repo)


def _names(ws: Workspace, names: Sequence[str]) -> list[str]:
    known = environment_names(ws)
    if not known:
        raise SpecError(
            f"{ws.rel(ws.environments_dir)}/: no environments",
            "create one with `nbenv new NAME --groups notebook`",
        )
    return list(names) or known


def validate(*, repo: Path | None = None) -> list[Environment]:
    """Check every environment (spec, repo, lock); raise SpecErrors listing every problem."""
    ws = _workspace(repo)
    loader = Loader(ws)
    errors: list[SpecError] = []
    resolved: list[Environment] = []
    lock = load_lock(ws)
    for name in _names(ws, ()):
        try:
            plan_for(ws, loader, lock, name)
            resolved.append(loader.environment(name))
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e.message not in {x.message for x in errors})
        except SpecError as exc:
            if exc.message not in {x.message for x in errors}:
                errors.append(exc)
    if errors:
        raise SpecErrors(errors)
    return resolved


@dataclass(frozen=True)
class EnvironmentRow:
    name: str
    extends: str | None
    groups: tuple[str, ...]
    port: int | None
    description: str
    problem: str | None


def list_environments(*, repo: Path | None = None) -> list[EnvironmentRow]:
    """One row per environments/*.toml; an invalid file is listed with its first problem."""
    ws = _workspace(repo)
    loader = Loader(ws)
    rows = []
    for name in environment_names(ws):
        try:
            env = loader.environment(name)
            rows.append(EnvironmentRow(name, env.extends, env.groups, env.jupyter.port, env.description, None))
        except SpecError as exc:
            rows.append(EnvironmentRow(name, None, (), None, "", exc.message))
    return rows


def show(*, repo: Path | None = None, name: str) -> Environment:
    """The resolved environment (extends applied, defaults filled in)."""
    ws = _workspace(repo)
    return Loader(ws).environment(name)


def generate(
    *,
    repo: Path | None = None,
    names: Sequence[str] = (),
    groups: Sequence[str] | None = None,
    check: bool = False,
) -> GenerateResult:
    """Write docker/NAME/ for each environment (all by default); with `check`, write nothing and
    raise DriftError naming every file that would change."""
    ws = _workspace(repo)
    if groups is not None and len(names) != 1:
        raise UsageError(
            "--groups applies to one environment: name it, e.g. `nbenv generate traffic-analysis --groups ...`"
        )
    loader = Loader(ws)
    lock = load_lock(ws)
    selected = _names(ws, names)
    plans = [plan_for(ws, loader, lock, name, groups) for name in selected]
    result = write_generated(ws, plans, check=check)
    drifted = result.changed + result.stale + _orphans(ws, names)
    if check and drifted:
        raise DriftError(
            f"{len(drifted)} generated file(s) out of date: {', '.join(drifted)}",
            "run `nbenv generate` and commit the result",
        )
    return result


def _orphans(ws: Workspace, names: Sequence[str]) -> list[str]:
    """Generated directories whose environment no longer exists."""
    if names or not ws.generated_dir.is_dir():
        return []
    known = set(environment_names(ws))
    return sorted(
        ws.rel(d) + "/"
        for d in ws.generated_dir.iterdir()
        if d.is_dir() and (d / "Dockerfile").exists() and d.name not in known
    )


def new(
    *,
    repo: Path | None = None,
    name: str,
    groups: Sequence[str],
    extends: str | None = None,
    description: str = "",
    force: bool = False,
) -> Path:
    """Write environments/NAME.toml with the given groups (validated first; nothing written on error)."""
    ws = _workspace(repo)
    try:
        _env_name(name)
        for group in groups:
            _group(group)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
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
    path = ws.spec_path(name)
    if path.exists() and not force:
        raise UsageError(f"{ws.rel(path)}: already exists", "edit it, or pass --force to replace it")
    atomic_write(path, _new_spec_text(name, groups, extends, description))
    return path


def _new_spec_text(name: str, groups: Sequence[str], extends: str | None, description: str) -> str:
    doc = tomlkit.document()
    doc.add(tomlkit.comment('A notebook environment: see README.md, section "Environment spec", for every key.'))
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
