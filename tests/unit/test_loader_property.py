"""Property: whatever TOML a spec file holds, loading, planning and rendering it raises nothing but
nbenv's own errors (which the CLI prints as one line). Deterministic: derandomized, no example database."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nbenv.errors import NbenvError
from nbenv.generate import generate
from nbenv.lock import Lock
from nbenv.project import load_lock, plan_for
from nbenv.spec.load import Loader
from nbenv.workspace import Workspace
from tests.conftest import REPO, WORKSPACE_FILES

NAME = "prop"
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE = [
    "",
    "\nRUN rm -rf /",
    '"; rm -rf / #',
    "$HOME ${HOME} $$",
    "${{ secrets.GITHUB_TOKEN }}",
    "\\",
    "\\\nRUN id",
    "`id` $(id)",
    "../../etc/passwd",
    "/etc",
    "/home/jovyan/../../root",
    "träffic ☃ \u202e",
    "\x00",
    "\t",
    "key: value\n- item",
    "{{ x }}",
    "-rf",
]
# Text without surrogates (TOML cannot hold them); hostile samples mixed in on purpose.
text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.integers(min_value=4000, max_value=12_000).map(lambda n: "x" * n),  # very long values
)
scalar = st.one_of(
    text,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
)
_ANYTHING = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def _anything(draw: st.DrawFn) -> Any:
    """Any TOML value (a composite keeps the strategy's repr short)."""
    return draw(_ANYTHING)


anything = _anything()


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda roll: anything if roll == 0 else strategy)


# Specs that look valid key by key, with hostile or wrong values in any field.
spec_like = st.fixed_dictionaries(
    {
        "spec_version": maybe(st.just(1)),
        "name": maybe(st.just(NAME)),
        "groups": maybe(st.lists(maybe(st.sampled_from(["notebook", "models", "main", "dev"])), max_size=3)),
    },
    optional={
        "description": text,
        "extends": maybe(st.sampled_from(["base", "traffic-analysis", NAME])),
        "base_image": maybe(st.sampled_from(["debian:bookworm", "nbenv/debian-python:bookworm"])),
        "importable": maybe(st.booleans()),
        "system_packages": maybe(st.lists(maybe(st.sampled_from(["graphviz", "libpq5=15.8-0+deb12u1"])), max_size=2)),
        "data": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"path": maybe(st.sampled_from(["data/processed/pems", "data/processed/climate"]))},
                    optional={"target": maybe(st.sampled_from(["/home/jovyan/d", "/home/jovyan/work/x"]))},
                ),
                max_size=2,
            )
        ),
        "mounts": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "source": maybe(st.sampled_from([".", "environments"])),
                        "target": maybe(st.sampled_from(["/home/jovyan/work", "/home/jovyan/specs"])),
                    },
                ),
                max_size=2,
            )
        ),
        "env": maybe(st.dictionaries(st.one_of(st.sampled_from(["TZ", "MPLBACKEND", "X_1"]), text), text, max_size=3)),
        "jupyter": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "port": maybe(st.integers(min_value=-10, max_value=70_000)),
                    "bind": maybe(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0"])),
                    "interface": maybe(st.sampled_from(["lab", "notebook"])),
                    "default_url": maybe(st.sampled_from(["/lab", "/tree", "/lab/tree/a b"])),
                    "kernel_display_name": text,
                },
            )
        ),
        "resources": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "cpus": maybe(st.floats(min_value=-1, max_value=2000)),
                    "memory": maybe(st.sampled_from(["4g", "512m", "1.5g"])),
                    "shm_size": maybe(st.sampled_from(["1g", "64m"])),
                },
            )
        ),
    },
)
# Unknown keys beside the known ones.
_SPEC_LIKE = st.tuples(spec_like, st.dictionaries(text, anything, max_size=2)).map(lambda pair: {**pair[1], **pair[0]})
_DOCUMENTS = st.integers(min_value=0, max_value=3).flatmap(
    lambda roll: st.dictionaries(text, anything, max_size=6) if roll == 0 else _SPEC_LIKE
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    return draw(_DOCUMENTS)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Lock]:
    root = tmp_path_factory.mktemp("property") / "repo"
    root.mkdir()
    for name in WORKSPACE_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)  # type: ignore[operator]
    ws = Workspace(root)
    return ws, load_lock(ws)


def load_plan_render(ws: Workspace, lock: Lock) -> None:
    loader = Loader(ws)
    loader.environment(NAME)
    generate(ws, [plan_for(ws, loader, lock, NAME)], check=True)  # renders everything, writes nothing


def only_nbenv_errors(ws: Workspace, lock: Lock, text: str) -> None:
    (ws.environments_dir / f"{NAME}.toml").write_text(text, encoding="utf-8")
    try:
        load_plan_render(ws, lock)
    except NbenvError as exc:
        assert exc.message and "\n" not in exc.message, f"not one line: {exc.message!r}"


@pytest.mark.badinput
@PROPERTY
@given(document=documents())
def test_generated_toml_documents_raise_only_nbenv_errors(repo: tuple[Workspace, Lock], document: Any) -> None:
    try:
        text = tomlkit.dumps(document)
    except Exception:  # a document tomlkit cannot write (e.g. keys it cannot quote) is not a test input
        assume(False)
        raise
    only_nbenv_errors(*repo, text)


@pytest.mark.badinput
@PROPERTY
@given(data=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_raises_only_nbenv_errors(repo: tuple[Workspace, Lock], data: str) -> None:
    only_nbenv_errors(*repo, f'spec_version = 1\nname = "{NAME}"\n{data}')
