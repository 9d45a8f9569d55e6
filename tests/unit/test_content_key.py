"""The content key decides when an image is stale: exactly its inputs change it."""

from __future__ import annotations

from pathlib import Path

from nbenv.image_plan import content_key
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


def test_run_time_settings_never_make_the_image_stale(workspace: Path) -> None:
    """The host port, the bind address and the data mounts live in compose.yaml only: not a build input."""
    from nbenv.image_plan import build_inputs

    def key() -> str:
        out = workspace / "docker" / "traffic-analysis"
        rendered = {p: p.read_text() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".nbenv-manifest"}
        return content_key(from_image_id="sha256:parent", files=build_inputs(out, rendered))

    assert run_cli("generate", cwd=workspace).code == 0
    compose = (workspace / "docker/traffic-analysis/compose.yaml").read_text()
    before = key()
    spec = workspace / "environments/traffic-analysis.toml"
    text = spec.read_text()
    assert "port = 8888" in text
    spec.write_text(text.replace("port = 8888", 'port = 8899\nbind = "127.0.0.2"'))
    assert run_cli("generate", cwd=workspace).code == 0
    assert (workspace / "docker/traffic-analysis/compose.yaml").read_text() != compose, "the run-time file changed"
    assert key() == before, "but the image did not"
    spec.write_text(text.replace("importable = true", "importable = false"))
    assert run_cli("generate", cwd=workspace).code == 0
    assert key() != before, "what is in the image (here: the .pth that imports the project) still does"
