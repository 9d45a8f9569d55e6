"""Render an environment's generated files (pure given its inputs) and write or check them."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nbenv import inimage
from nbenv.errors import NbenvError, SpecError, UsageError
from nbenv.fs import write_files
from nbenv.lock import Lock, name_problem, read_lock
from nbenv.plan import BuildPlan, build_plan, compose_project, jupyter_problem, missing_parent_groups, run_plan
from nbenv.render.compose import render_compose
from nbenv.render.dockerfile import render_dockerfile
from nbenv.safepath import existing_non_link, first_symlink, owned_dir, read_regular, regular_file_problem
from nbenv.spec.load import Loader, poetry_groups, project_mount_target
from nbenv.workspace import STATE_DIR, Workspace, overlaps


def token_file(name: str) -> str:
    """Repo-relative path of the environment's Jupyter token file (git-ignored state)."""
    return posixpath.join(".nbenv", "run", name, "jupyter_token")


def load_lock(ws: Workspace) -> Lock:
    # The parse cache lives in .nbenv/cache: owned by nbenv, so a symlinked .nbenv is refused, not followed.
    owned_dir(ws.root, posixpath.join(STATE_DIR, "cache"), what="parse cache", create=False)
    return read_lock(ws.root / "poetry.lock", ws.pyproject.data, cache_root=ws.root)


def plan_for(ws: Workspace, loader: Loader, lock: Lock, name: str, groups: Sequence[str] | None = None) -> BuildPlan:
    """The build plan of `name`, with every cross-check that needs both spec and lock."""
    env = loader.environment(name)
    doc = loader.file(name).doc
    generated = ws.config.generated_dir
    for index, mount in enumerate(env.mounts):
        if mount.source != "." and overlaps(mount.source, generated):
            raise doc.error(
                ("mounts", index, "source"),
                f"{mount.source!r} overlaps generated_dir {generated!r}, where nbenv writes and removes files",
                f"mount another directory, or move generated_dir in {ws.config_display}",
            )
    for index, data in enumerate(env.data):
        if overlaps(data.path, generated):
            raise doc.error(
                ("data", index, "path"),
                f"{data.path!r} overlaps generated_dir {generated!r}, where nbenv writes and removes files",
                f"keep data out of it, or move generated_dir in {ws.config_display}",
            )
    parent = loader.environment(env.extends) if env.extends else None
    if groups is not None:
        known = set(env.groups) | set(poetry_groups(ws))
        for group in groups:
            if problem := name_problem(group, "group name"):
                raise UsageError(f"--groups: {problem}")
            if group not in known:
                raise SpecError(
                    f"--groups: unknown Poetry group {group!r}",
                    f"pyproject.toml defines: {', '.join(poetry_groups(ws))}",
                )
        if parent and (missing := missing_parent_groups(env, groups)):
            raise SpecError(
                f"--groups: must include {', '.join(missing)}: {name} builds FROM {parent.name}'s image, which has them"
            )
    plan = build_plan(
        env,
        lock=lock,
        config=ws.config,
        python_path=project_mount_target(ws, env) or [],
        parent=parent,
        groups=groups,
    )
    if problem := jupyter_problem(env, lock, plan.groups):
        raise doc.error(
            ("groups",), problem, "add the missing package to one of these groups in pyproject.toml, then `poetry lock`"
        )
    return plan


# nbenv.inimage's build-time scripts: copied into the build context's build/, run inside the image.
BUILD_SCRIPTS = ("register.py", "fetch_uv.py", "with-secrets.sh")


RUN_TIME_FILES = ("compose.yaml",)  # how to run the image (ports, mounts, data), not what is in it


def build_inputs(out: Path, rendered: dict[Path, str]) -> dict[str, str]:
    """The generated files an image is built from, by path relative to `out`: everything but the
    run-time files, so a new host port or data mount never makes the image stale."""
    return {
        rel: text for path, text in rendered.items() if (rel := path.relative_to(out).as_posix()) not in RUN_TIME_FILES
    }


