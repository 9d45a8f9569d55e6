"""CLI commands end to end on a workspace copy (no Docker needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli, snapshot


def test_new_writes_a_valid_spec_that_generates(workspace: Path) -> None:
    result = run_cli(
        "new", "forecasting", "--groups", "notebook,models", "--description", "Demand models", cwd=workspace
    )
    assert result.code == 0, result.err
    spec = tomllib.loads((workspace / "environments/forecasting.toml").read_text())
    assert spec["name"] == "forecasting" and spec["groups"] == ["notebook", "models"] and spec["spec_version"] == 1
    assert run_cli("validate", cwd=workspace).code == 0
    generated = run_cli("generate", "forecasting", cwd=workspace)
    assert generated.code == 0, generated.err
    assert (workspace / "docker/forecasting/Dockerfile").is_file()


def test_new_with_extends_inherits_the_parent(workspace: Path) -> None:
    assert run_cli("new", "child", "--extends", "base", "--groups", "models", cwd=workspace).code == 0
    shown = run_cli("show", "child", "--json", cwd=workspace)
    data = json.loads(shown.out)
    assert data["groups"] == ["notebook", "models"] and data["lineage"] == ["base"]


def test_validate_lists_every_environment(workspace: Path) -> None:
    result = run_cli("validate", cwd=workspace)
    assert result.code == 0, result.err
    assert result.out.strip() == "2 environment(s) valid: base, traffic-analysis"


def test_validate_reports_every_broken_file_at_once(workspace: Path) -> None:
    (workspace / "environments/one.toml").write_text('spec_version = 1\nname = "one"\ngroups = ["nope"]\n')
    (workspace / "environments/two.toml").write_text(
        'spec_version = 1\nname = "two"\ngroups = ["notebook"]\nport = 1\n'
    )
    result = run_cli("validate", cwd=workspace)
    assert result.code == 3
    assert result.err_lines == [
        "environments/one.toml:3: groups[0]: unknown Poetry group 'nope'",
        "  hint: pyproject.toml defines: main, dev, models, nbenv-builder, nbenv-hub, nbenv-kernel, nbenv-server, "
        "nbenv-singleuser, notebook",
        "environments/two.toml:4: port: unknown key (allowed: spec_version, name, description, extends, base_image, "
        "groups, importable, data, mounts, system_packages, env, jupyter, resources, platforms)",
    ]


def test_list_shows_one_line_per_environment_and_marks_invalid_ones(workspace: Path) -> None:
    (workspace / "environments/broken.toml").write_text("spec_version = 1\nname = 'broken'\ngroups = 3\n")
    result = run_cli("list", cwd=workspace)
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("base ") and "groups=notebook" in lines[0] and "root" in lines[0]
    assert (
        lines[1].startswith("broken ") and "INVALID" in lines[1] and "groups: input should be a valid list" in lines[1]
    )
    assert lines[2].startswith("traffic-analysis ") and "extends base" in lines[2] and ":8888" in lines[2]


def test_show_resolves_extends_and_defaults(workspace: Path) -> None:
    result = run_cli("show", "traffic-analysis", "--json", cwd=workspace)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["groups"] == ["notebook", "models"]
    assert data["base_image"] == "nbenv/debian-python:bookworm"
    assert data["jupyter"] == {
        "port": 8888,
        "bind": "127.0.0.1",
        "interface": "lab",
        "default_url": "/lab",
        "kernel_display_name": "Python (traffic-analysis)",
        "token": True,
    }
    assert [d["path"] for d in data["data"]] == ["data/processed/pems", "data/processed/climate"]
    text = run_cli("show", "traffic-analysis", cwd=workspace)
    assert (
        text.code == 0
        and "extends base" in text.out
        and 'kernel_display_name = "Python (traffic-analysis)"' in text.out
    )


def test_repo_wide_settings_may_live_in_nbenv_toml(workspace: Path) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('image_prefix = "nbenv"', ""))
    (workspace / "nbenv.toml").write_text('image_prefix = "localhost:5000/team"\n')
    result = run_cli("generate", "base", cwd=workspace)
    assert result.code == 3 and "repo-wide settings are also in nbenv.toml" in result.err
    pyproject.write_text(
        "\n".join(
            line
            for line in pyproject.read_text().splitlines()
            if "[tool.nbenv]" not in line and "default_base_image" not in line
        )
    )
    assert run_cli("generate", "traffic-analysis", cwd=workspace).code == 0
    assert (
        "ARG PARENT_IMAGE=localhost:5000/team/base:latest"
        in (workspace / "docker/traffic-analysis/Dockerfile").read_text()
    )


def test_the_installed_command_exits_cleanly_without_traceback(workspace: Path) -> None:
    nbenv = shutil.which("nbenv", path=str(Path(sys.executable).parent))
    assert nbenv, "nbenv is installed into the test venv by scripts/bootstrap"
    spec = workspace / "environments/traffic-analysis.toml"
    spec.write_text(spec.read_text().replace("port = 8888", "port = 99999"))
    before = snapshot(workspace)
    result = subprocess.run([nbenv, "generate"], cwd=workspace, capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stderr.splitlines()[0].startswith("environments/traffic-analysis.toml:21: jupyter.port:")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert snapshot(workspace) == before
    usage = subprocess.run([nbenv, "generate", "--no-such-flag"], cwd=workspace, capture_output=True, text=True)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert subprocess.run([nbenv, "--version"], capture_output=True, text=True).stdout.startswith("nbenv ")


def test_shell_passes_every_argument_after_the_name_through(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nbenv shell NAME python -c ...`: the command's own options are not nbenv's."""
    from nbenv import api

    seen: list[list[str]] = []

    def shell(*, repo: Path | None = None, name: str, command: list[str]) -> int:
        seen.append([name, *command])
        return 0

    monkeypatch.setattr(api, "shell", shell)
    assert run_cli("shell", "base", "python", "-c", "print(1)", "--version", cwd=workspace).code == 0
    assert run_cli("shell", "base", cwd=workspace).code == 0
    assert seen == [["base", "python", "-c", "print(1)", "--version"], ["base"]]


