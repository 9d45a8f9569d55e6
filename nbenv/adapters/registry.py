"""A container registry, through the docker CLI so the engine's own login (and credential helpers) apply.

nbenv never reads or stores registry credentials: `docker login HOST` once, as usual. That holds for image
indexes too: `docker manifest create` over each platform's image by digest, `docker manifest push --purge`,
and `docker manifest inspect` to verify, all with the CLI's own credentials and TLS settings, for every
registry (`--insecure`, which lets the CLI speak plain HTTP, only for one on this machine). The CLI keeps
a manifest list it creates under `$DOCKER_CONFIG/manifests`; nbenv runs those commands with a private
DOCKER_CONFIG (`private_cli_config`: the user's config entries linked in, never read or copied), so
nothing is left behind there and two pushes never share a list.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbenv.adapters.process import run
from nbenv.errors import RegistryError
from nbenv.platforms import arch, canonical

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_UNREACHABLE = ("failed to configure transport", "error pinging", "connection refused", "no such host", "i/o timeout")
_DENIED = ("unauthorized", "denied", "authentication required", "no basic auth credentials")
_MISSING = ("no such manifest", "manifest unknown", "not found")
# `docker manifest` is experimental before CLI 20.10 and needs this there; later CLIs ignore it
CLI_ENV = {"DOCKER_CLI_EXPERIMENTAL": "enabled"}


def _hostname(host: str) -> str:
    """`host[:port]` or `[IPv6][:port]` -> the host alone."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def index_identity(images: Sequence[tuple[str, str]]) -> str:
    """What an index holds, comparable across pushes: each platform with its image (config digest)."""
    return "index:" + ",".join(f"{platform}={image}" for platform, image in sorted(images))


@dataclass(frozen=True)
class IndexEntry:
    """One platform of an image index, as `docker manifest inspect --verbose` shows it."""

    platform: str  # os/architecture (arm64's variant v8 folded in: `linux/arm64`)
    digest: str  # the platform's manifest digest
    image: str  # its config digest (= the local image id of the same image)


@dataclass(frozen=True)
class RemoteTag:
    image: str  # the config digest (= the local image id of the same image); an index: its index_identity
    manifest: str | None  # the manifest digest, as `docker push` reports it (None for an index)
    entries: tuple[IndexEntry, ...] = ()  # an index: each platform's manifest

    @property
    def is_index(self) -> bool:
        return self.image.startswith("index:")


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _config_digest(item: Mapping[str, Any]) -> str:
    manifest = item.get("SchemaV2Manifest") or item.get("OCIManifest") or {}
    return str((manifest.get("config") or {}).get("digest") or "") if isinstance(manifest, dict) else ""


def parse_inspect(text: str, ref: str) -> RemoteTag:
    """`docker manifest inspect --verbose REF`'s output -> what the registry holds under REF: one image
    (an object: its descriptor and manifest) or an index (a list: one object per platform)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise RegistryError(f"{ref}: `docker manifest inspect` printed no JSON", "check the docker CLI") from None
    if isinstance(data, dict):
        descriptor = data.get("Descriptor") or {}
        digest = str(descriptor.get("digest") or "") if isinstance(descriptor, dict) else ""
        return RemoteTag(image=_config_digest(data) or digest, manifest=digest or None)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise RegistryError(f"{ref}: `docker manifest inspect` printed neither a manifest nor an index")
    entries = []
    for item in data:
        descriptor = _object(item.get("Descriptor"))
        platform = _object(descriptor.get("platform"))
        name = f"{platform.get('os')}/{platform.get('architecture')}"
        if platform.get("variant"):
            name = canonical(f"{name}/{platform['variant']}")
        entries.append(IndexEntry(name, str(descriptor.get("digest") or ""), _config_digest(item) or "missing"))
    identity = index_identity([(entry.platform, entry.image) for entry in entries])
    return RemoteTag(image=identity, manifest=None, entries=tuple(entries))


def printed_index_digest(text: str) -> str:
    """The digest of the index `docker manifest inspect REF` (not --verbose) prints: the CLI serializes the
    registry's descriptors exactly as `docker manifest create` does, then one newline."""
    body = text.removesuffix("\n").encode()
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def repository_of(ref: str) -> str:
    """`HOST[/PATH]/NAME:TAG` -> `HOST[/PATH]/NAME` (a port's colon is before the last slash)."""
    head, _, last = ref.rpartition("/")
    return f"{head}/{last.split(':', 1)[0].split('@', 1)[0]}"