def render(ws: Workspace, plan: BuildPlan) -> dict[Path, str]:
    """Every generated file of one environment, by absolute path."""
    out = ws.root / plan.out_dir
    project = compose_project(ws.config, plan.env.name)
    run = run_plan(plan.env, plan, project=project, token_file=token_file(plan.env.name))
    files = {
        out / "Dockerfile": render_dockerfile(plan),
        out / "compose.yaml": render_compose(run, plan),
    }
    files.update({out / "build" / name: inimage.script(name) for name in BUILD_SCRIPTS})
    files.update({out / layer.filename: layer.text for layer in plan.layers})
    # nbenv's own pins (nbenv.server_env), when the groups install no jupyterlab or no ipykernel.
    files.update({out / layer.filename: layer.text for layer in (plan.server_layer, plan.kernel_layer) if layer})
    return files


MANIFEST = ".nbenv-manifest"
MANIFEST_LIMIT = 1024 * 1024
GENERATED_MARK = "# Generated by nbenv"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class GenerateResult:
    changed: list[str]  # repo-relative paths written (or, with check, that would change)
    unchanged: list[str]
    stale: list[str]  # files nbenv wrote earlier (its manifest says so) and no longer produces: removed
    rendered: dict[Path, str]  # every file's text, by absolute path (what a build context needs)
    kept: list[str] = field(default_factory=list)  # no longer produced, but not provably nbenv's own: left alone


def generate(ws: Workspace, plans: Sequence[BuildPlan], *, check: bool) -> GenerateResult:
    """Write the files of `plans` (all or nothing), or with `check` only report what would change.

    Each output directory is owned by nbenv (no symlink anywhere on its path, no symlinked file in it)
    and carries a manifest (`.nbenv-manifest`: sha256 and relative path of every file written there).
    A file is removed only when the previous manifest lists it and its bytes still match: a user's own
    file, or a generated one edited by hand since, is never removed. Everything is checked before the
    first byte is written."""
    wanted: dict[Path, str] = {}
    manifests: dict[Path, str] = {}
    stale: list[Path] = []
    kept: list[Path] = []
    for plan in plans:
        files = render(ws, plan)
        out = _owned(ws, plan.out_dir, create=False)
        for path in files:
            _owned(ws, _rel(ws, path.parent), create=False)
            _refuse_link(ws, path)
        manifests[out / MANIFEST] = manifest_text(out, files)
        gone, left = _stale(ws, out, files)
        stale += gone
        kept += left
        wanted.update(files)
    for path in manifests:
        _refuse_link(ws, path)
    changed = {p: t for p, t in {**wanted, **manifests}.items() if _read(p) != t}
    if not check:
        for plan in plans:
            _owned(ws, plan.out_dir, create=True)
        for path in changed:
            _owned(ws, _rel(ws, path.parent), create=True)
        write_files(changed)
        for path in stale:
            path.unlink(missing_ok=True)
    return GenerateResult(
        changed=sorted(ws.rel(p) for p in changed),
        unchanged=sorted(ws.rel(p) for p in {**wanted, **manifests} if p not in changed),
        stale=sorted(ws.rel(p) for p in stale),
        rendered=wanted,
        kept=sorted(ws.rel(p) for p in kept),
    )


def _rel(ws: Workspace, path: Path) -> str:
    """`path` relative to the root, without resolving (so a symlink is named, not followed)."""
    try:
        return path.relative_to(ws.root).as_posix()
    except ValueError:
        return str(path)


def _owned(ws: Workspace, rel: str, *, create: bool) -> Path:
    return owned_dir(ws.root, rel, what="generated files", create=create)


def _refuse_link(ws: Workspace, path: Path) -> None:
    """A generated file that is a symlink (or not a file) is refused: nbenv neither reads nor writes through it."""
    rel = _rel(ws, path)
    why = "but nbenv writes its generated file there and follows no links"
    if existing_non_link(path, display=rel, why=why) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise SpecError(f"{rel}: is not a regular file, but nbenv writes its generated file there")


