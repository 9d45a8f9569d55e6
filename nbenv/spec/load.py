"""Load environments/*.toml: validate each file, resolve `extends`, check against the repository."""

from __future__ import annotations

import ipaddress
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from nbenv.adapters.dvc import hidden_dvc_file
from nbenv.base_image import BaseRecipe, nbenv_recipe, suite_tag
from nbenv.constants import AUTO_SUITES, SUITE_PYTHON
from nbenv.dvc_outs import covering_output, tracked_outputs
from nbenv.errors import NbenvError, SpecError, UsageError
from nbenv.lock import LOCK_LIMIT, name_problem
from nbenv.plan import data_mount_targets, import_paths, relative_to_source
from nbenv.pyversion import ProjectPython, PythonSource, choose_suite, read_project_python, suites_shown
from nbenv.safepath import confine, is_inside, read_regular
from nbenv.spec.models import (
    Environment,
    EnvironmentFile,
    Jupyter,
    Resources,
    SourceMount,
    _repo_path,
    env_value_problem,
    env_var_problem,
)
from nbenv.tomlio import TomlDocument, did_you_mean, read_toml, validation_errors
from nbenv.workspace import STATE_DIR, Workspace

# Directories of the repository no mount source or data path may lie in: the container would reach
# what it must not. A mount of the root hides .nbenv/ (see plan.run_plan); .git/ stays visible there.
HIDDEN_DIRS = {STATE_DIR: "nbenv's state: every environment's token", ".git": "git runs its hooks on the host"}


