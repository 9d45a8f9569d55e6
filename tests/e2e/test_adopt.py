"""Adopting nbenv in an existing project, as a new user does, on the real engine (issue 15).

Three small, realistic projects (tests/e2e/adopt_projects.py; their real Poetry locks are committed
under tests/fixtures/projects/): a lock 2.1 project with `[tool.poetry.group.*]` groups, a PEP 735
project that requires Python >= 3.12 and has no Jupyter at all, and a project whose only group holds
ipykernel. Each is written into a temporary git + DVC repository (data pushed to a local-directory
remote, then removed from the workspace and the cache, as in a fresh clone), and then taken from
nothing to an executed notebook with the real CLI:

    nbenv new -> validate -> generate (+ the user commits) -> up -> Jupyter answers -> nbenv run
    -> git status stays clean -> nbenv image push (local registry) -> nbenv down

Every step is timed; the table goes to test-artifacts/adopt/NAME.md (step, command, seconds, result),
also when a step fails. Images use a per-project prefix (the only nbenv setting the test adds, for
isolation) and are removed at the end; the base image is nbenv's default, as a new user gets it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import nbenv as nbenv_package
from tests.conftest import REPO
from tests.e2e.adopt_projects import COMMON_HAND_STEPS, FIXTURES, PROJECTS, Project, notebook_json
from tests.e2e.conftest import GIT_ENV, PREFIX, docker, free_port, git, nbenv, project, remove_images
from tests.e2e.conftest import jupyter_api as api_get

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts" / "adopt"
NBENV_ROOT = Path(nbenv_package.__file__).resolve().parents[1]  # the nbenv the CLI subprocess runs
TOOLS = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


class StepFailed(AssertionError):
    pass


@dataclass
class Step:
    step: str
    command: str
    seconds: float
    result: str


@dataclass
class Journal:
    """The steps of one adoption, in order, with their times; written as a markdown table."""

    project: Project
    base: str = ""
    steps: list[Step] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # step -> what the command printed on stderr

    def run(
        self,
        step: str,
        argv: list[str],
        root: Path,
        *,
        check: Callable[[subprocess.CompletedProcess[str]], str | None] | None = None,
        hard: bool = True,
        timeout: float = 1800,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` (nbenv ... or any tool) in `root`, time it, record the outcome.

        A failure of a `hard` step ends the adoption (nothing after it can work); a soft one is recorded
        and the test fails at the end, after the later steps have been tried too."""
        start = time.monotonic()
        if argv[0] == "nbenv":
            result = nbenv(*argv[1:], cwd=root, timeout=timeout)
        else:
            result = subprocess.run(
                argv, cwd=root, capture_output=True, text=True, timeout=timeout, env={**os.environ, **GIT_ENV, **TOOLS}
            )
        seconds = time.monotonic() - start
        self.logs[step] = result.stderr
        problem = f"exit {result.returncode}: {last_lines(result.stderr)}" if result.returncode != 0 else None
        if problem is None and check is not None:
            problem = check(result)
        self.record(step, shlex.join(argv), seconds, problem, hard=hard)
        return result

    def check(self, step: str, command: str, probe: Callable[[], str | None], *, hard: bool = True) -> None:
        """A check that is not a command (an HTTP request, a file's content), timed the same way."""
        start = time.monotonic()
        try:
            problem = probe()
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        self.record(step, command, time.monotonic() - start, problem, hard=hard)

    def hand(self, step: str, what: str, action: Callable[[], None]) -> None:
        """A step the user does by hand (an edit, a commit): timed, marked as such."""
        start = time.monotonic()
        action()
        self.record(f"{step} (by hand)", what, time.monotonic() - start, None)

    def record(self, step: str, command: str, seconds: float, problem: str | None, *, hard: bool = True) -> None:
        self.steps.append(Step(step, command, seconds, "ok" if problem is None else f"FAILED: {problem}"))
        if problem is not None:
            self.failures.append(f"{step}: {problem}")
            if hard:
                raise StepFailed(f"{self.project.fixture}: {step} failed: {problem}")

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ").strip()

        p = self.project
        lines = [
            f"# Adopting nbenv: `{p.fixture}` (environment `{p.env}`)",
            "",
            f"Lock: tests/fixtures/projects/{p.fixture}/poetry.lock; groups: `{p.groups}`.",
            "",
            "| step | command | seconds | result |",
            "|---|---|---:|---|",
            *(f"| {cell(s.step)} | `{cell(s.command)}` | {s.seconds:.1f} | {cell(s.result)} |" for s in self.steps),
            "",
            f"Total: {sum(s.seconds for s in self.steps):.1f} s. Default bookworm base: {self.base}.",
            "",
            "Done by hand: " + "; ".join((*COMMON_HAND_STEPS, *p.hand_steps)) + ".",
            "",
        ]
        for step, text in self.logs.items():
            if text.strip():
                every = text.strip().splitlines()
                shown = every if len(every) <= 80 else [*every[:20], f"... ({len(every) - 80} lines)", *every[-60:]]
                lines += [f"<details><summary>{step}: stderr</summary>", "", "```", *shown, "```", "</details>", ""]
        return "\n".join(lines)


