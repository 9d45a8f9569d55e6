"""The Docker engine behind nbenv: is it there, images, containers, builds. One adapter for every engine call.

Queries go through the Docker Engine API with the `docker` SDK (structured answers, no text parsing, no
process per call): image inspect, ids and labels, the containers of a compose project with their labels,
state and health (`State.Health.Status`), `docker info`'s SecurityOptions, tags and removals. The client
is made like the docker CLI finds its engine: DOCKER_HOST (with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else
DOCKER_CONTEXT or the CLI's current context, else the default socket; so a rootless engine's socket or a
remote one named by DOCKER_HOST is the same engine for both. The SDK is imported only when a command
asks the engine something (`nbenv list` and `generate` never pay for it).

The docker CLI (`docker`, or $NBENV_DOCKER) still runs what neither library can do here:
- builds: BuildKit through a docker CLI older than 23 (Debian's docker.io 20.10, which has it built in and
  no buildx plugin) is reachable only through that CLI with DOCKER_BUILDKIT=1; the Engine API's /build is the
  classic builder; python-on-whales builds only through buildx, and it writes every build argument on the
  command line (`--build-arg K=V`), where any local user reads it in the process table, while nbenv hands
  their values (an index URL may carry credentials) through the environment (`--build-arg K`). With buildx
  the same argv is used, so both paths stream the same BuildKit progress and honour the same secrets and
  cache options;
- `docker run` of a short probe (python_version), pull and push (the CLI's credential helpers and its
  registry configuration), `docker import` (the base image's tarball).

Compose goes through python-on-whales (nbenv/adapters/compose.py).

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

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote

from nbenv.adapters.process import argv, run, stream
from nbenv.errors import BuildError, EngineUnavailable, RunError

if TYPE_CHECKING:
    from docker import APIClient

DEFAULT_ADDRESS = "unix:///var/run/docker.sock"  # the engine the CLI and the SDK ask when nothing names another
BuilderKind = Literal["buildx", "buildkit", "classic"]
START_HINT = "start Docker (`sudo systemctl start docker`, or `sudo dockerd &` without systemd), then run this again"
INSTALL_HINT = "install Docker Engine (Debian: `sudo apt-get install docker.io`), or set NBENV_DOCKER to its command"


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
    platform: str | None = None  # `--platform` (another architecture, under emulation); None: the engine's own


@dataclass(frozen=True)
class ImageInfo:
    id: str  # the config digest, "sha256:..."
    labels: dict[str, str]
    repo_digests: tuple[str, ...]
    repo_tags: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class ContainerInfo:
    """One container as the Engine API lists it (the fields `docker ps` shows), with its health."""

    id: str
    name: str
    state: str  # running, exited, created, ...
    health: str  # healthy, starting, unhealthy, or "" without a healthcheck
    image: str  # what `docker ps` shows: the reference it was created from, or an id once that tag moved
    labels: dict[str, str]


def image_info(data: Mapping[str, Any]) -> ImageInfo:
    """An ImageInfo from the Engine API's image inspect answer."""
    return ImageInfo(
        id=str(data["Id"]),
        labels={str(k): str(v) for k, v in ((data.get("Config") or {}).get("Labels") or {}).items()},
        repo_digests=tuple(data.get("RepoDigests") or ()),
        repo_tags=tuple(data.get("RepoTags") or ()),
        size=int(data.get("Size") or 0),
    )


def health_of(inspected: Mapping[str, Any] | None) -> str:
    """`State.Health.Status` of a container inspect answer; "" without a healthcheck (or once it is gone)."""
    health = ((inspected or {}).get("State") or {}).get("Health") or {}
    status = str(health.get("Status") or "")
    return "" if status == "none" else status


def container_info(listed: Mapping[str, Any], inspected: Mapping[str, Any] | None) -> ContainerInfo:
    """A ContainerInfo from one entry of the Engine API's container list and that container's inspect."""
    names = [str(n).lstrip("/") for n in listed.get("Names") or ()]
    return ContainerInfo(
        id=str(listed.get("Id", "")),
        name=names[0] if names else str(listed.get("Id", ""))[:12],
        state=str(listed.get("State", "")),
        health=health_of(inspected),
        image=str(listed.get("Image", "")),
        labels={str(k): str(v) for k, v in (listed.get("Labels") or {}).items()},
    )


