"""Jupyter is always there (issue 15, item 5): nbenv's own pinned server when the groups install no
jupyterlab, nbenv's pinned ipykernel set when they install no ipykernel, the project's env as the kernel."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from nbenv.generate import render
from nbenv.lock import canonical, read_lock
from nbenv.plan import BuildPlan
from nbenv.project import load_lock, plan_for
from nbenv.render.dockerfile import PAGE_CONFIG, render_dockerfile
from nbenv.running.headless import driver_python
from nbenv.server_env import (
    HUB_GROUP,
    HUB_PINS,
    KERNEL_GROUP,
    KERNEL_PINS,
    SERVER_GROUP,
    SERVER_PINS,
    SERVER_VENV,
    SINGLEUSER_GROUP,
    SINGLEUSER_PINS,
    parse,
    pins_text,
    shipped,
    shipped_texts,
)
from nbenv.spec.load import Loader
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli
from tests.unit.test_generated_files_lint import HADOLINT_CONFIG, _tool

FIXTURE = REPO / "tests" / "fixtures" / "server-env"
GOLDEN = REPO / "tests" / "golden" / "server-env"
# The fixture project's environments: its groups hold no Jupyter at all (`lib`), or only ipykernel.
FIXTURE_SPECS = {
    "plain": '"Groups without any Jupyter"\ngroups = ["lib"]',
    "kernel": '"Groups with ipykernel only"\ngroups = ["lib", "kernel"]',
    "kid": '"A child of plain"\nextends = "plain"\ngroups = ["kernel"]',
}


def spec(name: str, body: str) -> str:
    return f'spec_version = 1\nname = "{name}"\ndescription = {body}\nimportable = true\n'


@pytest.fixture
def fixture_project(tmp_path: Path) -> Path:
    """The fixture project (a real Poetry 2 lock, no Jupyter server in any group) with three environments."""
    root = tmp_path / "tinyproj"
    root.mkdir()
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(FIXTURE / name, root / name)
    (root / "environments").mkdir()
    for name, body in FIXTURE_SPECS.items():
        (root / f"environments/{name}.toml").write_text(spec(name, body))
    result = run_cli("generate", cwd=root)
    assert result.code == 0, result.err
    return root


def plans(root: Path, name: str, groups: list[str] | None = None) -> tuple[BuildPlan, dict[str, str]]:
    ws = Workspace.discover(root)
    plan = plan_for(ws, Loader(ws), load_lock(ws), name, groups)
    files = {path.relative_to(ws.root / plan.out_dir).as_posix(): text for path, text in render(ws, plan).items()}
    return plan, files


# --- the shipped pins ---------------------------------------------------------------------------


SHIPPED = [(SERVER_GROUP, SERVER_PINS), (KERNEL_GROUP, KERNEL_PINS), (HUB_GROUP, HUB_PINS)]
SHIPPED.append((SINGLEUSER_GROUP, SINGLEUSER_PINS))


@pytest.mark.parametrize(("group", "filename"), SHIPPED)
def test_the_shipped_pins_are_nbenvs_own_lock(group: str, filename: str) -> None:
    """nbenv/render/*.txt == what nbenv's lock code makes of its poetry.lock (refresh: scripts/server-pins)."""
    lock = read_lock(REPO / "poetry.lock", tomllib.loads((REPO / "pyproject.toml").read_text()))
    data = tomllib.loads((REPO / "poetry.lock").read_text())
    assert shipped(filename) == shipped_texts(lock, data)[filename], "run scripts/server-pins"
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["poetry"]["group"]
    assert groups[group]["optional"] is True, "nbenv's pins are never installed in its own venv"
    # Every shipped pin is the group's own pin, byte for byte.
    assert set(parse(shipped(filename))) <= set(parse(pins_text(lock, group)))


def test_the_server_set_leaves_out_only_what_only_ipykernel_needs() -> None:
    lock = read_lock(REPO / "poetry.lock", tomllib.loads((REPO / "pyproject.toml").read_text()))
    group = {canonical(p.name) for p in lock.pins([SERVER_GROUP])}
    server = {canonical(r.name) for r in parse(shipped(SERVER_PINS))}
    kernel = {canonical(r.name) for r in parse(shipped(KERNEL_PINS))}
    assert server < group and "ipykernel" not in server
    assert group - server <= kernel, "only packages of ipykernel's closure are left out"
    assert {"jedi", "debugpy", "ipython"} <= group - server
    assert {"tornado", "pyzmq", "jupyter-client", "traitlets"} <= server, "shared with the server: kept"


def test_the_server_set_runs_jupyterlab_and_nbenv_runs_driver() -> None:
    server = {canonical(r.name) for r in parse(shipped(SERVER_PINS))}
    kernel = {canonical(r.name) for r in parse(shipped(KERNEL_PINS))}
    assert {"jupyterlab", "jupyter-server", "nbclient", "nbformat", "jupyter-client"} <= server
    assert "ipykernel" in kernel and "jupyterlab" not in kernel and "jupyter-server" not in kernel
    # The lock covers every Python nbenv supports (requires-python): one file for bookworm and trixie.
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11,<3.14"


@pytest.mark.security
@pytest.mark.parametrize("filename", [filename for _, filename in SHIPPED])
def test_every_shipped_pin_is_exact_and_hashed(filename: str) -> None:
    requirements = parse(shipped(filename))
    assert requirements
    for requirement in requirements:
        head = requirement.text.splitlines()[0]
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+( ; [ -~]+)? \\", head), head
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", requirement.text), requirement.name


def test_the_shipped_pins_are_package_data() -> None:
    """Poetry packs what git tracks under nbenv/ (packages = [{include = "nbenv"}]): nothing ignores them."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["poetry"]
    assert pyproject["packages"] == [{"include": "nbenv"}] and "exclude" not in pyproject
    for _, filename in SHIPPED:
        ignored = subprocess.run(["git", "check-ignore", "-q", f"nbenv/render/{filename}"], cwd=REPO)
        assert ignored.returncode == 1, f"{filename} is git-ignored, so it would be left out of the wheel"


# --- when: a matrix over nbenv's own groups ------------------------------------------------------

GROUPS = ["main", "dev", "models", "nbenv-builder", "nbenv-kernel", "nbenv-server", "notebook"]
COMBINATIONS = [list(c) for size in (1, 2) for c in itertools.combinations(GROUPS, size)]


@pytest.mark.parametrize("groups", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_the_server_and_the_kernel_set_come_exactly_when_the_groups_lack_them(
    workspace: Path, groups: list[str]
) -> None:
    """Every root environment gets a JupyterLab: its own jupyterlab when a group pins one (the Dockerfile as
    before), else nbenv's in /opt/nbenv/server; ipykernel from nbenv only when no group has it, and then
    only the packages the groups do not install (their pins win)."""
    plan, files = plans(workspace, "base", groups)
    lock = load_lock(Workspace.discover(workspace))
    own_lab, own_kernel = lock.has("jupyterlab", groups), lock.has("ipykernel", groups)
    dockerfile = files["Dockerfile"]
    assert plan.nbenv_server is not own_lab
    assert (plan.server_layer is not None) is not own_lab
    assert ("nbenv/jupyter-server.txt" in files) is not own_lab
    assert ("FROM tools AS server" in dockerfile) is not own_lab
    assert (SERVER_VENV in dockerfile) is not own_lab
    assert ("ENV JUPYTER_PATH=/opt/venv/share/jupyter" in dockerfile) is not own_lab
    command = json.loads(dockerfile.split("\nCMD ", 1)[1].split("\n", 1)[0])
    assert command[:2] == ([f"{SERVER_VENV}/bin/jupyter-lab", "--no-browser"] if not own_lab else ["jupyter", "lab"])
    assert "--KernelSpecManager.ensure_native_kernel=False" in command
    assert driver_python(plan) == (f"{SERVER_VENV}/bin/python" if not own_lab else "python")
    installed = {canonical(p.name) for p in lock.pins(groups)}
    nbenv_kernel = {canonical(r.name) for r in parse(shipped(KERNEL_PINS))}
    if own_kernel:
        assert plan.kernel_layer is None and "nbenv/ipykernel.txt" not in files
    else:
        assert plan.kernel_layer is not None
        added = {canonical(r.name) for r in parse(files["nbenv/ipykernel.txt"])}
        assert added == nbenv_kernel - installed, "only what the groups lack: their pins win"
        # After the groups' own steps, into the kernel env (/opt/venv), hash-checked.
        assert dockerfile.index("requirements/") < dockerfile.index("COPY nbenv/ipykernel.txt") or not plan.layers
        assert (
            "--python /opt/venv/bin/python --no-deps --require-hashes \\\n        -r /tmp/nbenv/nbenv/ipykernel.txt"
            in (dockerfile)
        )


def test_a_project_that_pins_jupyterlab_keeps_it_and_its_dockerfile(workspace: Path) -> None:
    """The demo (notebook group: jupyterlab): byte-identical to the committed files, no trace of nbenv's server."""
    result = run_cli("generate", cwd=workspace)
    assert result.code == 0, result.err
    for name in ("base", "traffic-analysis"):
        committed = REPO / "docker" / name
        for path in committed.rglob("*"):
            if path.is_file():
                rel = path.relative_to(committed)
                assert (workspace / "docker" / name / rel).read_text() == path.read_text(), f"{name}/{rel}"
        assert SERVER_VENV not in (workspace / "docker" / name / "Dockerfile").read_text()
        assert not (workspace / "docker" / name / "nbenv").exists()


# --- where: the server stage, chains, the fixture project ----------------------------------------


@pytest.mark.security
def test_the_server_is_hash_checked_in_its_own_venv_and_offers_no_kernel_of_its_own(fixture_project: Path) -> None:
    text = (fixture_project / "docker/plain/Dockerfile").read_text()
    server = text.split("FROM tools AS server\n", 1)[1].split("\nFROM ", 1)[0]
    assert f"python3 -m venv --without-pip {SERVER_VENV}" in server
    assert (
        f"uv pip install --python {SERVER_VENV}/bin/python --no-deps --require-hashes \\\n"
        "        -r /tmp/nbenv/nbenv/jupyter-server.txt" in server
    )
    assert f"rm -rf {SERVER_VENV}/share/jupyter/kernels" in server, "ipykernel's python3 spec would be offered"
    # The labconfig register.py writes into the kernel env reaches the server (announcements off).
    assert f"'{PAGE_CONFIG}' > {SERVER_VENV}/etc/jupyter/labconfig/page_config.json" in server
    register = (REPO / "nbenv/inimage/register.py").read_text()
    assert '"@jupyterlab/apputils-extension:announcements": True' in register and "disabledExtensions" in register
    assert json.loads(PAGE_CONFIG) == {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    final = text.rsplit("\nFROM ${BASE_IMAGE}\n", 1)[1]
    assert f"COPY --from=server {SERVER_VENV} {SERVER_VENV}" in final
    # The kernel is the project's env; the server's commands come after the environment's on PATH.
    assert f"ENV PATH=/opt/venv/bin:$PATH:{SERVER_VENV}/bin " in final
    assert '["/opt/venv/bin/python", "/usr/local/lib/nbenv/register.py", "plain"' in final
    # Security settings as for any image: non-root user, token from a file, no token on the command line.
    assert "USER 1000:100" in final and "JUPYTER_TOKEN_FILE=/run/secrets/jupyter_token" in final
    assert "IdentityProvider.token" not in final


def test_a_child_reuses_its_parents_server_and_kernel_set(fixture_project: Path) -> None:
    """The union of groups only grows along a chain: the root installs nbenv's sets, a child only runs them."""
    kid, files = plans(fixture_project, "kid")
    assert kid.nbenv_server and kid.server_layer is None and kid.kernel_layer is None
    assert not any(name.startswith("nbenv/") for name in files)
    text = files["Dockerfile"]
    assert "AS server" not in text and "COPY --from=server" not in text and "JUPYTER_PATH" not in text
    assert f'CMD ["{SERVER_VENV}/bin/jupyter-lab"' in text


def test_a_child_that_adds_jupyterlab_runs_its_own(workspace: Path) -> None:
    """A root without Jupyter (nbenv's server), a child whose group pins jupyterlab: the child's is used."""
    (workspace / "environments/base.toml").write_text(spec("base", '"no jupyter"\ngroups = ["models"]'))
    (workspace / "environments/traffic-analysis.toml").write_text(
        spec("traffic-analysis", '"adds jupyterlab"\nextends = "base"\ngroups = ["notebook"]')
    )
    base, _ = plans(workspace, "base")
    child, files = plans(workspace, "traffic-analysis")
    assert base.nbenv_server and base.server_layer and base.kernel_layer
    assert not child.nbenv_server and driver_python(child) == "python"
    assert 'CMD ["jupyter", "lab"' in files["Dockerfile"]


def test_nothing_but_the_interface_notebook_needs_jupyter_in_the_groups(fixture_project: Path) -> None:
    path = fixture_project / "environments/plain.toml"
    path.write_text(path.read_text() + '\n[jupyter]\ninterface = "notebook"\n')
    result = run_cli("validate", cwd=fixture_project)
    assert result.code == 3
    assert (
        "environments/plain.toml:4: groups: the groups lib install no notebook, which Jupyter "
        "(interface = 'notebook') needs; nbenv supplies only JupyterLab"
    ) in result.err_lines


@pytest.mark.parametrize("name", ["plain", "kernel"])
def test_golden_dockerfiles_of_a_project_without_jupyterlab(fixture_project: Path, name: str) -> None:
    """No Jupyter at all (plain: server + ipykernel set), ipykernel only (kernel: server only). Refresh with
    NBENV_UPDATE_GOLDEN=1 after a deliberate change."""
    actual = (fixture_project / f"docker/{name}/Dockerfile").read_text()
    golden = GOLDEN / name / "Dockerfile"
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert actual == golden.read_text()
    assert ("COPY nbenv/ipykernel.txt" in actual) == (name == "plain")


@pytest.mark.security
def test_hadolint_has_no_findings_with_nbenvs_server(fixture_project: Path, tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    for name in FIXTURE_SPECS:
        dockerfile = fixture_project / f"docker/{name}/Dockerfile"
        result = subprocess.run(
            [_tool("hadolint"), "--no-color", "--config", str(config), "-f", "json", str(dockerfile)],
            capture_output=True,
            text=True,
        )
        assert json.loads(result.stdout or "[]") == [], name
        assert result.returncode == 0


def test_rendering_is_pure_given_the_plan(fixture_project: Path) -> None:
    plan, files = plans(fixture_project, "plain")
    assert render_dockerfile(plan) == files["Dockerfile"]
    assert files["nbenv/jupyter-server.txt"] == shipped(SERVER_PINS)
