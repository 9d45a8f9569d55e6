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
    assert "Traceback" not in result.err
    assert snapshot(workspace) == before, "a failing command must write nothing"


def test_corpus_is_large_enough() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25