def split_tag(target: str) -> tuple[str, str | None]:
    """(repository, tag or None) of `target`; `host:5000/team/x:1` -> ("host:5000/team/x", "1")."""
    last = target.rsplit("/", 1)[-1]
    if ":" not in last:
        return target, None
    repository, _, tag = target.rpartition(":")
    return repository, tag


def client_params(environ: Mapping[str, str]) -> dict[str, Any]:
    """The SDK client's address, found the way the docker CLI finds its engine: DOCKER_HOST (TLS from
    DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), else DOCKER_CONTEXT or the CLI's current context, else the default."""
    from docker.context import ContextAPI
    from docker.context.config import get_current_context_name
    from docker.utils import kwargs_from_env

    params: dict[str, Any] = kwargs_from_env(environment=dict(environ))
    if "base_url" not in params:
        name = environ.get("DOCKER_CONTEXT") or get_current_context_name()
        context = ContextAPI.get_context(name)
        if context is None:
            raise EngineUnavailable(f"the docker context {name!r} does not exist", "`docker context ls` lists them")
        if name != "default" and context.Host:
            params["base_url"] = context.Host
            if context.TLSConfig is not None:
                params["tls"] = context.TLSConfig
    if str(params.get("base_url", "")).startswith("ssh://"):
        params["use_ssh_client"] = True  # through the ssh command, like the CLI (no paramiko needed)
    return params


def engine_address(environ: Mapping[str, str]) -> str:
    """The engine's address as the CLI names it in its errors."""
    try:
        return str(client_params(environ).get("base_url") or DEFAULT_ADDRESS)
    except EngineUnavailable:
        return environ.get("DOCKER_HOST") or DEFAULT_ADDRESS