def last_lines(text: str, n: int = 2) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-n:]) if lines else "(no output)"


def write_project(root: Path, p: Project) -> None:
    """The user's repository before nbenv: pyproject + lock + package + notebook + data, in git and DVC."""
    root.mkdir(parents=True)
    for name in ("pyproject.toml", "poetry.lock"):
        shutil.copy2(FIXTURES / p.fixture / name, root / name)
    # The only nbenv setting the test adds: its own image prefix, so that everything it builds can be found
    # and removed. The lock's content-hash does not cover [tool.nbenv].
    with (root / "pyproject.toml").open("a") as f:
        f.write(f'\n[tool.nbenv]\nimage_prefix = "{prefix_of(p)}"\n')
    for rel, text in p.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / p.notebook).parent.mkdir(parents=True, exist_ok=True)
    (root / p.notebook).write_text(notebook_json(p.cells))
    (root / "data" / "raw").mkdir(parents=True)
    for name, text in p.data.items():
        (root / "data" / "raw" / name).write_text(text)


def prefix_of(p: Project) -> str:
    return f"{PREFIX}-{p.env}"


def init_repository(root: Path) -> None:
    """git init + commit, dvc init/add/remote/push + commit, then drop the data and DVC's cache: a clone."""
    remote = root.parent / "dvc-remote"
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A", "--", ".", ":!data"],  # the data never was in git
        ["git", "commit", "-q", "-m", "the project before nbenv"],
        ["dvc", "init", "-q"],
        ["dvc", "add", "-q", "data/raw"],
        ["dvc", "remote", "add", "-d", "storage", str(remote)],
        ["dvc", "push", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "data under DVC, pushed to the team's remote"],
    ):
        result = subprocess.run(
            command, cwd=root, capture_output=True, text=True, env={**os.environ, **GIT_ENV, **TOOLS}
        )
        assert result.returncode == 0, f"{command}: {result.stdout[-1000:]} {result.stderr[-2000:]}"
    shutil.rmtree(root / "data" / "raw")
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
    assert git("status", "--porcelain", cwd=root) == ""


def commit(root: Path, message: str) -> None:
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", message, cwd=root)


def give_to_container_user(root: Path) -> None:
    """The container runs as UID 1000 (as in tests/e2e/conftest.py): the tests run as root."""
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            if ".git" not in path.relative_to(root).parts:
                os.chown(path, 1000, 100)


