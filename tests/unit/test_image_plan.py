"""The pure planning of an image and of where things land in the container (image_plan.py, plan.py).

No workspace, no engine: values in, values out. tests/unit/test_image_pins.py pins the same functions
end to end for the demo workspace.
"""

from __future__ import annotations

import ast
import json
import posixpath
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.constants import USER_HOME
from nbenv.image_plan import ImageTarget, build_inputs, build_metadata, content_key, image_target
from nbenv.plan import (
    BuildPlan,
    container_path_of,
    container_paths_of,
    data_mount_targets,
    data_targets,
    import_paths,
    relative_to_source,
    token_file,
)
from nbenv.provenance import HISTORY_LABEL, GitState, history_of
from nbenv.spec.models import CONTAINER_WORK, DataMount, Environment, Jupyter, Resources, SourceMount

REPO = Path(__file__).resolve().parents[2]
WORK = CONTAINER_WORK


def env(
    name: str = "e",
    *,
    mounts: tuple[SourceMount, ...] = (SourceMount(),),
    data: tuple[DataMount, ...] = (),
    extends: str | None = None,
) -> Environment:
    return Environment(
        name=name,
        description="",
        file=f"environments/{name}.toml",
        extends=extends,
        lineage=(extends,) if extends else (),
        base_image="nbenv/debian-python:bookworm",
        groups=("notebook",),
        own_groups=("notebook",),
        importable=True,
        data=data,
        mounts=mounts,
        system_packages=(),
        env={},
        jupyter=Jupyter(kernel_display_name=f"Python ({name})"),
        resources=Resources(),
    )


def plan_of(environment: Environment, *, variant: bool = False) -> BuildPlan:
    return BuildPlan(
        env=environment,
        image=f"nbenv/{environment.name}",
        parent_image=f"nbenv/{environment.extends}" if environment.extends else None,
        from_image="x",
        groups=environment.groups,
        install_groups=environment.own_groups,
        layers=(),
        requirements_sha256="0" * 64,
        target_dir="/opt/venv",
        python_path=(),
        system_packages=(),
        out_dir=f"docker/{environment.name}",
        is_variant=variant,
    )


GIT = GitState("a" * 40, False, tag="v1.0.0", source="https://example.invalid/r")


# --- the content key and the image target ----------------------------------------------------


def test_the_key_includes_nbenvs_version(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"Dockerfile": "FROM x\n"}
    before = content_key(from_image_id="sha256:a", files=files)
    monkeypatch.setattr("nbenv.image_plan.__version__", "0.0.0-other")
    assert content_key(from_image_id="sha256:a", files=files) != before


@pytest.mark.parametrize("variant", [False, True])
def test_the_target_is_named_after_its_key_and_only_a_committed_environment_moves_latest(variant: bool) -> None:
    plan = plan_of(env("demo"), variant=variant)
    inputs = {"Dockerfile": "FROM x\n"}
    target = image_target(plan, from_image_id="sha256:b", inputs=inputs)
    assert target.key == content_key(from_image_id="sha256:b", files=inputs)
    assert target.ref == f"nbenv/demo:ck-{target.key[:12]}"
    assert target.tags == ((target.ref,) if variant else (target.ref, "nbenv/demo:latest"))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.text(alphabet="abc/._-", min_size=1, max_size=12).filter(lambda p: p.strip("/") == p and "//" not in p),
        st.text(max_size=20),
        max_size=6,
    )
)
def test_only_the_run_time_file_at_the_top_is_left_out_of_the_build_inputs(files: dict[str, str]) -> None:
    out = Path("/r/docker/e")
    rendered = {out / rel: text for rel, text in {**files, "compose.yaml": "ports: []\n"}.items()}
    inputs = build_inputs(out, rendered)
    assert "compose.yaml" not in inputs
    assert all(
        inputs[(out / rel).relative_to(out).as_posix()] == text for rel, text in files.items() if rel != "compose.yaml"
    )


