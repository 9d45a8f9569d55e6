"""A container registry, through the docker CLI so the engine's own login (and credential helpers) apply.

nbenv never reads or stores registry credentials: `docker login HOST` once, as usual.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from nbenv.adapters.process import run
from nbenv.errors import RegistryError

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