def printed(notebook: Path) -> str:
    """Everything the executed notebook's cells printed (stdout streams), in order."""
    nb = json.loads(notebook.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    return "".join(
        "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if o["output_type"] == "stream" and o.get("name") == "stdout"
    )


def remove_containers(p: Project) -> None:
    """Whatever `up` (a compose project) or `run` (a container labelled with it) of this environment left."""
    name = project(p.env, prefix_of(p))
    for label in (f"com.docker.compose.project={name}", f"nbenv.project={name}"):
        ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
        if ids:
            docker("rm", "--force", *ids, check=False)
    networks = docker("network", "ls", "-q", "--filter", f"label=com.docker.compose.project={name}", check=False)
    if ids := networks.stdout.split():
        docker("network", "rm", *ids, check=False)


DEFAULT_BASE = "nbenv/debian-python:bookworm"  # what a project without [tool.nbenv] builds FROM


@pytest.fixture(scope="module")
def default_base(request: pytest.FixtureRequest, engine: None) -> Iterator[str]:
    """nbenv's default base, as a new user's first `up` finds it. When the engine lacks it (a fresh CI
    engine), the session's own bookworm base (the same `nbenv image base` build) is tagged so, rather than
    built a second time, and the tag is removed at the end: `up` then times the project's image only.
    A base `up` builds by itself for another suite (trixie, for a project that needs Python >= 3.12) is
    nbenv's shared default tag, which other sessions may be using: it stays, as it would for a user."""
    if docker("image", "inspect", DEFAULT_BASE, check=False).returncode == 0:
        yield f"{DEFAULT_BASE} was already in the engine"
        return
    session_base = request.getfixturevalue("base_image")
    docker("tag", session_base, DEFAULT_BASE)
    try:
        yield f"{DEFAULT_BASE} tagged from this session's base {session_base} (built once per session)"
    finally:
        docker("rmi", DEFAULT_BASE, check=False)


@pytest.fixture
def adoption_root(tmp_path_factory: pytest.TempPathFactory, engine: None) -> Path:
    return tmp_path_factory.mktemp("adopt") / "repo"


@pytest.mark.parametrize("p", PROJECTS, ids=[p.fixture for p in PROJECTS])
def test_a_new_user_adopts_nbenv(p: Project, adoption_root: Path, registry: str, default_base: str) -> None:
    root = adoption_root
    journal = Journal(p, base=default_base)
    port = free_port()
    try:
        start = time.monotonic()
        write_project(root, p)
        init_repository(root)
        journal.record(
            "the project: git + DVC, data pushed, then a fresh clone (setup)", "git/dvc", time.monotonic() - start, None
        )
        env = p.env
        journal.run(
            "nbenv new",
            ["nbenv", "new", env, "--groups", p.groups, "--description", p.description, "--data", "data/raw"],
            root,
        )
        journal.run("nbenv validate", ["nbenv", "validate"], root)
        journal.run("nbenv generate", ["nbenv", "generate"], root)
        journal.hand(
            "commit the spec and generated files",
            "git add -A && git commit",
            lambda: commit(root, f"nbenv environment {env}"),
        )
        give_to_container_user(root)
        journal.check("tree clean after generate", "git status --porcelain", lambda: porcelain(root), hard=False)

        up = journal.run(
            "nbenv up (build, pull data, start)", ["nbenv", "up", env, "--port", str(port)], root, timeout=2400
        )
        url = up.stdout.strip()
        token = url.rsplit("token=", 1)[-1]

        def jupyter_answers() -> str | None:
            status, _ = api_get(f"http://127.0.0.1:{port}/api/status", token)
            if status != 200:
                return f"/api/status with the token answered {status}"
            if (denied := api_get(f"http://127.0.0.1:{port}/api/status", None)[0]) != 403:
                return f"/api/status without the token answered {denied}, not 403"
            status, body = api_get(f"http://127.0.0.1:{port}/api/kernelspecs", token)
            if status != 200 or f'"{env}"' not in body:
                return f"/api/kernelspecs answered {status} without the kernel {env!r}: {body[:200]}"
            return None

        journal.check(
            "Jupyter answers /api with the token",
            f"GET /api/status, /api/kernelspecs on 127.0.0.1:{port}",
            jupyter_answers,
        )
        journal.check("tree clean while up", "git status --porcelain", lambda: porcelain(root), hard=False)

        out = root / p.notebook.replace(".ipynb", ".out.ipynb")

        def notebook_output() -> str | None:
            shown = printed(out)
            return None if shown == p.expected else f"printed {shown!r}, expected {p.expected!r}"

        journal.run("nbenv run", ["nbenv", "run", env, p.notebook], root, timeout=900)
        journal.check("the notebook printed the expected result", f"read {out.relative_to(root)}", notebook_output)
        journal.check("git status stays clean", "git status --porcelain", lambda: porcelain(root), hard=False)
        journal.run("nbenv image push", ["nbenv", "image", "push", env, "--registry", registry], root, hard=False)
        journal.run("nbenv down", ["nbenv", "down", env], root, timeout=300)
        if journal.failures:
            raise StepFailed(f"{p.fixture}: " + "; ".join(journal.failures))
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{p.fixture}.md").write_text(journal.markdown())
        if root.exists():
            nbenv("down", p.env, cwd=root, timeout=300)
        remove_containers(p)
        remove_images(prefix_of(p))
        for image in docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split():
            if image.startswith(f"{registry}/{prefix_of(p)}/"):
                docker("rmi", "--force", image, check=False)


def porcelain(root: Path) -> str | None:
    status = git("status", "--porcelain", "--untracked-files=all", cwd=root)
    return None if status == "" else f"not clean: {' '.join(status.split())}"