def test_nbenv_state_ignores_itself_in_any_repository(workspace: Path) -> None:
    """The state dir (the Jupyter token files) is git-ignored by its own .gitignore, whatever the
    repository's ignore files say; a file the user put there is never overwritten."""
    (workspace / ".gitignore").unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    assert run_cli("generate", cwd=workspace).code == 0
    assert (workspace / ".nbenv/.gitignore").read_text().splitlines()[-1] == "*"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=workspace, capture_output=True, text=True).stdout
    assert ".nbenv" not in status, status
    (workspace / ".nbenv/.gitignore").write_text("mine\n")
    assert run_cli("generate", cwd=workspace).code == 0
    assert (workspace / ".nbenv/.gitignore").read_text() == "mine\n"


def test_a_dirty_tree_names_its_files(tmp_path: Path) -> None:
    from nbenv.adapters.git import git_state

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t.invalid", "PATH": "/usr/bin:/bin"}
    (tmp_path / "a.py").write_text("a\n")
    for command in (["git", "init", "-q"], ["git", "add", "a.py"], ["git", "commit", "-qm", "a"]):
        subprocess.run(command, cwd=tmp_path, check=True, env=env)
    assert git_state(tmp_path).changed == ()
    (tmp_path / "a.py").write_text("b\n")
    for index in range(7):
        (tmp_path / f"n{index}.txt").write_text("n")
    state = git_state(tmp_path)
    assert state.dirty and state.changed[0] == "a.py" and len(state.changed) == 8
    assert state.changes() == "a.py, n0.txt, n1.txt, n2.txt, n3.txt and 3 more"


def test_a_2_0_lock_is_upgraded_without_re_resolving(workspace: Path) -> None:
    """`poetry lock` (Poetry 2) upgrades the format and keeps every pin; `--regenerate` would re-resolve."""
    lock = workspace / "poetry.lock"
    lock.write_text(lock.read_text().replace('lock-version = "2.1"', 'lock-version = "2.0"'))
    result = run_cli("generate", cwd=workspace)
    assert result.code == 4
    assert result.err_lines[-1] == (
        "  hint: run `poetry lock` with Poetry 2.x: it upgrades the format and changes no pinned version"
    )