def unavailable_detail(exc: BaseException, address: str) -> str:
    """One line for an engine that did not answer, in the docker CLI's words where it has them."""
    causes = list(_causes(exc))
    if any(isinstance(c, PermissionError) for c in causes):
        return f"permission denied while trying to connect to the Docker daemon socket at {address}"
    if any(isinstance(c, FileNotFoundError | ConnectionRefusedError) for c in causes):
        return f"Cannot connect to the Docker daemon at {address}. Is the docker daemon running?"
    if any(isinstance(c, TimeoutError) or type(c).__name__.endswith("Timeout") for c in causes):
        return f"the Docker daemon at {address} did not answer in time"
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _causes(exc: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and exceptions among their args (requests wraps urllib3 wraps OSError)."""
    yield exc
    if depth > 8:
        return
    inner = [exc.__cause__, exc.__context__]
    for arg in exc.args:
        inner += list(arg) if isinstance(arg, tuple) else [arg]
    for other in inner:
        if isinstance(other, BaseException) and other is not exc:
            yield from _causes(other, depth + 1)


def _reach(address: str) -> None:
    """A local engine's socket accepts a connection (else one line: missing, refused, permission denied).
    Checked before the SDK's first request, whose failed connection would leave its socket to the GC."""
    if not address.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(30)
        try:
            probe.connect(address.removeprefix("unix://"))
        except OSError as exc:
            detail = unavailable_detail(exc, address)
        else:
            return
    raise EngineUnavailable(f"no Docker engine answers: {detail}", START_HINT)


class EngineAPI(Protocol):
    """What nbenv asks of an engine: `Engine` below, or a fake one in unit tests (injected through
    `Project(engine_factory=...)`)."""

    docker: str  # the docker CLI that compose, exec and logs run

    @property
    def security_options(self) -> tuple[str, ...]: ...

    @property
    def builder(self) -> Builder: ...

    @property
    def platform(self) -> str: ...

    def check(self) -> str: ...
    def image_id(self, ref: str) -> str | None: ...
    def inspect(self, ref: str) -> ImageInfo | None: ...
    def containers(self, labels: Sequence[str]) -> list[ContainerInfo]: ...
    def container_state(self, container: str) -> str: ...
    def remove_containers(self, containers: Sequence[str]) -> None: ...
    def kill(self, container: str) -> None: ...
    def remove_network(self, network: str) -> bool: ...
    def python_version(self, image: str) -> tuple[str | None, str]: ...
    def pull(self, ref: str) -> bool: ...
    def remove_if_untagged(self, image_id: str) -> None: ...
    def tag(self, source: str, target: str) -> None: ...
    def import_tarball(self, tarball: Path, ref: str, *, changes: Sequence[str], message: str) -> str: ...
    def load_archive(self, archive: Path, ref: str) -> str: ...
    def build(self, request: BuildRequest, *, on_line: Callable[[str], None], live: bool) -> str: ...


class Engine:
    """The one adapter over the engine: the Engine API (docker SDK) for queries, the docker CLI for builds."""

    def __init__(self, *, docker: str = "docker") -> None:
        self.docker = docker

    @classmethod
    def from_env(cls) -> Engine:
        """The engine behind `docker` (or $NBENV_DOCKER), checked to answer (EngineUnavailable if not)."""
        engine = cls(docker=os.environ.get("NBENV_DOCKER", "docker"))
        engine.check()
        return engine

    def check(self) -> str:
        """The server version; EngineUnavailable when the docker CLI is missing or no engine answers."""
        if shutil.which(self.docker) is None:  # builds and compose need it, so it is checked first
            raise EngineUnavailable(f"the docker command ({self.docker}) is not installed", INSTALL_HINT)
        with self._answering():
            return str(self.api.version().get("Version") or "")

    @cached_property
    def api(self) -> APIClient:
        """The Engine API client (the API version the engine offers: one request, once)."""
        import docker

        params = client_params(os.environ)
        _reach(str(params.get("base_url") or DEFAULT_ADDRESS))
        with self._answering():
            return docker.APIClient(timeout=60, **params)

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """Engine API calls: an engine that does not answer is one line, in the CLI's words, with the start hint."""
        import docker.errors
        import requests.exceptions

        try:
            yield
            return
        except docker.errors.APIError:  # the engine answered (an HTTP error; requests makes it an OSError too)
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            detail = unavailable_detail(exc, engine_address(os.environ))
        # raised here, without the SDK's exception as its context: that holds the failed connection's socket
        raise EngineUnavailable(f"no Docker engine answers: {detail}", START_HINT)

    @cached_property
    def security_options(self) -> tuple[str, ...]:
        """`docker info`'s SecurityOptions: how the engine isolates containers (rootless, userns-remap)."""
        import docker.errors

        try:  # an engine that does not answer fails at its next real use, with the usual line
            with self._answering():
                options = self.api.info().get("SecurityOptions")
        except (EngineUnavailable, docker.errors.APIError):
            options = None
        return tuple(str(o) for o in options) if isinstance(options, list) else ()

    @cached_property
    def platform(self) -> str:
        """The engine's own platform (`linux/amd64`, `linux/arm64`) from `docker info`; BuildError on another."""
        from nbenv.platforms import SUPPORTED, native_platform

        with self._answering():
            machine = str(self.api.info().get("Architecture") or "")
        found = native_platform(machine)
        if found is None:
            raise BuildError(
                f"the engine runs on {machine or 'an unknown architecture'}; nbenv builds {' and '.join(SUPPORTED)}",
                "use an engine on an amd64 or arm64 machine",
            )
        return found

    def image_id(self, ref: str) -> str | None:
        info = self.inspect(ref)
        return info.id if info else None

    def inspect(self, ref: str) -> ImageInfo | None:
        """The image `ref` names (a tag or an id), None when the engine has none."""
        import docker.errors

        try:
            with self._answering():
                return image_info(self.api.inspect_image(ref))
        except docker.errors.APIError:  # not found, or a reference the engine refuses
            return None

    def containers(self, labels: Sequence[str]) -> list[ContainerInfo]:
        """Every container (running or not) with all of `labels` (`KEY=VALUE`), each with its health."""
        import docker.errors

        with self._answering():
            try:
                listed = self.api.containers(all=True, filters={"label": list(labels)})
            except docker.errors.APIError as exc:
                raise RunError(f"docker ps failed: {_api_message(exc)}") from None
            return [container_info(entry, self._inspect_container(str(entry.get("Id", "")))) for entry in listed]

    def _inspect_container(self, container: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            return dict(self.api.inspect_container(container))
        except docker.errors.APIError:  # removed meanwhile
            return None

    def container_state(self, container: str) -> str:
        """running, exited, ... of one container ("" when it is gone)."""
        with self._answering():
            inspected = self._inspect_container(container)
        return str(((inspected or {}).get("State") or {}).get("Status") or "")

    def remove_containers(self, containers: Sequence[str]) -> None:
        """Remove containers by name or id, running or not (`docker rm --force`); RunError if one is refused."""
        import docker.errors

        with self._answering():
            for container in containers:
                try:
                    self.api.remove_container(container, force=True)
                except docker.errors.NotFound:
                    continue
                except docker.errors.APIError as exc:
                    raise RunError(f"docker rm failed: {_api_message(exc)}") from None

    def kill(self, container: str) -> None:
        """Kill a container if it still runs (`docker kill`); nothing when it is gone or the engine is."""
        import docker.errors

        with contextlib.suppress(docker.errors.APIError, EngineUnavailable), self._answering():
            self.api.kill(container)

    def remove_network(self, network: str) -> bool:
        """Remove a network; False when it is gone or still in use (harmless: the next one removes it)."""
        import docker.errors

        try:
            with self._answering():
                self.api.remove_network(network)
        except docker.errors.APIError:
            return False
        return True

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
        import docker.errors

        info = self.inspect(image_id)
        if info is not None and not info.repo_tags:
            with contextlib.suppress(docker.errors.APIError), self._answering():
                self.api.remove_image(image_id)  # refuses (harmlessly) an image a container uses

    def tag(self, source: str, target: str) -> None:
        import docker.errors

        repository, tag = split_tag(target)
        with self._answering():
            try:
                self.api.tag(source, repository, tag)
            except docker.errors.APIError as exc:
                raise BuildError(f"docker tag {source} {target} failed: {_api_message(exc)}") from None

    def import_tarball(self, tarball: Path, ref: str, *, changes: Sequence[str], message: str) -> str:
        """`docker import` of a root filesystem tarball as `ref` with Dockerfile `changes`; return the image id.
        Through the CLI: it streams the tarball from disk (the SDK reads it into memory first)."""
        result = self._cli(
            "import",
            *(part for change in changes for part in ("--change", change)),
            "--message",
            message,
            str(tarball),
            ref,
            timeout=600,
        )
        image_id = result.stdout.strip()
        if result.returncode != 0 or not image_id.startswith("sha256:"):
            raise BuildError(
                f"docker import of {ref} failed: {last_line(result.stderr, 'no output')}",
                "check the engine's free disk space and its log, then run this again",
            )
        return image_id

    def load_archive(self, archive: Path, ref: str) -> str:
        """`docker load` of a docker-archive tarball holding one image tagged `ref`; return its image id.
        (`docker import` cannot mark another architecture: Engine 20.10 records its own in the config.)"""
        result = self._cli("load", "--input", str(archive), timeout=600)
        image_id = self.image_id(ref) if result.returncode == 0 else None
        if image_id is None:
            raise BuildError(
                f"docker load of {ref} failed: {last_line(result.stderr or result.stdout, 'no output')}",
                "check the engine's free disk space and its log, then run this again",
            )
        return image_id

    def _cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The docker CLI, for what the Engine API does not do here; a CLI that hangs or is missing is one line."""
        try:
            return run([self.docker, *args], timeout=timeout)
        except FileNotFoundError:
            raise EngineUnavailable(f"the docker command ({self.docker}) is not installed", START_HINT) from None
        except subprocess.TimeoutExpired:
            raise EngineUnavailable(
                f"{self.docker} {args[0]} did not answer within {timeout:.0f} s", START_HINT
            ) from None

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
                ["--platform", request.platform] if request.platform else None,
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


def last_line(text: str, default: str) -> str:
    """The last non-blank line of a command's output (its error, usually), else `default`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else default


def _api_message(exc: Exception) -> str:
    """The engine's own words of an API error, on one line."""
    explanation = getattr(exc, "explanation", None)
    return " ".join(str(explanation or exc).split())[:300]
