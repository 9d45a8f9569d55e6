"""The bad-input corpus: each case exits non-zero with exactly one `FILE:LINE: field: what` line
(plus at most one hint line), no traceback, and writes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, snapshot

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
    Case(
        "no-jupyter-in-groups",
        edit(BASE, 'groups = ["notebook"]', 'groups = ["models"]'),
        rf"^{BASE}:5: groups: the groups models install no jupyterlab or ipykernel",
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
        "data-pull-no-target",
        lambda root: None,
        r"^name the environments whose data to use, or pass --all$",
        args=("data", "pull"),
        code=2,
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
        r"^poetry\.lock: invalid TOML: ",
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
CASES += RUNTIME_VALUE_CASES


@pytest.mark.badinput
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
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
