"""`nbenv ci github`: the specs and `[tool.nbenv.ci]` -> .github/workflows/nbenv.yml (written or checked)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nbenv import __version__
from nbenv.errors import DriftError, SpecError, UsageError
from nbenv.fs import atomic_write
from nbenv.project import Project
from nbenv.render.workflow import (
    DEFAULT_OUTPUT,
    INDEX_URL_RE,
    WorkflowEnvironment,
    WorkflowPlan,
    render_workflow,
)
from nbenv.safepath import confine
from nbenv.spec.load import base_recipe, existing_environments
from nbenv.spec.models import Environment
from nbenv.tomlio import did_you_mean
from nbenv.workspace import Workspace

_OUTPUT = re.compile(r"^[A-Za-z0-9._/-]+\.ya?ml$")


@dataclass(frozen=True)
class CiResult:
    path: str  # repo-relative
    changed: bool  # written (or, with check, would be: never, since that raises)


def _base_of(ws: Workspace, env: Environment) -> tuple[str | None, str | None]:
    """The base image nbenv makes that the environment's chain builds FROM (nbenv/debian-python:SUITE or a
    base declared in [tool.nbenv.base_images]), and its Debian suite; (None, None) for any other image,
    which `nbenv image build` pulls (runners reach registries)."""
    recipe = base_recipe(ws, env.base_image)
    if recipe is None:
        return None, None
    return env.base_image, recipe.suite


def _output(ws: Workspace, output: Path | None) -> Path:
    path = ws.root / DEFAULT_OUTPUT if output is None else output if output.is_absolute() else Path.cwd() / output
    rel = ws.rel(path)
    if Path(rel).is_absolute():
        raise UsageError(f"--output: {output} is outside the repository {ws.root}", "write the workflow inside it")
    if not _OUTPUT.fullmatch(rel):
        raise UsageError(
            f"--output: {rel!r} must be a .yml or .yaml path of letters, digits and . _ - /",
            f"e.g. --output {DEFAULT_OUTPUT}",
        )
    return path


def workflow_plan(project: Project, *, output: str) -> WorkflowPlan:
    """Every environment's build job, with the cross-checks of `[tool.nbenv.ci]` against the repository."""
    ws = project.ws
    config = ws.config  # validated, the registry included
    doc, loc = ws._config_source()
    names = existing_environments(ws)
    for name, notebooks in config.ci.smoke.items():
        if name not in names:
            raise doc.error(
                (*loc, "ci", "smoke", name),
                f"no environment {name!r}{did_you_mean(name, names)}",
                f"known environments: {', '.join(names)}",
            )
        for index, notebook in enumerate(notebooks):
            if not (ws.root / notebook).is_file():
                raise doc.error(
                    (*loc, "ci", "smoke", name, index),
                    f"{notebook}: no such notebook in the repository",
                    "fix the path (relative to the repository root) or add the notebook",
                )
    environments = []
    for name in names:
        environment = project.loader.environment(name)
        base_image, base_suite = _base_of(ws, environment)
        environments.append(
            WorkflowEnvironment(
                name=name,
                smoke=tuple(config.ci.smoke.get(name, ())),
                base_image=base_image,
                base_suite=base_suite,
                platforms=environment.platforms or (),
                parents=environment.lineage,
            )
        )
    return WorkflowPlan(
        environments=tuple(environments),
        settings=config.ci,
        registry=config.registry,
        output=output,
        install=_install(ws),
        index_url=_index_url(ws),
    )


def nbenv_requirement() -> str:
    """The nbenv that writes the workflow, pinned: what the workflow installs unless `[tool.nbenv.ci] nbenv` says."""
    return f"nbenv=={__version__}"


def _install(ws: Workspace) -> str:
    """`[tool.nbenv.ci] nbenv` (validated by the model), a repo path checked to exist; else this nbenv, pinned."""
    install = ws.config.ci.nbenv
    if install is None:
        return nbenv_requirement()
    if install == "." or install.startswith("./"):
        doc, loc = ws._config_source()
        field = (*loc, "ci", "nbenv")
        try:
            path = confine(ws.root, install, what="the nbenv to install")
        except SpecError as exc:  # a symlink out of the repository
            raise doc.error(field, exc.message, exc.hint) from None
        if not path.exists():
            raise doc.error(field, f"{install}: no such file or directory in the repository", _INSTALL_HINT)
    return install


_INSTALL_HINT = 'e.g. nbenv = "nbenv==1.2.3", or remove the setting to install this nbenv version, pinned'


def _index_url(ws: Workspace) -> str | None:
    """`[tool.nbenv] index_url`, where the workflow's pip finds nbenv too; held to a URL charset for the workflow."""
    url = ws.config.index_url
    if url is None:
        return None
    if not INDEX_URL_RE.fullmatch(url):
        doc, loc = ws._config_source()
        raise doc.error(
            (*loc, "index_url"),
            f"{url!r} cannot be written into the CI workflow: "
            "an http(s) URL of letters, digits and . _ ~ : / + = % - only",
            "remove the query or quotes; credentials belong in NBENV_INDEX_URL at build time",
        )
    return url


def github(project: Project, *, output: Path | None = None, check: bool = False) -> CiResult:
    """Write the GitHub Actions workflow (atomically, only if it changed); with `check`, write nothing
    and raise DriftError if the file differs from what the specs and config produce."""
    path = _output(project.ws, output)
    rel = project.ws.rel(path)
    text = render_workflow(workflow_plan(project, output=rel))
    try:
        current: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    changed = current != text
    if check:
        if changed:
            state = "missing" if current is None else "out of date"
            raise DriftError(f"{rel}: {state}", "run `nbenv ci github` and commit the result")
        return CiResult(rel, False)
    if changed:
        atomic_write(path, text)
    return CiResult(rel, changed)