@pytest.mark.parametrize("child", [False, True])
def test_the_metadata_of_a_root_and_of_a_child(child: bool) -> None:
    parent_record = {"environment": "base", "content_key": "p" * 64}
    parent_labels = {HISTORY_LABEL: json.dumps([parent_record])}
    environment = env("child", extends="base") if child else env("base")
    plan = plan_of(environment)
    target = ImageTarget("k" * 64, f"{plan.image}:ck-{'k' * 12}", ())
    from_ref = "nbenv/base:ck-pppppppppppp" if child else environment.base_image
    meta = build_metadata(
        plan,
        target,
        from_ref=from_ref,
        from_image_id="sha256:" + "f" * 64,
        parent_labels=parent_labels if child else None,
        lock_hash="l" * 64,
        git=GIT,
        created="2026-01-01T00:00:00Z",
    )
    assert meta.record["environment"] == environment.name and meta.record["image"] == target.ref
    assert meta.record["base_image"] == from_ref and meta.record["content_key"] == target.key
    assert meta.labels["nbenv.content-key"] == target.key
    assert meta.labels["nbenv.parent.digest"] == "sha256:" + "f" * 64
    assert history_of(meta.labels) == ([parent_record, meta.record] if child else [meta.record])
    assert json.loads(meta.build_args["NBENV_BUILD_RECORD"]) == meta.record
    assert meta.build_args["BASE_IMAGE"] == environment.base_image
    assert meta.build_args.get("PARENT_IMAGE") == (from_ref if child else None)


# --- where repository paths land in the container ---------------------------------------------

RELATIVE = [
    ("data/raw", ".", "data/raw"),
    ("data/raw", "data", "raw"),
    ("data", "data", "."),
    ("data2/raw", "data", None),  # a sibling that shares a prefix is not below it
    ("dat", "data", None),
    ("src/pkg", "data", None),
]


@pytest.mark.parametrize(("path", "source", "expected"), RELATIVE)
def test_relative_to_source(path: str, source: str, expected: str | None) -> None:
    assert relative_to_source(path, source) == expected


SEGMENT = st.text(alphabet="abcxyz-_", min_size=1, max_size=6)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(SEGMENT, min_size=1, max_size=3), st.lists(SEGMENT, max_size=3), SEGMENT)
def test_a_path_lands_below_each_mount_that_holds_it(source: list[str], rest: list[str], suffix: str) -> None:
    src = "/".join(source)
    path = "/".join([*source, *rest])
    environment = env(mounts=(SourceMount(), SourceMount(source=src, target="/src")))
    places = container_paths_of(environment, path)
    assert places == list(
        dict.fromkeys([posixpath.join(WORK, path), posixpath.normpath(posixpath.join("/src", *rest))])
    )
    assert container_path_of(environment, path) == places[0]
    assert relative_to_source(src + suffix, src) is None  # `a` does not hold `ab`


def test_each_data_entry_has_one_target() -> None:
    environment = env(
        mounts=(SourceMount(source="notebooks", target="/nb"),),
        data=(
            DataMount(path="data/a", target="/mnt/a"),  # its own target
            DataMount(path="notebooks/data"),  # its place under the source mount
            DataMount(path="data/b"),  # under no mount: ~/data/PATH
        ),
    )
    assert data_mount_targets(environment) == ["/mnt/a", "/nb/data", f"{USER_HOME}/data/data/b"]


def test_the_data_targets_of_environments_are_their_repo_paths_once_in_order() -> None:
    one = env("one", data=(DataMount(path="data/z"), DataMount(path="data/a")))
    two = env("two", data=(DataMount(path="data/a", target="/x"), DataMount(path="data/m")))
    assert data_targets([one, two]) == ["data/a", "data/m", "data/z"]
    assert data_targets([]) == []


def test_import_paths_need_every_source_directory_mounted() -> None:
    only_src = env(mounts=(SourceMount(source="src", target="/src"),))
    assert import_paths(only_src, ["src"]) == ["/src"]
    assert import_paths(only_src, ["src", "lib"]) is None
    assert import_paths(env(), ["src", "."]) == [f"{WORK}/src", WORK]


def test_the_token_file_is_in_nbenvs_state() -> None:
    assert token_file("demo") == ".nbenv/run/demo/jupyter_token"


@pytest.mark.parametrize("module", ["plan.py", "image_plan.py"])
def test_the_plan_modules_stay_pure(module: str) -> None:
    """The planning layer imports no loader, engine, filesystem writer or process runner."""
    tree = ast.parse((REPO / "nbenv" / module).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    forbidden = {"nbenv.spec.load", "nbenv.build", "nbenv.generate", "nbenv.fs", "nbenv.project", "os", "subprocess"}
    assert not imported & forbidden
    assert not any(name and name.startswith("nbenv.adapters") for name in imported)
