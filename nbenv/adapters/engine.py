"""The Docker engine: is it there, which builder does it offer, images, builds.

Builders, best first: buildx (BuildKit with cache mounts and live progress; normal on Docker
Desktop and docker-ce), BuildKit through a docker CLI older than 23 (which has it built in,
as Debian's docker.io does), else the classic builder, which nbenv refuses.

Why BuildKit is required: the generated Dockerfiles install with uv under a `RUN --mount=type=cache`
(uv's downloads survive between builds without entering a layer), which only BuildKit parses.
BuildKit has been Docker's default builder since Engine 23 and every engine since 18.09 has it;
Podman/Buildah read cache mounts too. Keeping a classic-compatible form would mean a second,
slower Dockerfile per environment to commit and review, so the classic builder gets one clear
line naming the fix instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from nbenv.adapters.process import argv, run, stream
from nbenv.errors import BuildError, EngineUnavailable

BuilderKind = Literal["buildx", "buildkit", "classic"]
_START_HINT = "start Docker (`sudo systemctl start docker`, or `sudo dockerd &` without systemd), then run this again"
_INSTALL_HINT = "install Docker Engine (Debian: `sudo apt-get install docker.io`), or set NBENV_DOCKER to its command"


@dataclass(frozen=True)
class Builder:
    kind: BuilderKind
    docker: str  # the docker CLI that drives it

    def describe(self) -> str:
        return {
            "buildx": "BuildKit (buildx)",
            "buildkit": f"BuildKit (built into {self.docker})",
            "classic": "the classic builder (no buildx or BuildKit found: nbenv cannot use it)",
        }[self.kind]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    tags: tuple[str, ...]
    build_args: Mapping[str, str]  # values passed through the environment, never on the command line
    labels: Mapping[str, str]
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()  # buildx cache sources, e.g. "type=gha,scope=NAME"
    cache_to: tuple[str, ...] = ()
    # BuildKit secrets by id: files mounted only into the RUN steps that ask for them (`--mount=type=secret`),
    # never into a layer or the build cache (the extra CA bundle)
    secrets: Mapping[str, Path] = field(default_factory=dict)
    masked: tuple[str, ...] = ()  # values (URLs) whose credentials are masked in the output, like build_args'


@dataclass(frozen=True)
class ImageInfo:
    id: str  # the config digest, "sha256:..."
    labels: dict[str, str]
    repo_digests: tuple[str, ...]
    repo_tags: tuple[str, ...]
    size: int


class Engine:
    """A thin adapter over the docker CLI (python-on-whales for queries)."""

    def __init__(self, *, docker: str = "docker") -> None:
        self.docker = docker

    @classmethod
    def from_env(cls) -> Engine:
        """The engine behind `docker` (or $NBENV_DOCKER), checked to answer (EngineUnavailable if not)."""
        engine = cls(docker=os.environ.get("NBENV_DOCKER", "docker"))
        engine.check()
        return engine

    def check(self) -> str:
        """The server version; EngineUnavailable when no engine answers."""
        if shutil.which(self.docker) is None:
            raise EngineUnavailable(f"the docker command ({self.docker}) is not installed", _INSTALL_HINT)
        result = run([self.docker, "version", "--format", "{{.Server.Version}}"], timeout=30)
        if result.returncode != 0 or not result.stdout.strip():
            detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
            raise EngineUnavailable(f"no Docker engine answers: {detail}", _START_HINT)
        return result.stdout.strip()

    @cached_property
    def security_options(self) -> tuple[str, ...]:
        """`docker info`'s SecurityOptions: how the engine isolates containers (rootless, userns-remap)."""
        try:  # an engine that does not answer fails at its next real use, with the usual line
            result = run([self.docker, "info", "--format", "{{json .SecurityOptions}}"], timeout=30)
            options = json.loads(result.stdout) if result.returncode == 0 else None
        except (OSError, ValueError):
            options = None
        return tuple(str(o) for o in options) if isinstance(options, list) else ()

    def image_id(self, ref: str) -> str | None:
        result = run([self.docker, "image", "inspect", "--format", "{{.Id}}", ref])
        return result.stdout.strip() if result.returncode == 0 else None

    def inspect(self, ref: str) -> ImageInfo | None:
        result = run([self.docker, "image", "inspect", "--format", "{{json .}}", ref])
        if result.returncode != 0:
            return None
        data = json.loads(result.stdout)
        return ImageInfo(
            id=data["Id"],
            labels=dict((data.get("Config") or {}).get("Labels") or {}),
            repo_digests=tuple(data.get("RepoDigests") or ()),
            repo_tags=tuple(data.get("RepoTags") or ()),
            size=int(data.get("Size") or 0),
        )

    def python_version(self, image: str) -> tuple[str | None, str]:
        """(X.Y, "") that `python3` in `image` reports, else (None, why): run with no network, no
        capabilities and no new privileges, removed at once; the image's entrypoint is bypassed."""
        command = [
            self.docker, "run", "--rm", "--network", "none", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--entrypoint", "python3", image,
            "-c", "import sys; print('%d.%d' % sys.version_info[:2])",
        ]  # fmt: skip
        try:
            result = run(command, timeout=120)
        except subprocess.TimeoutExpired:
            return None, "python3 did not answer within 120 s"
        answer = result.stdout.strip()
        if result.returncode == 0 and re.fullmatch(r"3\.[0-9]{1,3}", answer):
            return answer, ""
        detail = (result.stderr.strip().splitlines() or [answer or f"exit {result.returncode}"])[-1]
        return None, detail[:200]

    def pull(self, ref: str) -> bool:
        return run([self.docker, "pull", "--quiet", ref], timeout=600).returncode == 0

    def remove_if_untagged(self, image_id: str) -> None:
        """Remove an image no tag names any more; keep it if it is tagged or a container uses it."""
        info = self.inspect(image_id)
        if info is not None and not info.repo_tags:
            run([self.docker, "image", "rm", image_id])  # refuses (harmlessly) an image a container uses

    def tag(self, source: str, target: str) -> None:
        run([self.docker, "tag", source, target], check=True)

    @cached_property
    def builder(self) -> Builder:
        if run([self.docker, "buildx", "version"]).returncode == 0:
            return Builder("buildx", self.docker)
        for candidate in _docker_clis(self.docker):
            version = run([candidate, "version", "--format", "{{.Client.Version}}"]).stdout.strip()
            major = re.match(r"(\d+)\.", version)
            if major and int(major.group(1)) < 23:  # BuildKit is built into CLIs before 23
                return Builder("buildkit", candidate)
        return Builder("classic", self.docker)

    def build(self, request: BuildRequest, *, on_line: Callable[[str], None], live: bool) -> str:
        """Build and tag; return the image id. `live`: let BuildKit draw its TTY progress itself."""
        builder = self.builder
        if builder.kind == "classic":
            raise BuildError(
                f"{self.docker} offers only the classic builder, and nbenv's Dockerfiles need BuildKit (RUN --mount)",
                "install the buildx plugin (Debian/Ubuntu: docker-buildx; docker-ce: docker-buildx-plugin), "
                "then run this again",
            )
        if (request.cache_from or request.cache_to) and builder.kind != "buildx":
            raise BuildError(
                f"--cache-from/--cache-to need buildx; this engine offers {builder.describe()}",
                "install the buildx plugin (docker-buildx) or drop the cache options",
            )
        env = {**os.environ, **request.build_args}
        with tempfile.TemporaryDirectory(prefix="nbenv-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            command = argv(
                builder.docker,
                ["buildx", "build", "--load"] if builder.kind == "buildx" else ["build"],
                f"--progress={'tty' if live else 'plain'}",
                ["--iidfile", str(iidfile)],
                "--no-cache" if request.no_cache else None,
                [part for cache in request.cache_from for part in ("--cache-from", cache)],
                [part for cache in request.cache_to for part in ("--cache-to", cache)],
                [part for tag in request.tags for part in ("--tag", tag)],
                [part for name in sorted(request.build_args) for part in ("--build-arg", name)],
                [part for sid, src in sorted(request.secrets.items()) for part in ("--secret", f"id={sid},src={src}")],
                [part for key, value in sorted(request.labels.items()) for part in ("--label", f"{key}={value}")],
                str(request.context),
            )
            env["DOCKER_BUILDKIT"] = "1"
            # BuildKit prints RUN lines with ARGs expanded; pip and uv print the index they look in
            redact = _redactor([*request.build_args.values(), *request.masked])
            code = (
                _run_attached(command, env)
                if live
                else stream(command, env=env, on_line=lambda line: on_line(redact(line)))
            )
            if code != 0:
                raise BuildError(
                    f"docker build of {request.tags[0]} failed (exit {code})",
                    "see the build output above; fix the cause and run again (finished steps are cached)",
                )
            return iidfile.read_text().strip()