def manifest_text(out: Path, files: Mapping[Path, str]) -> str:
    """The manifest of one output directory: what nbenv wrote there (sorted, sha256 of the UTF-8 text)."""
    lines = [
        "# Generated by nbenv: the files `nbenv generate` wrote in this directory (sha256, path).",
        "# It removes a file only if it is listed here and unchanged; other files here are never touched.",
    ]
    for path in sorted(files, key=lambda p: p.relative_to(out).as_posix()):
        digest = hashlib.sha256(files[path].encode("utf-8")).hexdigest()
        lines.append(f"{digest}  {path.relative_to(out).as_posix()}")
    return "\n".join(lines) + "\n"


def read_manifest(ws: Workspace, out: Path) -> dict[str, str] | None:
    """The previous manifest of `out` as {relative path: sha256}, every entry validated (it is committed,
    so untrusted), or None when there is none yet (a repository generated before nbenv kept one)."""
    path = out / MANIFEST
    display = _rel(ws, path)
    if not existing_non_link(
        path, display=display, why="nbenv reads its manifest only as a file", hint=f"`git rm {display}`"
    ):
        return None
    raw = read_regular(path, display=display, limit=MANIFEST_LIMIT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{display}: is not UTF-8 text", _MANIFEST_HINT) from None
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or not _SHA256.match(digest):
            raise SpecError(f"{display}:{number}: expected 'SHA256  PATH', got {line[:80]!r}", _MANIFEST_HINT)
        if problem := _manifest_path_problem(rel):
            raise SpecError(f"{display}:{number}: {rel[:80]!r} {problem}", _MANIFEST_HINT)
        entries[rel] = digest
    return entries


_MANIFEST_HINT = "it is nbenv's own file: delete it and run `nbenv generate` (then nothing old is removed)"


def _manifest_path_problem(rel: str) -> str | None:
    pure = PurePosixPath(rel)
    if not rel or rel != pure.as_posix() or pure.is_absolute():
        return "is not a relative path"
    if any(part in ("..", ".") or part.startswith(".") for part in pure.parts):
        return "is not a path nbenv generates (no '..' and no hidden names)"
    if any(ord(c) < 32 or c in "\\" for c in rel):
        return "holds a control character or a backslash"
    return None


def _stale(ws: Workspace, out: Path, files: Mapping[Path, str]) -> tuple[list[Path], list[Path]]:
    """(files to remove, files left alone) among what nbenv wrote in `out` earlier and no longer produces."""
    previous = read_manifest(ws, out)
    if previous is None:
        # No manifest yet: nothing here is provably nbenv's. Files that look generated are reported, not removed.
        return [], [p for p in _legacy_generated(out) if p not in files]
    gone: list[Path] = []
    left: list[Path] = []
    for rel, digest in sorted(previous.items()):
        path = out / rel
        if path in files:
            continue
        if _first_link_or_odd(out, PurePosixPath(rel)):
            left.append(path)
            continue
        try:
            data = read_regular(path, display=_rel(ws, path), limit=MANIFEST_LIMIT * 16)
        except NbenvError:
            continue  # gone already, or not a file any more: nothing of nbenv's to remove
        (gone if hashlib.sha256(data).hexdigest() == digest else left).append(path)
    return gone, left


def _first_link_or_odd(out: Path, rel: PurePosixPath) -> bool:
    """Whether some component of `out / rel` is a symlink or the file itself is not a regular file."""
    return first_symlink(out, rel) is not None or regular_file_problem(out / rel) is not None


def _legacy_generated(out: Path) -> list[Path]:
    """Files in `out` (no manifest yet) that carry nbenv's generated header, without following links."""
    found = []
    for directory, dirnames, filenames in os.walk(out):  # os.walk follows no directory symlinks by default
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(directory) / name
            if name.startswith(".") or not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            try:
                with path.open("rb") as handle:
                    head = handle.read(len(GENERATED_MARK))
            except OSError:
                continue
            if head == GENERATED_MARK.encode():
                found.append(path)
    return found


def _read(path: Path) -> str | None:
    """The text of an existing generated file (never through a symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