def index_commands(docker: str, target: str, children: Sequence[tuple[str, str]], *, insecure: bool) -> list[list[str]]:
    """The argv that publishes an index under `target` (REPOSITORY:TAG) over each (platform, manifest
    digest), in order: create it from the platforms' images BY DIGEST (nothing can move in between),
    give arm64 its variant (v8), push it and drop the local list (`--purge`)."""
    repository = repository_of(target)
    bad = [digest for _, digest in children if not DIGEST_RE.fullmatch(digest)]
    if not children or bad:
        shown = repr(bad[0][:80]) if bad else "no platform"
        raise RegistryError(f"{target}: no index over {shown}: not a manifest digest (sha256:HEX)")
    flag = ["--insecure"] if insecure else []
    refs = [(platform, f"{repository}@{digest}") for platform, digest in children]
    commands = [[docker, "manifest", "create", "--amend", *flag, target, *(ref for _, ref in refs)]]
    commands += [
        [docker, "manifest", "annotate", target, ref, "--variant", "v8"]
        for platform, ref in refs
        if arch(platform) == "arm64"
    ]
    commands.append([docker, "manifest", "push", *flag, "--purge", target])
    return commands


@contextmanager
def private_cli_config(environ: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The environment for `docker manifest` commands: a fresh DOCKER_CONFIG of its own (removed after),
    where each entry of the user's (config.json with its logins and credential helpers, contexts, certs)
    is a symlink, except `manifests`, where the CLI keeps the lists it creates. nbenv reads none of them."""
    base = dict(os.environ if environ is None else environ)
    source = Path(base.get("DOCKER_CONFIG") or Path.home() / ".docker")
    with tempfile.TemporaryDirectory(prefix="nbenv-manifest-") as private:
        if source.is_dir():
            for entry in source.iterdir():
                if entry.name != "manifests":
                    (Path(private) / entry.name).symlink_to(entry.absolute())
        yield {**base, **CLI_ENV, "DOCKER_CONFIG": private}


class Registry:
    def __init__(self, host: str, *, docker: str = "docker", env: Mapping[str, str] | None = None) -> None:
        self.host, self.docker = host, docker
        self.env = dict(env) if env is not None else {**os.environ, **CLI_ENV}

    @property
    def insecure(self) -> bool:
        """Plain HTTP allowed: only for a registry on this machine (the engine treats 127.0.0.0/8 so too)."""
        return is_loopback(self.host.split("/")[0])

    def _inspect(self, ref: str, *, verbose: bool, action: str) -> str | None:
        """`docker manifest inspect`'s output for `ref`, or None: no such tag or digest."""
        flags = [*(["--insecure"] if self.insecure else []), *(["--verbose"] if verbose else [])]
        result = run([self.docker, "manifest", "inspect", *flags, ref], env=self.env, timeout=120)
        if result.returncode != 0:
            error = result.stderr.strip()
            self._raise_if_unusable(error, action=action)
            if any(marker in error for marker in _MISSING):
                return None
            raise RegistryError(f"cannot {action}: {_last_line(error)}", "check the registry setting")
        return result.stdout

    def lookup(self, ref: str) -> RemoteTag | None:
        """What the registry holds under `ref` (one `docker manifest inspect --verbose`), or None: no such tag."""
        text = self._inspect(ref, verbose=True, action=f"look up {ref}")
        return None if text is None else parse_inspect(text, ref)

    def inspect_index(self, ref: str) -> str | None:
        """`docker manifest inspect REF` (not --verbose): the index as the CLI serializes it, or None."""
        return self._inspect(ref, verbose=False, action=f"look up {ref}")

    def push(self, ref: str) -> str:
        """Push one tag; return the manifest digest the registry reported."""
        result = run([self.docker, "push", ref], env=self.env, timeout=3600)
        if result.returncode != 0:
            error = (result.stderr or result.stdout).strip()
            self._raise_if_unusable(error, action=f"push {ref}")
            raise RegistryError(f"pushing {ref} failed: {_last_line(error)}", "run the push again (it resumes)")
        match = _PUSHED_DIGEST.search(result.stdout)
        if match is None:
            raise RegistryError(f"pushing {ref}: the registry reported no digest", "run the push again")
        return match.group(1)

    def publish_index(self, target: str, children: Sequence[tuple[str, str]]) -> str:
        """Publish an index under `target` over each (platform, manifest digest) with `docker manifest`;
        return its digest as the push printed it. Run with `private_cli_config`'s environment."""
        result = None
        for command in index_commands(self.docker, target, children, insecure=self.insecure):
            result = run(command, env=self.env, timeout=600)
            if result.returncode != 0:
                error = (result.stderr or result.stdout).strip()
                self._raise_if_unusable(error, action=f"publish the index {target}")
                raise RegistryError(
                    f"publishing the index {target} failed (docker manifest {command[2]}): {_last_line(error)}",
                    "check that every platform's image was pushed, then push again",
                )
        printed = (result.stdout.strip().splitlines() or [""])[-1].strip() if result else ""
        if not DIGEST_RE.fullmatch(printed):
            raise RegistryError(f"publishing the index {target}: `docker manifest push` printed no digest")
        return printed

    def verify_index(self, target: str, digest: str, expected: Mapping[str, str]) -> None:
        """The registry serves, under `target`, the index `digest` with exactly `expected`'s platforms,
        each at its manifest digest (platform -> digest); else one line saying what differs."""
        held = self.lookup(target)
        found = {entry.platform: entry.digest for entry in held.entries} if held else {}
        if held is None or not held.is_index or found != {canonical(p): d for p, d in expected.items()}:
            shown = ", ".join(f"{p} {d}" for p, d in sorted(found.items())) or (held.image if held else "nothing")
            raise RegistryError(
                f"{target}: the registry serves {shown}, not the platforms' pushed manifests",
                "someone pushed to the same tag meanwhile; check the registry",
            )
        text = self.inspect_index(target)
        served = printed_index_digest(text) if text is not None else "nothing"
        if served != digest:
            raise RegistryError(
                f"{target}: the registry serves the index {served}, not the published {digest}",
                "someone pushed to the same tag meanwhile; check the registry",
            )

    def _raise_if_unusable(self, error: str, *, action: str) -> None:
        lowered = error.lower()
        if any(marker in lowered for marker in _UNREACHABLE):
            raise RegistryError(
                f"registry {self.host} does not answer (trying to {action})",
                "start it or fix the `registry` setting / --registry, then push again",
            )
        if any(marker in lowered for marker in _DENIED):
            raise RegistryError(
                f"registry {self.host} refused access (trying to {action})",
                f"log the engine in: `docker login {self.host.split('/')[0]}` (nbenv keeps no credentials)",
            )


_USERINFO = re.compile(r"://[^/@\s]+@")
_AUTH_VALUE = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{12,}")


def _last_line(text: str) -> str:
    """The CLI's last stderr line, for a one-line error: never a credential (userinfo, an Authorization value)."""
    line = (text.strip().splitlines() or ["no output"])[-1]
    return _AUTH_VALUE.sub(r"\1 ***", _USERINFO.sub("://***@", line))[:300]
