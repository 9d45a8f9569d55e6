"""Base images made here from Debian packages, because none can be pulled.

Air-gapped and locked-down networks (and CI runners behind a proxy) often reach a Debian
package mirror but no container registry. nbenv's generated Dockerfiles are FROM
`nbenv/debian-python:bookworm`, so nbenv makes that image itself: `mmdebstrap` builds a
Debian minbase root filesystem with Python, venv support, CA certificates, tini and the
`jovyan` user (UID 1000, GID 100) into a temporary tarball, and `docker import` turns it into
an image with a small config (env, labels, command).

`base_image_plan` is pure (validation and argv only, deterministic); `build_base_image` runs it.
No mirror is written anywhere: mmdebstrap uses its default (Debian's own mirror, plus the
security and updates suites for a stable release) or whatever the host's apt setup redirects to.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nbenv.adapters.engine import Engine, EngineAPI
from nbenv.constants import (
    AUTO_SUITES,
    DEFAULT_BASE_TAG,
    DEFAULT_SUITE,
    NBENV_BASE_REPOSITORY,
    SUITE_PYTHON,
    USER_GID,
    USER_NAME,
    USER_UID,
)
from nbenv.errors import BuildError
from nbenv.platforms import arch, canonical, debian_arch, require_emulation

PYTHON_LABEL = "nbenv.base.python"
BASE_PACKAGES = ("ca-certificates", "python3", "python3-venv", "tini")
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Debian policy 5.6.1: lowercase letters, digits, + - . ; at least two characters, alphanumeric first.
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
SUITE_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")
# Docker's reference grammar (distribution/reference), without digests: [HOST[:PORT]/]PATH[:TAG].
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_HOST_PART}(?:\.{_HOST_PART})*"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = re.compile(rf"(?P<name>(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::[\w][\w.-]{{0,127}})?")

# dpkg drops these paths from every package, here and in images built FROM this one
# (the option stays in /etc/dpkg/dpkg.cfg.d/99mmdebstrap). Copyright files are kept.
_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
# No translated package descriptions to download.
_APT_OPTIONS = ('Acquire::Languages "none"',)
# Merged /usr the way debootstrap does it: without this, bookworm's init-system-helpers pulls in
# the usrmerge package, and with it the whole of perl (about 50 MB). Shipped with mmdebstrap.
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
# Hooks run through `sh -c` with the root filesystem as "$1": constant text only, never user input.
_CUSTOMIZE_HOOKS = (
    f'chroot "$1" useradd --no-log-init --create-home --uid {USER_UID} --gid {USER_GID} --shell /bin/bash {USER_NAME}',
    # mmdebstrap copies the host's DNS setup and name in; the engine provides both at run time.
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
    # `apt-get install` in images FROM this one leaves no .deb files in its layer. Set here, at the
    # end: as an --aptopt it would also apply to mmdebstrap's own download, which needs the files.
    'printf \'APT::Keep-Downloaded-Packages "false";\\n\' > "$1/etc/apt/apt.conf.d/90nbenv-no-debs"',
)
# CUDA (`nbenv image base --cuda`, tag SUITE-cuda): Debian's own CUDA runtime libraries, from its non-free
# component (NVIDIA's licence), for each suite nbenv knows; verified with `apt-cache policy` for amd64 and
# arm64. The driver side (libcuda1, nvidia-smi) is not installed: the NVIDIA Container Toolkit mounts the
# host's driver into a container that requests a GPU (`[resources] gpus`), and it must match the host's kernel.
CUDA_SUFFIX = "-cuda"
CUDA_COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
CUDA_VERSION = {"bookworm": "11.8", "trixie": "12.4"}
CUDA_PACKAGES = {
    "bookworm": (
        "libcublas11",
        "libcublaslt11",
        "libcudart11.0",
        "libcufft10",
        "libcurand10",
        "libcusolver11",
        "libcusparse11",
        "libnvrtc11.2",
    ),
    "trixie": (
        "libcublas12",
        "libcublaslt12",
        "libcudart12",
        "libcufft11",
        "libcurand10",
        "libcusolver11",
        "libcusparse12",
        "libnvrtc12",
    ),
}
_STATUS_LINE = re.compile(r"[IWE]: ")  # mmdebstrap's own status lines
_DETAIL_LINES = 40  # other output kept back, shown only on failure
_STOP_GRACE_SECONDS = 10.0  # Ctrl-C in a terminal reaches mmdebstrap too: let it unmount and clean up itself


@dataclass(frozen=True)
class BaseRecipe:
    """How nbenv makes a base image: a Debian suite and the extra packages (its Python: SUITE_PYTHON)."""

    suite: str
    packages: tuple[str, ...] = ()
    cuda: bool = False  # with Debian's CUDA runtime (CUDA_PACKAGES)

    @property
    def python(self) -> str | None:
        return SUITE_PYTHON.get(self.suite)


def split_ref(ref: str) -> tuple[str, str | None]:
    """(repository, tag or None) of an image reference; `host:5000/team/x:1` -> ("host:5000/team/x", "1")."""
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last or "@" in ref:
        return ref, None
    tag = last.rsplit(":", 1)[1]
    return ref[: -len(tag) - 1], tag


def nbenv_recipe(ref: str) -> BaseRecipe | None:
    """The recipe of `nbenv/debian-python[:SUITE[-cuda]]` (the tag is the suite; none: bookworm; `-cuda`:
    with Debian's CUDA runtime), else None."""
    repository, tag = split_ref(ref)
    if repository != NBENV_BASE_REPOSITORY:
        return None
    suite = tag or DEFAULT_SUITE
    if suite.endswith(CUDA_SUFFIX) and suite != CUDA_SUFFIX:
        return BaseRecipe(suite.removesuffix(CUDA_SUFFIX), cuda=True)
    return BaseRecipe(suite)


def suite_tag(suite: str, *, cuda: bool = False) -> str:
    return f"{NBENV_BASE_REPOSITORY}:{suite}{CUDA_SUFFIX if cuda else ''}"


@dataclass(frozen=True)
class BaseImagePlan:
    """Everything needed to build one base image; deterministic (no timestamps, no host names).

    `mmdebstrap_argv` is the full command without the mode and the output: it ends with the suite,
    and `mmdebstrap_command` adds `--mode=...` and the tarball path.
    """

    tag: str
    suite: str
    packages: tuple[str, ...]
    mmdebstrap_argv: tuple[str, ...]
    import_changes: tuple[str, ...]
    platform: str | None = None  # another architecture than the engine's (mmdebstrap --arch, under QEMU)
    cuda: bool = False  # with Debian's CUDA runtime (CUDA_PACKAGES)


def base_image_plan(
    *,
    tag: str = DEFAULT_BASE_TAG,
    suite: str = DEFAULT_SUITE,
    extra_packages: Sequence[str] = (),
    cuda: bool = False,
    platform: str | None = None,
) -> BaseImagePlan:
    """Validate the inputs and build the mmdebstrap argv and the `docker import --change` values.
    With `cuda`: Debian's CUDA runtime of the suite (CUDA_PACKAGES) from its non-free component.
    `platform`: a base for another architecture (`tag` is then that platform's own tag, see
    `platforms.platform_tag`); None: the engine's own."""
    if isinstance(extra_packages, str):
        raise TypeError("extra_packages must be a sequence of package names, not one string")
    _check_tag(tag)
    _check_suite(suite)
    for name in extra_packages:
        _check_package(name)
    packages = tuple(sorted({*BASE_PACKAGES, *extra_packages, *(_cuda_packages(suite) if cuda else ())}))
    platform = canonical(platform) if platform else None
    argv = (
        "mmdebstrap",
        "--variant=minbase",
        *((f"--components={','.join(CUDA_COMPONENTS)}",) if cuda else ()),
        f"--include={','.join(packages)}",
        *(f"--aptopt={option}" for option in _APT_OPTIONS),
        *(f"--dpkgopt={option}" for option in _DPKG_OPTIONS),
        f"--hook-directory={MERGED_USR_HOOKS}",
        *(f"--customize-hook={hook}" for hook in _CUSTOMIZE_HOOKS),
        *((f"--arch={debian_arch(platform)}",) if platform else ()),
        suite,
    )
    return BaseImagePlan(tag, suite, packages, argv, _import_changes(suite, packages, cuda=cuda), platform, cuda)


def mmdebstrap_command(plan: BaseImagePlan, *, mode: str, target: Path) -> list[str]:
    """The argv that runs `plan`: its options, `--mode=MODE`, then SUITE and TARGET."""
    *options, suite = plan.mmdebstrap_argv
    return [*options, f"--mode={mode}", suite, str(target)]


def build_base_image(
    plan: BaseImagePlan, *, engine: EngineAPI | None = None, log: Callable[[str], None] = print
) -> str:
    """Build the root filesystem, import it as `plan.tag` and return the image id.

    mmdebstrap's progress lines go to `log` as they come. The tarball lives in a temporary
    directory that is removed afterwards, also on failure or Ctrl-C.
    """
    engine = engine or Engine(docker=os.environ.get("NBENV_DOCKER", "docker"))
    executable = _find_mmdebstrap()
    mode = mmdebstrap_mode(os.geteuid(), _user_name(), _read("/etc/subuid"), _read("/etc/subgid"))
    engine.check()
    if plan.platform:  # before any time is spent: the emulator, and mmdebstrap's test of it
        check_emulation(plan.platform, engine.platform)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nbenv-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        command = mmdebstrap_command(plan, mode=mode, target=tarball)
        log(f"building the root filesystem of {plan.tag}: Debian {plan.suite} minbase + {', '.join(plan.packages)}")
        _run_mmdebstrap([executable, *command[1:]], log)
        python = checked_python(plan.suite, tarball_python(tarball))
        log(f"importing {tarball.stat().st_size / 1e6:.0f} MB into the engine as {plan.tag} (Python {python})")
        if plan.platform:
            image_id = _load(plan, tarball, engine, python=python, scratch=Path(tmp))
        else:
            image_id = _import(plan, tarball, engine, python=python)
    size = info.size if (info := engine.inspect(image_id)) else 0
    log(f"built {plan.tag} ({image_id[:19]}, {size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return image_id


_PYTHON_LINK = re.compile(r"python(3\.[0-9]{1,3})")
_PYTHON3_MEMBERS = {"./usr/bin/python3", "usr/bin/python3", "./bin/python3", "bin/python3"}


def tarball_python(tarball: Path) -> str | None:
    """The Python X.Y of a root filesystem tarball: Debian's /usr/bin/python3 links to python3.X."""
    with tarfile.open(tarball, mode="r:") as archive:
        for member in archive:
            if (
                member.name in _PYTHON3_MEMBERS
                and member.issym()
                and (match := _PYTHON_LINK.fullmatch(member.linkname))
            ):
                return match.group(1)
    return None


def checked_python(suite: str, found: str | None) -> str:
    """The Python the image's label records: what the root filesystem holds, which for a suite nbenv
    knows must be the one its table (and so every static check) assumed."""
    if found is None:
        raise BuildError(
            f"the Debian {suite} root filesystem has no /usr/bin/python3 -> python3.X link",
            f"check that the suite ships python3 ({' and '.join(AUTO_SUITES)} do)",
        )
    expected = SUITE_PYTHON.get(suite)
    if expected is not None and expected != found:
        raise BuildError(
            f"Debian {suite}'s python3 is {found}, but nbenv's table of suites says {expected}",
            "report this to nbenv; meanwhile name a base_image whose Python you know",
        )
    return found


def mmdebstrap_mode(euid: int, user: str, subuid: str, subgid: str) -> str:
    """`root` as root; else `unshare`, which needs subordinate IDs for the user; else BuildError."""
    if euid == 0:
        return "root"
    if _has_subordinate_ids(subuid, user, euid) and _has_subordinate_ids(subgid, user, euid):
        return "unshare"
    raise BuildError(
        f"building a base image needs root or subordinate user IDs, and user {user!r} has none",
        f"run it as root, or give the user IDs for mmdebstrap --mode=unshare: "
        f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}",
    )


def _has_subordinate_ids(table: str, user: str, uid: int) -> bool:
    owners = {line.split(":", 1)[0] for line in table.splitlines() if line.count(":") == 2}
    return user in owners or str(uid) in owners


def _check_tag(tag: str) -> None:
    match = _TAG.fullmatch(tag)
    if match is None or len(match.group("name")) > 255:
        raise BuildError(f"invalid image tag {tag!r}", f"use NAME[:TAG] with a lowercase name, e.g. {DEFAULT_BASE_TAG}")


def _check_suite(suite: str) -> None:
    if not SUITE_RE.fullmatch(suite):
        raise BuildError(f"invalid Debian suite {suite!r}", f"use a codename or suite such as {DEFAULT_SUITE}")


def _check_package(name: str) -> None:
    if not isinstance(name, str) or not PACKAGE_RE.fullmatch(name):
        raise BuildError(
            f"invalid Debian package name {name!r}",
            "a package name has lowercase letters, digits, '+', '-' and '.', e.g. graphviz",
        )


def check_emulation(platform: str, native: str) -> None:
    """BuildError (one line naming what to install or enable) unless this machine runs `platform`'s
    binaries: the engine's own platform, or QEMU registered with binfmt_misc (and arch-test, which
    mmdebstrap runs to check a foreign architecture)."""
    require_emulation(platform, native)
    if canonical(platform) != canonical(native) and shutil.which("arch-test") is None:
        raise BuildError(
            f"mmdebstrap needs arch-test to build a {platform} root filesystem on this {native} machine",
            "apt-get install arch-test",
        )


def _cuda_packages(suite: str) -> tuple[str, ...]:
    if suite not in CUDA_PACKAGES:
        raise BuildError(
            f"--cuda: nbenv knows Debian's CUDA runtime packages for {' and '.join(CUDA_PACKAGES)}, not {suite!r}",
            "build for one of those suites, or name a CUDA base image built elsewhere as the spec's base_image",
        )
    return CUDA_PACKAGES[suite]


def _base_labels(suite: str, packages: tuple[str, ...], *, cuda: bool = False) -> dict[str, str]:
    cuda_labels = {"nbenv.base.cuda": CUDA_VERSION[suite]} if cuda else {}
    return {
        "org.opencontainers.image.title": f"nbenv Debian {suite} Python base"
        + (f" with the CUDA {CUDA_VERSION[suite]} runtime" if cuda else ""),
        "org.opencontainers.image.description": (
            f"Debian {suite} minbase with {', '.join(packages)} and the user {USER_NAME} "
            f"({USER_UID}:{USER_GID}), made by nbenv from Debian packages"
        ),
        "nbenv.base.suite": suite,
        "nbenv.base.packages": ",".join(packages),
        **cuda_labels,
    }


_BASE_ENV = {"LANG": "C.UTF-8", "PATH": PATH_ENV}
_BASE_CMD = ["/bin/bash"]


def _import_changes(suite: str, packages: tuple[str, ...], *, cuda: bool = False) -> tuple[str, ...]:
    return (
        *(f"ENV {key}={value}" for key, value in _BASE_ENV.items()),
        *(_label(key, value) for key, value in _base_labels(suite, packages, cuda=cuda).items()),
        f"CMD {json.dumps(_BASE_CMD)}",
    )


def _label(key: str, value: str) -> str:
    return f"LABEL {key}={json.dumps(value)}"  # a JSON string is a valid double-quoted Dockerfile word


def _find_mmdebstrap() -> str:
    executable = shutil.which("mmdebstrap")
    if executable is None:
        raise BuildError(
            "mmdebstrap not found: nbenv builds base images from Debian packages with it", "apt-get install mmdebstrap"
        )
    if not Path(MERGED_USR_HOOKS).is_dir():
        raise BuildError(
            f"mmdebstrap's merged-usr hooks are missing ({MERGED_USR_HOOKS})",
            "apt-get install --reinstall mmdebstrap (Debian's package ships them)",
        )
    return executable


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _run_mmdebstrap(command: Sequence[str], log: Callable[[str], None]) -> None:
    """Run mmdebstrap; its status lines (`I:`, `W:`, `E:`) go to `log` as they come.

    Everything else (apt and dpkg output from hooks, progress percentages) is kept back and
    logged only when mmdebstrap fails: its last lines then show what went wrong.
    """
    first_error = ""  # the cause; later ones are consequences ("mmdebstrap failed to run")
    detail: deque[str] = deque(maxlen=_DETAIL_LINES)
    with subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.rstrip()
                if _STATUS_LINE.match(line):
                    log(line)
                    if line.startswith("E: ") and not first_error:
                        first_error = line[3:]
                elif line:
                    detail.append(line)
            code = process.wait()
        except BaseException:
            _stop(process)
            raise
    if code != 0:
        for line in detail:
            log(line)
        raise BuildError(
            f"mmdebstrap failed (exit {code}): {first_error or 'see its output above'}",
            "check that this machine reaches its Debian mirror (apt-get update) and that the suite exists",
        )


def _stop(process: subprocess.Popen[str]) -> None:
    """Let an interrupted mmdebstrap unmount and remove its own temporary root; force it only if it hangs."""
    try:
        process.wait(timeout=_STOP_GRACE_SECONDS)
        return
    except subprocess.TimeoutExpired:
        process.terminate()  # mmdebstrap cleans up on SIGTERM as on SIGINT
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _run_time_labels(python: str) -> dict[str, str]:
    return {PYTHON_LABEL: python, "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _message(plan: BaseImagePlan) -> str:
    return f"nbenv base image: mmdebstrap --variant=minbase {plan.suite}"


def _import(plan: BaseImagePlan, tarball: Path, engine: EngineAPI, *, python: str) -> str:
    changes = [*plan.import_changes, *(_label(key, value) for key, value in _run_time_labels(python).items())]
    return engine.import_tarball(tarball, plan.tag, changes=changes, message=_message(plan))


def image_config(plan: BaseImagePlan, *, layer_digest: str, labels: dict[str, str]) -> dict[str, object]:
    """The image config of a base for `plan.platform`, the same as `docker import` gives the native one
    (env, labels, command) but with the platform's architecture: BuildKit resolves `FROM` with
    `--platform` to a local image only when its architecture matches (else it looks in a registry)."""
    assert plan.platform is not None
    architecture = arch(plan.platform)
    created = labels["org.opencontainers.image.created"]
    return {
        "architecture": architecture,
        **({"variant": "v8"} if architecture == "arm64" else {}),
        "os": "linux",
        "created": created,
        "config": {
            "Env": [f"{key}={value}" for key, value in _BASE_ENV.items()],
            "Cmd": list(_BASE_CMD),
            "Labels": {**_base_labels(plan.suite, plan.packages, cuda=plan.cuda), **labels},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": _message(plan)}],
    }


def _load(plan: BaseImagePlan, tarball: Path, engine: EngineAPI, *, python: str, scratch: Path) -> str:
    """`docker load` the root filesystem as a one-layer image of `plan.platform` (a docker-archive)."""
    digest = hashlib.sha256()
    with tarball.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    config = json.dumps(
        image_config(plan, layer_digest=f"sha256:{digest.hexdigest()}", labels=_run_time_labels(python)),
        sort_keys=True,
    ).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [plan.tag], "Layers": ["rootfs/layer.tar"]}]).encode()
    archive = scratch / "image.tar"
    with tarfile.open(archive, mode="w") as out:
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
        out.add(tarball, arcname="rootfs/layer.tar", recursive=False)
    tarball.unlink()  # the archive holds it now: the disk holds one copy at a time after this
    return engine.load_archive(archive, plan.tag)