MASK = "****"
MIN_LOOSE_SECRET = 4  # shorter secrets are masked where they sit in a URL, not everywhere in a line
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@\"]+@")


def url_secrets(value: str) -> tuple[list[str], list[str]]:
    """(secret strings, query keys) of a URL among the build-arg values: its user, password, the whole
    user:password, and every query value, each raw (as printed) and percent-decoded."""
    if "://" not in value:
        return [], []
    rest = value.split("://", 1)[1]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    found: list[str] = []
    if "@" in netloc:
        userinfo = netloc.rpartition("@")[0]
        found += [userinfo, *userinfo.split(":", 1)]
    keys: list[str] = []
    query = rest.partition("?")[2].partition("#")[0] if "?" in rest else ""
    for pair in query.split("&") if query else []:
        key, _, secret = pair.partition("=")
        keys.append(key)
        found.append(secret if secret else key)  # `?TOKEN` alone is the secret itself
    found += [unquote(part) for part in found]
    return sorted({f for f in found if f}, key=len, reverse=True), sorted({k for k in keys if k})


def _redactor(values: Iterable[str]) -> Callable[[str], str]:
    """Hide index credentials in output lines (BuildKit prints RUN lines with build args expanded): the
    user and password of any URL, and of the build-arg URLs also every query value (`?token=...`), both
    where they sit in a URL (any length) and anywhere else in a line (4 characters or more)."""
    secrets: set[str] = set()
    keys: set[str] = set()
    for value in values:
        found, query_keys = url_secrets(value)
        secrets.update(found)
        keys.update(query_keys)
    loose = sorted((s for s in secrets if len(s) >= MIN_LOOSE_SECRET), key=len, reverse=True)
    query_value = (
        re.compile(r"([?&](?:" + "|".join(map(re.escape, sorted(keys, key=len, reverse=True))) + r")=)[^&#\s\"]*")
        if keys
        else None
    )
    bare_query = (
        re.compile(r"\?(" + "|".join(map(re.escape, sorted(secrets, key=len, reverse=True))) + r")(?=[&#\s\"']|$)")
        if secrets
        else None
    )

    def redact(line: str) -> str:
        line = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", line)
        if query_value is not None:
            line = query_value.sub(lambda m: f"{m.group(1)}{MASK}", line)
        if bare_query is not None:
            line = bare_query.sub(f"?{MASK}", line)
        for secret in loose:
            line = line.replace(secret, MASK)
        return line

    return redact


def _docker_clis(preferred: str) -> list[str]:
    """Every docker CLI on this machine, the preferred one first."""
    seen: list[str] = []
    for path in [shutil.which(preferred), *_which_all("docker"), "/usr/bin/docker"]:
        if path and Path(path).is_file() and os.access(path, os.X_OK) and path not in seen:
            seen.append(path)
    return seen


def _which_all(name: str) -> list[str]:
    return [str(Path(d) / name) for d in os.environ.get("PATH", "").split(os.pathsep) if (Path(d) / name).is_file()]


def _run_attached(command: Sequence[str], env: Mapping[str, str]) -> int:
    import subprocess

    return int(subprocess.call(list(command), env=dict(env)))
