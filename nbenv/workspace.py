"""The repository nbenv works in: its root, pyproject.toml and the repo-wide settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nbenv.certs import REPO_HINT, repo_ca_bundle
from nbenv.errors import SpecError
from nbenv.safepath import SELF_IGNORING, read_regular
from nbenv.spec.models import RepoConfig, declared_base_problem, env_value_problem, image_prefix_problem
from nbenv.tomlio import TomlDocument, read_toml, validation_errors

CONFIG_FILE = "nbenv.toml"
STATE_DIR = SELF_IGNORING  # .nbenv: it ignores itself in git (safepath.owned_dir writes its .gitignore)
PYPROJECT_LIMIT = 8 * 1024 * 1024


_REGISTRY = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*|\[[0-9a-f:]+\])(?::\d{1,5})?(?:/[a-z0-9._-]+)*$"
)
REGISTRY_HINT = "for example 127.0.0.1:5000 or ghcr.io/my-team (no scheme, no credentials)"


def registry_problem(value: str) -> str | None:
    if _REGISTRY.fullmatch(value):
        return None
    return f"{value!r} is not a registry host[:port][/path]"


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` that holds nbenv.toml or a pyproject.toml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
        if (candidate / "pyproject.toml").is_file() and (
            (candidate / "environments").is_dir() or "[tool.nbenv]" in _read(candidate / "pyproject.toml")
        ):
            return candidate
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise SpecError(
        f"{start}: no pyproject.toml here or above",
        "run nbenv inside a Poetry project, or pass --repo PATH",
    )


def _read(path: Path) -> str:
    try:
        return read_regular(path, display=str(path), limit=PYPROJECT_LIMIT).decode("utf-8")
    except (SpecError, UnicodeDecodeError):
        return ""


# Directories of the repository that are never nbenv's to generate into (or to contain what it generates).
RESERVED_DIRS = (".git", ".dvc", STATE_DIR)


def overlaps(a: str, b: str) -> bool:
    """Whether two normalised repo-relative paths are the same, or one lies inside the other."""
    if a == "." or b == ".":
        return True
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def generated_dir_problem(generated_dir: str, environments_dir: str) -> str | None:
    """Why `generated_dir` (normalised, repo-relative) may not hold generated files, or None: it must
    be a directory of its own, apart from the specs and nbenv's or git's or DVC's own state."""
    if generated_dir == ".":
        return "'.' is the repository root: nbenv generates into a directory of its own"
    for other, what in ((environments_dir, "environments_dir (the specs)"), *((d, d) for d in RESERVED_DIRS)):
        if overlaps(generated_dir, other):
            return f"{generated_dir!r} overlaps {what}"
    return None


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def discover(cls, repo: Path | None = None) -> Workspace:
        return cls(find_root(repo or Path.cwd()) if repo is None else repo.resolve())

    def rel(self, path: Path) -> str:
        """`path` relative to the root, for messages and generated files."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError, RuntimeError):  # outside, or a symlink loop: the path as given
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                return str(path)

    @cached_property
    def pyproject(self) -> TomlDocument:
        return read_toml(self.root / "pyproject.toml", "pyproject.toml", limit=PYPROJECT_LIMIT)

    @cached_property
    def config(self) -> RepoConfig:
        doc, loc = self._config_source()
        raw: Any = doc.data
        for key in loc:
            raw = raw.get(key, {}) if isinstance(raw, dict) else {}
        if not isinstance(raw, dict):
            raise doc.error(loc, "must be a table")
        try:
            config = RepoConfig.model_validate(raw)
        except ValidationError as exc:
            raise validation_errors(doc, exc, RepoConfig, prefix=loc)[0] from None
        for tag, declared in config.base_images.items():
            if problem := declared_base_problem(tag, declared):
                raise doc.error((*loc, "base_images", tag), problem)
        if problem := image_prefix_problem(config.image_prefix):
            raise doc.error((*loc, "image_prefix"), problem)
        if config.registry and (problem := registry_problem(config.registry)):
            raise doc.error((*loc, "registry"), problem, REGISTRY_HINT)
        if problem := generated_dir_problem(config.generated_dir, config.environments_dir):
            raise doc.error(
                (*loc, "generated_dir"),
                problem,
                'use a directory of its own, e.g. the default generated_dir = "docker"',
            )
        if config.ca_bundle:
            try:
                repo_ca_bundle(self.root, config.ca_bundle)
            except SpecError as exc:
                raise doc.error((*loc, "ca_bundle"), exc.message, exc.hint or REPO_HINT) from None
        if config.index_url and env_value_problem(config.index_url):  # a user, a password or a query token
            raise doc.error(
                (*loc, "index_url"),
                "contains credentials, which must never be committed",
                "remove them here and set NBENV_INDEX_URL (with credentials) in the environment at build time",
            )
        return config

    @property
    def config_display(self) -> str:
        """Where the repo-wide settings live, for messages."""
        return CONFIG_FILE if (self.root / CONFIG_FILE).is_file() else "pyproject.toml [tool.nbenv]"

    def _config_source(self) -> tuple[TomlDocument, tuple[str, ...]]:
        if (self.root / CONFIG_FILE).is_file():
            tool = self.pyproject.data.get("tool", {})
            if not isinstance(tool, dict):
                raise self.pyproject.error(("tool",), "must be a table")
            if "nbenv" in tool:
                raise self.pyproject.error(
                    ("tool", "nbenv"), f"repo-wide settings are also in {CONFIG_FILE}", "keep them in one place"
                )
            return read_toml(self.root / CONFIG_FILE, CONFIG_FILE), ()
        return self.pyproject, ("tool", "nbenv")

    @property
    def environments_dir(self) -> Path:
        return self.root / self.config.environments_dir

    @property
    def generated_dir(self) -> Path:
        return self.root / self.config.generated_dir

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def spec_path(self, name: str) -> Path:
        return self.environments_dir / f"{name}.toml"
