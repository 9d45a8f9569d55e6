"""`[tool.nbenv.hub.kubernetes]` wires the Kubernetes renderer into `nbenv hub generate`: the table is typed by the
repo config model, checked before the engine is asked, and its files land under docker/hub/kubernetes/ with the
DVC pointer files the data needs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from nbenv.errors import SpecError
from nbenv.hub import kubernetes
from nbenv.hub.generate import kubernetes_files, kubernetes_settings, write_hub
from nbenv.hub.profiles import profile
from nbenv.project import Project
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli, snapshot


def _configure(workspace: Path, table: str) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.nbenv.hub.kubernetes]\n" + table)


def test_the_kubernetes_files_come_from_the_table_and_the_pointers(workspace: Path) -> None:
    _configure(workspace, 'dvc_remote = "s3://team-bucket/dvc"\nnamespace = "analytics"\n')
    shutil.copy2(REPO / "dvc.lock", workspace / "dvc.lock")  # the pipeline's hashes, which the pull needs
    ws = Workspace(workspace.resolve())
    project = Project(ws)
    profiles = [profile(project.plan(name), image=f"nbenv/{name}:ck-{'a' * 64}") for name in ("traffic-analysis",)]
    files = kubernetes_files(ws, profiles)
    assert files and all(path.startswith("docker/hub/kubernetes/") for path in files), sorted(files)
    settings = kubernetes_settings(ws)
    assert settings.namespace == "analytics" and settings.dvc_remote == "s3://team-bucket/dvc"
    expected = kubernetes.render(
        profiles,
        settings,
        out_dir="docker/hub/kubernetes",
        pointers={p: (workspace / p).read_text() for p in ("dvc.yaml", "dvc.lock")},
        image_prefix="nbenv",
    )
    assert files == expected
    values = yaml.safe_load(files["docker/hub/kubernetes/values.yaml"])
    [entry] = values["singleuser"]["profileList"]
    assert entry["kubespawner_override"]["image"] == f"nbenv/traffic-analysis:ck-{'a' * 64}"


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('namespace = "Not_A_Name"\n', "namespace"),
        ('data_size = "ten gigs"\n', "data_size"),
        ('s3_secret = "a b"\n', "s3_secret"),
    ],
)
def test_a_bad_kubernetes_setting_is_one_line_before_anything_is_built(
    workspace: Path, table: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(workspace, table)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # the setting is refused before an engine is asked
    before = snapshot(workspace)
    result = run_cli("hub", "generate", cwd=workspace)
    assert result.code == 3, result.err
    assert len(result.err_lines) <= 2, result.err
    assert result.err_lines[0].startswith(f"pyproject.toml: tool.nbenv.hub.kubernetes.{field}: "), result.err
    assert snapshot(workspace) == before


@pytest.mark.badinput
def test_an_unknown_kubernetes_key_is_one_line(workspace: Path) -> None:
    _configure(workspace, 'namespce = "x"\n')
    result = run_cli("hub", "generate", cwd=workspace)
    assert result.code == 3, result.err
    assert "namespce" in result.err_lines[0] and "pyproject.toml:" in result.err_lines[0], result.err


@pytest.mark.badinput
def test_data_without_its_pointer_file_is_one_line(workspace: Path) -> None:
    _configure(workspace, 'dvc_remote = "s3://team-bucket/dvc"\n')
    ws = Workspace(workspace.resolve())
    (workspace / "dvc.lock").unlink(missing_ok=True)
    profiles = [profile(Project(ws).plan("traffic-analysis"), image="nbenv/traffic-analysis:ck-x")]
    with pytest.raises(SpecError, match=r"^dvc\.lock: not in the repository, and the Kubernetes data pull needs it"):
        kubernetes_files(ws, profiles)


@pytest.mark.fault
@pytest.mark.parametrize("target", [None, "/home/jovyan/project", "/srv/analysis/src"])
def test_the_job_runs_where_nbenv_run_runs(workspace: Path, target: str | None, tmp_path: Path) -> None:
    """Issue 17: `nbenv hub generate` passes each environment's run directory, so its Job runs (and saves
    what the notebook writes, the executed notebook and status.json) where `nbenv run` does: the working
    directory of `nbenv run`'s container, the first source mount, with the data read-only at the same paths."""
    from nbenv.hub.generate import run_dirs
    from nbenv.identity import DEFAULT
    from nbenv.running.headless import _container

    _configure(workspace, 'dvc_remote = "s3://team-bucket/dvc"\n')
    shutil.copy2(REPO / "dvc.lock", workspace / "dvc.lock")
    if target is not None:
        spec = workspace / "environments" / "traffic-analysis.toml"
        spec.write_text(spec.read_text() + f'\n[[mounts]]\nsource = "."\ntarget = "{target}"\n')
    ws = Workspace(workspace.resolve())
    project = Project(ws)
    plan = project.plan("traffic-analysis")
    profiles = [profile(plan, image="nbenv/traffic-analysis:ck-x")]
    files = kubernetes_files(ws, profiles, run_dirs=run_dirs([plan]))
    _, job = yaml.safe_load_all(files["docker/hub/kubernetes/jobs/traffic-analysis.yaml"])
    [container] = job["spec"]["template"]["spec"]["containers"]
    local = _container(ws, plan, "nbenv/traffic-analysis:ck-x", tmp_path, DEFAULT)  # what `nbenv run` starts
    assert container["workingDir"] == local.workdir == (target or "/home/jovyan/work")
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] == "nbenv-out"}
    assert writable == {local.workdir} and local.workdir in {m.target for m in local.mounts if not m.read_only}
    data = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly") and "subPath" in m}
    assert data == {m.target for m in local.mounts if m.read_only and not m.tmpfs}
    import kubernetes_validate

    kubernetes_validate.validate(job, "1.33.0", strict=True)


