"""A container registry, through the docker CLI so the engine's own login (and credential helpers) apply.

nbenv never reads or stores registry credentials: `docker login HOST` once, as usual.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from nbenv.adapters.process import run
from nbenv.errors import RegistryError

MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (MANIFEST_LIST, OCI_INDEX)
_ACCEPT = ", ".join(
    (
        MANIFEST_LIST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
_MANIFEST_LIMIT = 4 * 1024 * 1024  # the registry's own limit on a manifest
API_HINT = "push a multi-platform image to a registry on this machine (127.0.0.1:PORT), or push one platform"
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_UNREACHABLE = ("failed to configure transport", "error pinging", "connection refused", "no such host", "i/o timeout")
_DENIED = ("unauthorized", "denied", "authentication required")


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


@dataclass(frozen=True)
class RemoteTag:
    image: str  # the config digest (= the local image id of the same image)
    manifest: str | None  # the manifest digest, as `docker push` reports it


@dataclass(frozen=True)
class Manifest:
    """A manifest or an image index as the registry serves it (the bytes its digest is of)."""

    digest: str
    media_type: str
    size: int
    data: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.data

    @property
    def config(self) -> str:
        """The config digest of an image manifest (= the local image id of the same image)."""
        return str((self.data.get("config") or {}).get("digest") or "")


class Registry:
    def __init__(self, host: str, *, docker: str = "docker") -> None:
        self.host, self.docker = host, docker

    def lookup(self, ref: str) -> RemoteTag | None:
        """What the registry holds under `ref` (one `docker manifest inspect`), or None: no such tag."""
        insecure = ["--insecure"] if is_loopback(self.host.split("/")[0]) else []
        result = run([self.docker, "manifest", "inspect", *insecure, "--verbose", ref], timeout=120)
        if result.returncode != 0:
            error = result.stderr.strip()
            self._raise_if_unusable(error, action=f"look up {ref}")
            if "no such manifest" in error or "manifest unknown" in error or "not found" in error:
                return None
            raise RegistryError(f"cannot look up {ref}: {_last_line(error)}", "check the registry setting")
        data = json.loads(result.stdout)
        if isinstance(data, list):  # a multi-platform index: never an image nbenv pushed
            digest = str(data[0].get("Descriptor", {}).get("digest", "")) if data else ""
            return RemoteTag(image=f"index:{digest}", manifest=None)
        manifest = data.get("SchemaV2Manifest") or data.get("OCIManifest") or {}
        descriptor = data.get("Descriptor", {}).get("digest")
        return RemoteTag(image=str(manifest.get("config", {}).get("digest") or descriptor or ""), manifest=descriptor)

    def push(self, ref: str) -> str:
        """Push one tag; return the manifest digest the registry reported."""
        result = run([self.docker, "push", ref], timeout=3600)
        if result.returncode != 0:
            error = (result.stderr or result.stdout).strip()
            self._raise_if_unusable(error, action=f"push {ref}")
            raise RegistryError(f"pushing {ref} failed: {_last_line(error)}", "run the push again (it resumes)")
        match = _PUSHED_DIGEST.search(result.stdout)
        if match is None:
            raise RegistryError(f"pushing {ref}: the registry reported no digest", "run the push again")
        return match.group(1)

    # --- the registry's HTTP API (distribution v2), for image indexes: a registry on this machine only ---

    def check_api(self) -> None:
        """RegistryError unless nbenv speaks this registry's API itself (a registry on this machine)."""
        self._endpoint(f"{self.host}/probe:probe")

    def _endpoint(self, ref: str) -> tuple[str, str, str]:
        """(http://HOST, repository name, tag or digest) of `ref` = HOST[/PATH]/NAME(:TAG|@DIGEST)."""
        host = self.host.split("/")[0]
        if not is_loopback(host):
            raise RegistryError(
                f"registry {host}: nbenv publishes a multi-platform image index itself, over the registry's API, "
                "only to a registry on this machine",
                API_HINT,
            )
        name = ref[len(host) + 1 :] if ref.startswith(host + "/") else ref
        if "@" in name:
            name, reference = name.split("@", 1)
        else:
            name, _, reference = name.rpartition(":")
        return f"http://{host}", name, reference

    def manifest(self, ref: str) -> Manifest | None:
        """The manifest or index the registry serves under `ref` (a tag or `@sha256:...`), or None."""
        base, name, reference = self._endpoint(ref)
        request = urllib.request.Request(f"{base}/v2/{name}/manifests/{reference}", headers={"Accept": _ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read(_MANIFEST_LIMIT + 1)
                media_type = str(response.headers.get("Content-Type", "")).split(";")[0].strip()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RegistryError(f"cannot look up {ref}: HTTP {exc.code} {exc.reason}", "check the registry") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(
                f"registry {self.host} does not answer (trying to look up {ref}): {exc}",
                "start it or fix the `registry` setting / --registry, then push again",
            ) from None
        if len(body) > _MANIFEST_LIMIT:
            raise RegistryError(f"{ref}: the registry serves a manifest over {_MANIFEST_LIMIT} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise RegistryError(f"{ref}: the registry serves a manifest that is not JSON") from None
        if not isinstance(data, dict):
            raise RegistryError(f"{ref}: the registry serves a manifest that is not a JSON object")
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if "@" in ref and ref.rsplit("@", 1)[1] != digest:
            raise RegistryError(f"{ref}: the registry serves content of digest {digest}", "check the registry")
        return Manifest(digest, media_type or str(data.get("mediaType") or ""), len(body), data)

    def put_index(self, ref: str, body: bytes, media_type: str) -> str:
        """PUT an image index under the tag `ref`; its digest (checked against the one the registry reports)."""
        base, name, reference = self._endpoint(ref)
        request = urllib.request.Request(
            f"{base}/v2/{name}/manifests/{reference}", data=body, method="PUT", headers={"Content-Type": media_type}
        )
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                reported = str(response.headers.get("Docker-Content-Digest", ""))
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace").strip()
            raise RegistryError(
                f"publishing the index {ref} failed: HTTP {exc.code} {_last_line(detail or str(exc.reason))}",
                "check that every platform's image was pushed, then push again",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(f"registry {self.host} does not answer (trying to publish {ref}): {exc}") from None
        if reported and reported != digest:
            raise RegistryError(f"{ref}: the registry stored the index as {reported}, not {digest}")
        return digest

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


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1][:300]