class SpecErrors(SpecError):
    """Several spec errors at once (from `validate`); the message is the first."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(errors[0].message, errors[0].hint)
        self.errors = errors


@dataclass(frozen=True)
class LoadedFile:
    doc: TomlDocument
    spec: EnvironmentFile


MAX_EXTENDS_DEPTH = 32


def pyproject_table(ws: Workspace, loc: tuple[str, ...]) -> dict[str, Any]:
    """The table at `loc` in pyproject.toml ({} if absent); anything but a table is one SpecError."""
    current: Any = ws.pyproject.data
    for end, key in enumerate(loc, start=1):
        current = current.get(key, {})
        if not isinstance(current, dict):
            raise ws.pyproject.error(loc[:end], f"must be a table, not {_type(current)}")
    return cast(dict[str, Any], current)


def poetry_groups(ws: Workspace) -> list[str]:
    """Every dependency group pyproject.toml defines; `main` is the project's own dependencies.

    Group names become directory names (`requirements/GROUP.txt`, `.nbenv/variants/ENV/GROUPS/`) and
    Dockerfile text, so each is checked as a PEP 735 name first (no `/`, `..` or line break)."""
    groups: set[str] = set()
    for loc in (("tool", "poetry", "group"), ("dependency-groups",)):
        for name in pyproject_table(ws, loc):
            if problem := name_problem(name, "group name"):
                raise ws.pyproject.error((*loc, name), problem, "rename the group (and run `poetry lock`)")
            groups.add(name)
    return ["main", *sorted(groups - {"main"})]


def default_environment(ws: Workspace, loader: Loader | None = None) -> str:
    """The environment a command acts on when none is named: `default_environment` from the repo-wide
    settings, else the one environment no other extends (the demo's `traffic-analysis`), else an error
    listing the names."""
    names = existing_environments(ws)
    if chosen := ws.config.default_environment:
        if chosen not in names:
            doc, loc = ws._config_source()
            raise doc.error(
                (*loc, "default_environment"),
                f"no environment {chosen!r}{did_you_mean(chosen, names)}",
                f"one of: {', '.join(names)}",
            )
        return chosen
    loader = loader or Loader(ws)
    parents = {loader.environment(name).extends for name in names}
    leaves = [name for name in names if name not in parents]
    if len(leaves) == 1:
        return leaves[0]
    raise UsageError(
        f"name an environment: {', '.join(names)}",
        'or set `default_environment = "NAME"` in [tool.nbenv] (pyproject.toml), or pass --all where offered',
    )


def existing_environments(ws: Workspace) -> list[str]:
    """The environment names; none at all is an error that says how to create the first one."""
    if names := environment_names(ws):
        return names
    raise SpecError(f"{ws.rel(ws.environments_dir)}/: no environments", new_environment_hint(ws))


def new_environment_hint(ws: Workspace) -> str:
    """How to create a first environment, with groups this project really has."""
    try:
        groups = poetry_groups(ws)
    except NbenvError:  # a broken pyproject.toml is reported by the commands that read it
        groups = []
    known = f" (this project's groups: {', '.join(groups)})" if groups else ""
    return f"create one with `nbenv new NAME --groups GROUP[,GROUP...]`{known}"


def environment_names(ws: Workspace) -> list[str]:
    """The environments of the repository: every `NAME.toml` that is not a directory (a symlink loop or
    a FIFO is listed too, so that loading it reports the problem instead of skipping it)."""
    if not ws.environments_dir.is_dir():
        return []
    names = []
    for path in ws.environments_dir.glob("*.toml"):
        if path.name == ".toml":
            raise SpecError(
                f"{ws.rel(path)}: a spec file needs an environment name before .toml",
                "rename it to NAME.toml (lowercase letters, digits, - and _) or remove it",
            )
        if not path.is_dir():
            names.append(path.stem)
    return sorted(names)


def load_file(ws: Workspace, name: str) -> LoadedFile:
    """Parse and validate one spec file as written (no inheritance yet)."""
    path = ws.spec_path(name)
    # A name with a path in it (e.g. `../pyproject` from the command line) names no environment file.
    confined = not any(char in name for char in "/\\\0")
    display = f"{ws.rel(ws.environments_dir)}/{name}.toml"
    if not confined or not os.path.lexists(path) or path.is_dir():
        known = environment_names(ws)
        raise SpecError(
            f"{display}: no environment {name!r}{did_you_mean(name, known)}",
            f"known environments: {', '.join(known)}" if known else f"create one with `nbenv new {name}`",
        )
    doc = read_toml(path, display)
    try:
        spec = EnvironmentFile.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecErrors(validation_errors(doc, exc, EnvironmentFile)) from None
    if spec.name != path.stem:
        raise doc.error(
            ("name",),
            f"{spec.name!r} does not match the file name {path.name!r}",
            f'set name = "{path.stem}" or rename the file to {spec.name}.toml',
        )
    for key, value in (spec.env or {}).items():
        if problem := env_var_problem(key) or env_value_problem(value):
            raise doc.error(("env", key), problem)
    return LoadedFile(doc, spec)


class Loader:
    """Resolves environments with their parents, caching each file and each result."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._files: dict[str, LoadedFile] = {}
        self._resolved: dict[str, Environment] = {}
        self._outputs: dict[str, str] | None = None
        self._broken_dvc_files: dict[str, str] = {}
        self._python: ProjectPython | None = None
        self._hidden: dict[str, tuple[str, str] | None] = {}  # DVC file -> what hides it from DVC, and the fix

    @property
    def python(self) -> ProjectPython:
        """The project's Python constraint (requires-python, Poetry's python, the lock's python-versions)."""
        if self._python is None:
            self._python = read_project_python(self.ws.pyproject, _lock_text(self.ws))
        return self._python

    def file(self, name: str) -> LoadedFile:
        if name not in self._files:
            self._files[name] = load_file(self.ws, name)
        return self._files[name]

    def environment(self, name: str) -> Environment:
        """The resolved, repo-checked environment `name`."""
        if name not in self._resolved:
            self._resolve(name)
        return self._resolved[name]

    def _resolve(self, name: str) -> Environment:
        """Walk up the `extends` chain (iteratively, at most MAX_EXTENDS_DEPTH links), then resolve it root
        first: each file over its resolved parent."""
        chain = [name]  # from `name` up to the first environment already resolved, or the root
        while chain[-1] not in self._resolved:
            loaded = self.file(chain[-1])
            spec, doc = loaded.spec, loaded.doc
            if spec.extends is None:
                break
            if spec.extends in chain:
                cycle = " -> ".join((*chain[chain.index(spec.extends) :], spec.extends))
                raise doc.error(("extends",), f"cycle: {cycle}", "remove one of the extends links")
            if len(chain) > MAX_EXTENDS_DEPTH:
                raise doc.error(
                    ("extends",),
                    f"{chain[0]} extends a chain of more than {MAX_EXTENDS_DEPTH} environments",
                    "make the chain shorter: each link is an image built FROM the one before",
                )
            if not os.path.lexists(self.ws.spec_path(spec.extends)):
                raise doc.error(
                    ("extends",),
                    f"no environment {spec.extends!r}{did_you_mean(spec.extends, environment_names(self.ws))}",
                    f"create {self.ws.rel(self.ws.spec_path(spec.extends))} or fix the name",
                )
            if spec.base_image is not None:
                raise doc.error(
                    ("base_image",),
                    f"an environment that extends {spec.extends!r} is built FROM that environment's image",
                    "remove base_image here (set it on the root of the chain)",
                )
            chain.append(spec.extends)
        for current in reversed(chain):
            if current in self._resolved:
                continue
            loaded = self.file(current)
            parent = self._resolved[loaded.spec.extends] if loaded.spec.extends is not None else None
            base_image = parent.base_image if parent is not None else self._root_base(loaded)
            environment = _merge(self.ws, loaded, parent, base_image)
            self._check_repo(loaded, environment)
            self._resolved[current] = environment
        return self._resolved[name]

    def _base_field(self, loaded: LoadedFile) -> tuple[str | None, TomlDocument, tuple[str, ...]]:
        """(the base image named for a root environment, the file and field that name it); (None, the
        spec, ()) when neither its base_image nor [tool.nbenv] default_base_image is set."""
        if loaded.spec.base_image is not None:
            return loaded.spec.base_image, loaded.doc, ("base_image",)
        if "default_base_image" in self.ws.config.model_fields_set:
            doc, config_loc = self.ws._config_source()
            return self.ws.config.default_base_image, doc, (*config_loc, "default_base_image")
        return None, loaded.doc, ()

    def _root_base(self, loaded: LoadedFile) -> str:
        """The base image of a root environment: its own base_image, else [tool.nbenv] default_base_image
        when set, else nbenv's base of the first Debian suite whose Python fits the project. A named base
        that nbenv makes has a known Python, checked here; any other's is checked at build time."""
        named, doc, loc = self._base_field(loaded)
        if named is None:
            suite = choose_suite(self.python)
            if suite is None:
                raise no_suite_fits(self.python, loaded.doc.display)
            return suite_tag(suite)
        recipe = base_recipe(self.ws, named)
        python = recipe.python if recipe is not None else None
        refusing = self.python.refusing(python) if python is not None else None
        if refusing is not None:
            raise doc.error(
                loc,
                f"{named} has Python {python}, but {refusing.shown()} ({_file_line(refusing)}) excludes it",
                self._base_hint(named, loc),
            )
        return named

    def _base_hint(self, named: str, loc: tuple[str, ...]) -> str:
        field = loc[-1] if loc else "base_image"
        return _named_base_hint(self.python, named, field, declared=named in self.ws.config.base_images)

    def _root_file(self, name: str) -> LoadedFile:
        env = self.environment(name)
        return self.file(env.lineage[0] if env.lineage else name)

    def base_error(self, name: str, what: str, hint: str) -> SpecError:
        """One line at the field that names `name`'s base image (the spec's base_image, or default_base_image)."""
        _named, doc, loc = self._base_field(self._root_file(name))
        return doc.error(loc, what, hint) if loc else SpecError(f"{doc.display}: {what}", hint)

    def base_hint(self, name: str) -> str:
        """How to name a base image whose Python fits, for `name`'s chain."""
        named, _doc, loc = self._base_field(self._root_file(name))
        return self._base_hint(named or self.environment(name).base_image, loc)

    def _check_repo(self, loaded: LoadedFile, env: Environment) -> None:
        spec, doc = loaded.spec, loaded.doc
        known_groups = poetry_groups(self.ws)
        for index, group in enumerate(spec.groups or []):
            if group not in known_groups:
                raise doc.error(
                    ("groups", index),
                    f"unknown Poetry group {group!r}{did_you_mean(group, known_groups)}",
                    f"pyproject.toml defines: {', '.join(known_groups)}",
                )
        if not env.groups:
            raise doc.error(("groups",), "empty: name at least one Poetry group", 'e.g. groups = ["notebook"]')
        if len(set(spec.groups or [])) != len(spec.groups or []):
            raise doc.error(("groups",), "lists a group twice")
        for index, mount in enumerate(spec.mounts or []):
            real = self._confined(loaded, ("mounts", index, "source"), mount.source, "mount source")
            if not real.is_dir():
                raise doc.error(("mounts", index, "source"), f"{mount.source!r} is not a directory of the repository")
        for index, data in enumerate(spec.data or []):
            self._confined(loaded, ("data", index, "path"), data.path, "data path")
        self._check_overlaps(loaded, env)
        self._check_targets(loaded, env)
        if not env.jupyter.token and not ipaddress.ip_address(env.jupyter.bind).is_loopback:
            raise doc.error(
                ("jupyter", "token"),
                f"token = false with bind = {env.jupyter.bind!r}: anyone on the network could run code in Jupyter",
                'bind a loopback address (bind = "127.0.0.1" or "::1"), or keep the token',
            )
        self._check_mountpoints(loaded, env)
        for index, data in enumerate(spec.data or []):
            out = covering_output(data.path, self.outputs())
            if out is None and self._broken_dvc_files:
                declared, problem = next(iter(sorted(self._broken_dvc_files.items())))
                raise SpecError(problem, f"fix {declared}: {spec.name}'s data {data.path!r} may be declared there")
            if out is None:
                raise doc.error(
                    ("data", index, "path"),
                    f"{data.path!r} is not tracked by DVC (no .dvc file or dvc.yaml output covers it)",
                    f"run `dvc add {data.path}`, or add it to a stage's outs in dvc.yaml",
                )
            declared = self.outputs()[out]
            if declared not in self._hidden:
                self._hidden[declared] = hidden_dvc_file(self.ws.root, declared)
            if hidden := self._hidden[declared]:
                what, fix = hidden
                raise doc.error(
                    ("data", index, "path"),
                    f"{data.path!r} is tracked by {self.outputs()[out]}, which DVC does not read: {what}",
                    fix,
                )
        if env.importable and import_paths(env, project_source_dirs(self.ws)) is None:
            raise doc.error(
                ("importable",),
                "the project's package can only be importable from a source mount that contains it",
                "add a mount of the repository root, or set importable = false",
            )

    def _confined(self, loaded: LoadedFile, loc: tuple[str | int, ...], path: str, what: str) -> Path:
        """The real path of a mount source or data path: refused when a symlink leads it out of the
        repository, or into a directory the container must not see (nbenv's state, git's hooks)."""
        try:
            real = confine(self.ws.root, path, what=what)
        except SpecError as exc:
            raise loaded.doc.error(loc, exc.message, exc.hint) from None
        root = self.ws.root.resolve()
        for hidden, why in HIDDEN_DIRS.items():
            if is_inside(root / hidden, real):
                raise loaded.doc.error(
                    loc,
                    f"{path!r} is inside {hidden}/ ({why}): nbenv never mounts it",
                    "mount the repository root (nbenv hides that directory in it) or another directory",
                )
        return real

    def _check_overlaps(self, loaded: LoadedFile, env: Environment) -> None:
        """Read-only data stays read-only under every read-write source mount, and nbenv's state stays
        hidden: run_plan shadows both at their place under each mount, which it computes from the
        paths as written; here the real paths (symlinks followed) must agree with that place."""
        spec, doc = loaded.spec, loaded.doc
        root = self.ws.root.resolve()

        def where(kind: str, item: object) -> tuple[str | int, ...]:
            own = (spec.mounts if kind == "mounts" else spec.data) or []
            index = next((i for i, e in enumerate(own) if e == item), None)
            return (kind, index, "source" if kind == "mounts" else "path") if index is not None else ("extends",)

        for mount in env.mounts:
            mount_real = confine(root, mount.source, what="mount source")
            if is_inside(mount_real, root / STATE_DIR) and mount.source != ".":
                raise doc.error(
                    where("mounts", mount),
                    f"{mount.source!r} is the repository root through a symlink: nbenv could not hide {STATE_DIR}/ "
                    "(the tokens) in it",
                    'mount the repository root as source = "."',
                )
            for data in env.data:
                data_real = confine(root, data.path, what="data path")
                loc = where("mounts", mount) if mount in (spec.mounts or []) else where("data", data)
                if is_inside(data_real, mount_real):
                    raise doc.error(
                        loc,
                        f"mount source {mount.source!r} lies inside the read-only data {data.path!r}: "
                        "the container could write the data through it",
                        "mount a directory above the data (it stays read-only there) or drop this mount",
                    )
                if not is_inside(mount_real, data_real):
                    continue
                lexical = relative_to_source(data.path, mount.source)
                if lexical is None or lexical != data_real.relative_to(mount_real).as_posix():
                    raise doc.error(
                        loc,
                        f"the read-only data {data.path!r} is also visible read-write through mount source "
                        f"{mount.source!r} by way of a symlink, where nbenv cannot keep it read-only",
                        "name the real directories (no symlinks on the way) in mounts and data",
                    )

    def _check_mountpoints(self, loaded: LoadedFile, env: Environment) -> None:
        """A mount whose target lies under a source mount's target needs its mountpoint inside that
        mount, i.e. in the repository: unless it is the path's own place there (which exists), Docker
        would create it there, owned by root."""
        spec, doc = loaded.spec, loaded.doc
        entries: list[tuple[str, int | None, str, str]] = []  # (kind, own index, target, repo path)
        for mount in env.mounts:
            index = next((i for i, m in enumerate(spec.mounts or []) if m == mount), None)
            entries.append(("mounts", index, mount.target, mount.source))
        for data in env.data:
            if data.target is not None:
                index = next((i for i, d in enumerate(spec.data or []) if d == data), None)
                entries.append(("data", index, data.target, data.path))
        for kind, index, target, path in entries:
            for mount in env.mounts:
                if target == mount.target or not target.startswith(mount.target.rstrip("/") + "/"):
                    continue
                own = relative_to_source(path, mount.source)
                if own is not None and posixpath.normpath(posixpath.join(mount.target, own)) == target:
                    continue
                raise doc.error(
                    (kind, index, "target") if index is not None else ("extends",),
                    f"{target!r} lies inside the source mount at {mount.target!r} but is not where {path!r} is "
                    "there: Docker would create a root-owned directory in the repository",
                    "choose a target outside the source mounts, or drop `target` (the default is its place there)",
                )

    def _check_targets(self, loaded: LoadedFile, env: Environment) -> None:
        seen: dict[str, str] = {}
        for kind, entries in (("mounts", env.mounts), ("data", data_mount_targets(env))):
            for index, target in enumerate(e.target if isinstance(e, SourceMount) else e for e in entries):
                if target in seen:
                    raise loaded.doc.error(
                        (kind, index),
                        f"mount target {target!r} is also used by {seen[target]}",
                        "choose another target",
                    )
                seen[target] = f"{kind}[{index}]"

    def outputs(self) -> dict[str, str]:
        if self._outputs is None:
            self._outputs = tracked_outputs(self.ws.root, self._broken_dvc_files)
        return self._outputs


def _lock_text(ws: Workspace) -> str | None:
    """poetry.lock's text, or None: a missing or unreadable lock is reported where the lock is read."""
    try:
        return read_regular(ws.root / "poetry.lock", display="poetry.lock", limit=LOCK_LIMIT).decode("utf-8")
    except (NbenvError, UnicodeDecodeError):
        return None


def base_recipe(ws: Workspace, ref: str) -> BaseRecipe | None:
    """How nbenv makes the base image `ref`: a base declared in [tool.nbenv.base_images], or its own
    nbenv/debian-python:SUITE; None for any other image (pulled, its Python checked at build time)."""
    declared = ws.config.base_images.get(ref)
    if declared is not None:
        return BaseRecipe(declared.suite, tuple(declared.packages), declared.cuda)
    return nbenv_recipe(ref)


def _file_line(source: PythonSource) -> str:
    return source.where.rsplit(": ", 1)[0]


def _fitting_python(project: ProjectPython) -> str | None:
    """The newest Python 3.X (3.8 to 3.20) the project allows, for a hint."""
    return next((f"3.{minor}" for minor in range(20, 7, -1) if project.allows(f"3.{minor}")), None)


def no_suite_fits(project: ProjectPython, spec_display: str) -> SpecError:
    """No base nbenv makes has a Python the project allows: one line at the constraint that excludes them."""
    blocking = next(
        (s for s in project.sources if not any(s.allows(SUITE_PYTHON[suite]) for suite in AUTO_SUITES)), None
    )
    source = blocking or project.sources[0]
    others = "" if blocking else "".join(f" with {o.shown()} ({_file_line(o)})" for o in project.sources[1:])
    message = (
        f"{source.where}: {source.text!r}{others} fits none of the Pythons of the base images nbenv makes "
        f"({suites_shown()})"
    )
    fitting = _fitting_python(project)
    if fitting is None:
        return SpecError(message, "the constraints exclude each other: make them agree, then run `poetry lock`")
    return SpecError(
        message,
        f"relax it to include one of them, or name a base image whose Python fits: "
        f'base_image = "python:{fitting}-slim" in {spec_display} (or default_base_image in [tool.nbenv])',
    )


def _named_base_hint(project: ProjectPython, named: str, field: str, *, declared: bool) -> str:
    suite = choose_suite(project)
    if suite is None:
        fitting = _fitting_python(project)
        other = f'e.g. {field} = "python:{fitting}-slim"' if fitting else "the constraints exclude each other"
        return f"relax the project's Python constraint, or name a base image whose Python fits ({other})"
    fix = f'{field} = "{suite_tag(suite)}" (Python {SUITE_PYTHON[suite]})'
    if declared:
        return f'{fix}, or suite = "{suite}" in [tool.nbenv.base_images."{named}"]'
    return f"{fix}, or remove {field}: nbenv then picks the Debian suite whose Python fits"


def _merge(ws: Workspace, loaded: LoadedFile, parent: Environment | None, base_image: str) -> Environment:
    """Apply a file over its resolved parent (or over the defaults for a root environment)."""
    spec = loaded.spec
    own_groups = tuple(g for g in spec.groups or [] if parent is None or g not in parent.groups)
    data = {d.path: d for d in (parent.data if parent else ())}
    data.update({d.path: d for d in spec.data or []})
    jupyter_over = spec.jupyter.model_dump(exclude_none=True) if spec.jupyter else {}
    jupyter = (
        parent.jupyter.model_copy(update=jupyter_over)
        if parent
        else Jupyter(**{"kernel_display_name": f"Python ({spec.name})", **jupyter_over})
    )
    if parent and "kernel_display_name" not in jupyter_over:
        jupyter = jupyter.model_copy(update={"kernel_display_name": f"Python ({spec.name})"})
    if "default_url" not in jupyter_over and jupyter.interface == "notebook" and jupyter.default_url == "/lab":
        jupyter = jupyter.model_copy(update={"default_url": "/tree"})
    resources_over = spec.resources.model_dump(exclude_none=True) if spec.resources else {}
    resources = (parent.resources if parent else Resources()).model_copy(update=resources_over)
    return Environment(
        name=spec.name,
        description=spec.description or "",
        file=loaded.doc.display,
        extends=spec.extends,
        lineage=(*parent.lineage, parent.name) if parent else (),
        base_image=base_image,
        groups=(*(parent.groups if parent else ()), *own_groups),
        own_groups=own_groups,
        importable=spec.importable if spec.importable is not None else (parent.importable if parent else True),
        data=tuple(data.values()),
        mounts=tuple(spec.mounts) if spec.mounts is not None else (parent.mounts if parent else (SourceMount(),)),
        system_packages=tuple(
            dict.fromkeys((*(parent.system_packages if parent else ()), *(spec.system_packages or [])))
        ),
        env={**(parent.env if parent else {}), **(spec.env or {})},
        jupyter=jupyter,
        resources=resources,
        platforms=_platforms(ws, spec.platforms, parent),
    )


def _platforms(ws: Workspace, own: list[str] | None, parent: Environment | None) -> tuple[str, ...] | None:
    """The spec's own `platforms`, else its parent's, else [tool.nbenv] platforms; None: the native one only.
    A parent is built for whatever platforms its children need (parents first, platform by platform)."""
    if own is not None:
        return tuple(own)
    if parent is not None:
        return parent.platforms
    return tuple(ws.config.platforms) if ws.config.platforms is not None else None


def project_source_dirs(ws: Workspace) -> list[str]:
    """Repo-relative directories that hold the project's own packages (Poetry `packages`, else root/src).

    Each `from` becomes a line of the image's .pth file (a line there can run code), so `from` and
    `include` are checked as relative paths inside the repository without control characters."""
    doc = ws.pyproject
    packages = pyproject_table(ws, ("tool", "poetry")).get("packages", [])
    loc: tuple[str | int, ...] = ("tool", "poetry", "packages")
    if not isinstance(packages, list):
        raise doc.error(
            loc, f'must be an array of tables such as {{ include = "pkg", from = "src" }}, not {_type(packages)}'
        )
    dirs = []
    for index, package in enumerate(packages):
        if not isinstance(package, dict):
            raise doc.error(
                (*loc, index), f'must be a table such as {{ include = "pkg", from = "src" }}, not {_type(package)}'
            )
        for key in ("include", "from"):
            if key not in package:
                continue
            value = package[key]
            if not isinstance(value, str):
                raise doc.error((*loc, index, key), f"must be a string, not {_type(value)}")
            try:
                _repo_path(value)
            except ValueError as exc:
                raise doc.error((*loc, index, key), str(exc)) from None
        dirs.append(posixpath.normpath(package.get("from", ".")))
    if not dirs:
        dirs = ["src"] if (ws.root / "src").is_dir() else ["."]
    return list(dict.fromkeys(dirs))


def _type(value: object) -> str:
    return {str: "a string", list: "an array", dict: "a table", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )
