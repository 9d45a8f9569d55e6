"""The extra CA bundle for builds: where it may come from, and nothing but certificates out of it.

A committed setting (`ca_bundle` in the repo-wide settings) is untrusted: it is read only from inside the
repository (no symlink out of it, a regular file, a size cap). NBENV_CA_BUNDLE and PIP_CERT come from
the user's own environment, so they may name any host path (still only a regular file).

Whatever the file holds, only well-formed PEM certificates leave it: each `BEGIN/END CERTIFICATE` block
whose body is valid base64 of a DER SEQUENCE, re-encoded canonically (comments, keys, other text and
anything between the blocks are dropped). A file without one is refused. The result is handed to the
build as a BuildKit secret (never a file of the build context, never in a layer or an exported cache).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbenv.errors import BuildError, NbenvError, SpecError
from nbenv.safepath import MiB, confine, read_regular

CA_LIMIT = 8 * MiB  # a whole system bundle is about 200 KiB
_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----")


@dataclass(frozen=True)
class ExtraCA:
    pem: str  # certificates only, canonical PEM
    count: int
    path: str  # as given, for messages
    source: str  # which setting named it


def certificates(data: bytes) -> list[bytes]:
    """The DER bytes of every well-formed PEM certificate block in `data`, in order."""
    found = []
    for match in _BLOCK.finditer(data):
        body = b"".join(match.group(1).split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(der) >= 64 and der[0] == 0x30:  # a DER SEQUENCE, like every X.509 certificate
            found.append(der)
    return found


def pem(ders: list[bytes]) -> str:
    """Canonical PEM: 64 base64 characters a line."""
    blocks = [
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
        + "\n-----END CERTIFICATE-----\n"
        for der in ders
    ]
    return "".join(blocks)


def _extract(data: bytes, *, display: str, error: type[NbenvError]) -> tuple[str, int]:
    ders = certificates(data)
    if not ders:
        raise error(
            f"{display}: holds no PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            "point it at your proxy's or index's CA certificate in PEM form",
        )
    return pem(ders), len(ders)


REPO_HINT = "ca_bundle names a file of the repository; set NBENV_CA_BUNDLE for a CA file elsewhere on this machine"


def repo_ca_bundle(root: Path, value: str) -> ExtraCA:
    """The committed `ca_bundle` setting: a regular file inside the repository, certificates only.

    SpecError (one line, for the caller to place at the setting) for a path outside, a special file,
    a file too large or one without a certificate."""
    if os.path.isabs(value) or value.startswith("~"):
        raise SpecError(f"{value!r} must be a path inside the repository", REPO_HINT)
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        raise SpecError(f"{value!r} points outside the repository ('..')", REPO_HINT)
    real = confine(root, value, what="the CA bundle")
    data = read_regular(real, display=value, limit=CA_LIMIT)
    text, count = _extract(data, display=value, error=SpecError)
    return ExtraCA(text, count, value, "ca_bundle in the repo-wide settings")


def host_ca_bundle(variable: str, value: str) -> ExtraCA:
    """NBENV_CA_BUNDLE or PIP_CERT: any host path the user named, a regular file with certificates."""
    display = f"{variable}={value}"
    data = read_regular(Path(value).expanduser(), display=display, limit=CA_LIMIT, error=BuildError)
    text, count = _extract(data, display=display, error=BuildError)
    return ExtraCA(text, count, value, variable)