@pytest.mark.fault
@pytest.mark.parametrize("generated_dir", ["docker", "build/generated", "out dir"])
def test_the_kubernetes_files_follow_the_generated_dir(workspace: Path, generated_dir: str) -> None:
    """`[tool.nbenv] generated_dir` moves docker/hub/kubernetes/ with the rest of the hub's files (it was
    hardcoded): written through the one writer under GENERATED_DIR/hub/ with its manifest, nothing under
    docker/, and the same texts as the default but the puller Dockerfile's comment (the puller tag is
    the same: it does not depend on where the files go)."""
    _configure(workspace, 'dvc_remote = "s3://team-bucket/dvc"\n')
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.nbenv]\n", f'[tool.nbenv]\ngenerated_dir = "{generated_dir}"\n', 1)
    )
    shutil.copy2(REPO / "dvc.lock", workspace / "dvc.lock")
    ws = Workspace(workspace.resolve())
    assert ws.config.generated_dir == generated_dir
    profiles = [profile(Project(ws).plan("traffic-analysis"), image=f"nbenv/traffic-analysis:ck-{'a' * 64}")]
    files = kubernetes_files(ws, profiles)
    out = f"{generated_dir}/hub/kubernetes"
    assert files and all(path.startswith(f"{out}/") for path in files), sorted(files)
    default = kubernetes.render(
        profiles,
        kubernetes_settings(ws),
        out_dir="docker/hub/kubernetes",
        pointers={p: (workspace / p).read_text() for p in ("dvc.yaml", "dvc.lock")},
    )
    moved = {path.replace(f"{out}/", "docker/hub/kubernetes/", 1): text for path, text in files.items()}
    assert moved.keys() == default.keys()
    for path, text in moved.items():
        if path.endswith("puller/Dockerfile"):
            assert text.splitlines()[0].endswith(f"the data-puller image of {out}/. Do not edit."), text
            assert text.splitlines()[1:] == default[path].splitlines()[1:]
        else:
            assert text == default[path], path
    hub = ws.root / generated_dir / "hub"
    rel = {(ws.root / p).relative_to(hub).as_posix(): t for p, t in files.items()}
    result = write_hub(ws, rel, check=False)
    assert f"{generated_dir}/hub/.nbenv-manifest" in result.changed
    assert f"{out}/values.yaml" in result.changed
    assert (hub / "kubernetes" / "values.yaml").read_text() == files[f"{out}/values.yaml"]
    assert "  kubernetes/puller/Dockerfile" in (hub / ".nbenv-manifest").read_text()
    assert write_hub(ws, rel, check=True).changed == []
    if generated_dir != "docker":
        assert not (workspace / "docker" / "hub").exists()