def test_schema_describes_every_spec_and_rejects_what_the_loader_rejects(workspace: Path) -> None:
    """`nbenv schema` (for editors): the demo specs and a fresh `nbenv new` spec are valid against it,
    an unknown key or a wrong type is not; `nbenv new` points at it, not at nbenv's own README."""
    import jsonschema

    result = run_cli("schema", cwd=workspace)
    assert result.code == 0, result.err
    schema = json.loads(result.out)
    assert schema["title"] == "nbenv environment spec"
    assert run_cli("new", "forecasting", "--groups", "models", cwd=workspace).code == 0
    written = (workspace / "environments/forecasting.toml").read_text()
    assert "`nbenv schema`" in written and "README" not in written
    for spec in sorted((workspace / "environments").glob("*.toml")):
        jsonschema.validate(tomllib.loads(spec.read_text()), schema)
    good = tomllib.loads((workspace / "environments/base.toml").read_text())
    for bad in ({**good, "colour": "red"}, {**good, "groups": "notebook"}, {**good, "jupyter": {"port": "x"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_first_environment_hint_names_this_projects_groups(workspace: Path) -> None:
    shutil.rmtree(workspace / "environments")
    (workspace / "environments").mkdir()
    result = run_cli("list", cwd=workspace)
    assert result.out.strip() == (
        "no environments (create one with `nbenv new NAME --groups GROUP[,GROUP...]` "
        "(this project's groups: main, dev, models, nbenv-builder, nbenv-hub, nbenv-kernel, nbenv-server, "
        "nbenv-singleuser, notebook))"
    )


def test_commands_act_on_the_default_environment_when_none_is_named(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As typed in the product's description: `nbenv up`, `nbenv data pull`,
    `nbenv image build --groups main,notebook,models` act on the one environment no other extends."""
    from nbenv.api import _data_targets_of
    from nbenv.errors import SpecError, UsageError
    from nbenv.spec.load import default_environment
    from nbenv.workspace import Workspace

    ws = Workspace(workspace)
    assert default_environment(ws) == "traffic-analysis"  # base is extended by it: the only leaf
    assert _data_targets_of(ws, [], False) == ["data/processed/climate", "data/processed/pems"]
    # `--groups` without a name reaches the engine (here: none) instead of "name it".
    monkeypatch.setenv("NBENV_DOCKER", "/nonexistent/docker")
    built = run_cli("image", "build", "--groups", "main,notebook,models", cwd=workspace)
    assert built.code == 6 and "docker command" in built.err_lines[0], built.err

    # A second leaf: no guess, one line listing the names; the setting decides.
    shutil.copy(workspace / "environments/traffic-analysis.toml", workspace / "environments/other.toml")
    other = workspace / "environments/other.toml"
    other.write_text(other.read_text().replace('name = "traffic-analysis"', 'name = "other"'))
    with pytest.raises(UsageError) as ambiguous:
        default_environment(Workspace(workspace))
    assert ambiguous.value.message == "name an environment: base, other, traffic-analysis"
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.nbenv]\n", '[tool.nbenv]\ndefault_environment = "other"\n')
    )
    assert default_environment(Workspace(workspace)) == "other"
    pyproject.write_text(pyproject.read_text().replace('default_environment = "other"', 'default_environment = "othr"'))
    with pytest.raises(SpecError) as unknown:
        default_environment(Workspace(workspace))
    assert "default_environment: no environment 'othr'" in unknown.value.message and "other" in unknown.value.message


def test_new_with_data_writes_the_tracked_paths_and_validates(workspace: Path) -> None:
    result = run_cli(
        "new",
        "adopted",
        "--groups",
        "notebook",
        "--data",
        "data/processed/pems",
        "--data",
        "data/raw/csv/climate",
        cwd=workspace,
    )
    assert result.code == 0, result.err
    assert "next: `nbenv up adopted`" in result.out
    spec = tomllib.loads((workspace / "environments/adopted.toml").read_text())
    assert spec["data"] == [{"path": "data/processed/pems"}, {"path": "data/raw/csv/climate"}]
    assert run_cli("validate", cwd=workspace).code == 0


def test_new_without_data_lists_what_dvc_tracks_as_examples(workspace: Path) -> None:
    assert run_cli("new", "plain", "--groups", "notebook", cwd=workspace).code == 0
    text = (workspace / "environments/plain.toml").read_text()
    assert "data/processed/example" not in text  # the demo tracks real outputs: they are the examples
    assert '# path = "data/processed/pems"' in text
    assert "# [[data]]" in text and "data" not in tomllib.loads(text)


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("notebooks", "'notebooks' is not tracked by DVC"),
        ("../outside", "points outside the repository"),
        ("/etc/passwd", "must be a path relative to the repository root"),
        ("data/\x1b[31mred", "--data:"),
    ],
)
def test_new_refuses_data_that_dvc_does_not_track(workspace: Path, value: str, expected: str) -> None:
    before = snapshot(workspace)
    result = run_cli("new", "bad", "--groups", "notebook", "--data", value, cwd=workspace)
    assert result.code == 2 and expected in result.err_lines[0], result.err
    assert len(result.err_lines) <= 2 and "Traceback" not in result.err
    assert snapshot(workspace) == before


def test_every_command_goes_through_the_api_and_help_loads_none_of_it() -> None:
    """The CLI only parses: it imports no module that does the work (headless, ci, ...) and calls
    `api.<function>` (typed for mypy); `nbenv --help` imports neither the API nor pydantic."""
    import ast

    import nbenv.cli

    tree = ast.parse(Path(nbenv.cli.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    eager = {"nbenv.running.headless", "nbenv.ci", "nbenv.running.lifecycle", "nbenv.build", "nbenv.datasync"}
    assert not eager & imported, imported
    probe = (
        "import sys, contextlib\nfrom nbenv.cli import main\n"
        "with contextlib.suppress(SystemExit): main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m in ('nbenv.api', 'pydantic')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
