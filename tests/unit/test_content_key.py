"""The content key decides when an image is stale: exactly its inputs change it."""

from __future__ import annotations

from pathlib import Path

from nbenv.build import content_key
from tests.conftest import run_cli


def files(workspace: Path, name: str) -> dict[str, str]:
    out = workspace / "docker" / name
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def test_the_key_depends_on_the_base_image_and_every_generated_file() -> None:
    inputs = {"Dockerfile": "FROM x\n", "requirements/notebook.txt": "a==1\n"}
    key = content_key(from_image_id="sha256:aaa", files=inputs)
    assert key == content_key(from_image_id="sha256:aaa", files=dict(reversed(list(inputs.items()))))
    assert key != content_key(from_image_id="sha256:bbb", files=inputs)
    assert key != content_key(from_image_id="sha256:aaa", files={**inputs, "requirements/notebook.txt": "a==2\n"})


def test_notebooks_and_source_are_not_inputs_but_the_spec_and_lock_are(workspace: Path) -> None:
    assert run_cli("generate", cwd=workspace).code == 0
    before = content_key(from_image_id="sha256:base", files=files(workspace, "base"))
    (workspace / "notebooks").mkdir()
    (workspace / "notebooks/analysis.ipynb").write_text("{}")
    (workspace / "nbenv").mkdir()
    (workspace / "nbenv/new_module.py").write_text("X = 1\n")
    assert run_cli("generate", cwd=workspace).code == 0
    assert content_key(from_image_id="sha256:base", files=files(workspace, "base")) == before
    spec = workspace / "environments/base.toml"
    spec.write_text(spec.read_text().replace('groups = ["notebook"]', 'groups = ["notebook", "models"]'))
    assert run_cli("generate", cwd=workspace).code == 0
    assert content_key(from_image_id="sha256:base", files=files(workspace, "base")) != before
