"""The `nbenv` command: parse arguments, call one api function, print. Nothing else lives here."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.exceptions import TyperException

from nbenv import __version__
from nbenv.constants import AUTO_SUITES, DEFAULT_SUITE, NBENV_BASE_REPOSITORY, SUITE_PYTHON
from nbenv.errors import NbenvError, UsageError
from nbenv.lock import name_problem
from nbenv.ui import print_error, print_internal_error, warn

SUITES_HELP = ", ".join(f"{suite} (Python {SUITE_PYTHON[suite]})" for suite in AUTO_SUITES)

app = typer.Typer(
    name="nbenv",
    help="Declarative notebook environments: Poetry groups + DVC data -> Docker image -> Jupyter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, object] = {"repo": None, "verbose": False}

GroupsOption = Annotated[
    str | None,
    typer.Option("--groups", "-g", help="Comma-separated Poetry groups, overriding the spec's for this build."),
]


class _Lazy(ModuleType):
    """A module imported on its first attribute access, so `nbenv --help` does not load pydantic, the
    specs or the adapters. mypy sees the real module (below), so every call into the API is checked."""

    def __getattr__(self, attribute: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self.__name__), attribute)


if TYPE_CHECKING:
    from nbenv import api
else:
    api = _Lazy("nbenv.api")


def _repo() -> Path | None:
    repo = _state["repo"]
    return repo if isinstance(repo, Path) else None


def _split(value: str | None, *, option: str = "--groups") -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise NbenvError(f"{option}: {value!r} has an empty name", f"use a comma-separated list, e.g. {option} a,b")
    if option == "--groups":
        for item in items:
            if problem := name_problem(item, "group name"):
                raise UsageError(f"--groups: {problem}", "name Poetry groups of pyproject.toml, e.g. --groups a,b")
    return items


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nbenv {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    repo: Annotated[
        Path | None, typer.Option("--repo", "-C", help="Repository root (default: found from the cwd).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug output.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["repo"] = repo
    _state["verbose"] = verbose


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Environment name (becomes the image and kernel name).")],
    groups: Annotated[
        str | None, typer.Option("--groups", "-g", help="Comma-separated dependency groups the environment installs.")
    ] = None,
    extends: Annotated[str | None, typer.Option(help="Build FROM this environment's image.")] = None,
    description: Annotated[str, typer.Option(help="One line shown by `nbenv list`.")] = "",
    force: Annotated[bool, typer.Option(help="Replace an existing spec.")] = False,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="A DVC-tracked path to mount read-only (a .dvc output or dvc.yaml out); repeatable."
        ),
    ] = None,
) -> None:
    """Write environments/NAME.toml."""
    chosen = _split(groups) or []
    written = api.new(
        repo=_repo(),
        name=name,
        groups=chosen,
        extends=extends,
        description=description,
        force=force,
        data=data or [],
    )
    for note in written.notes:
        typer.echo(note, err=True)
    typer.echo(
        f"wrote {written.path}\n"
        f"next: `nbenv up {name}` (generates its Dockerfile and compose file, builds, starts Jupyter), "
        "then commit the spec and the generated files"
    )


@app.command()
def validate() -> None:
    """Check every environments/*.toml against the schema, pyproject.toml, poetry.lock and DVC."""
    environments = api.validate(repo=_repo())
    typer.echo(f"{len(environments)} environment(s) valid: {', '.join(e.name for e in environments)}")


@app.command("list")
def list_() -> None:
    """One line per environment."""
    rows = api.list_environments(repo=_repo())
    if not rows:
        typer.echo(f"no environments ({api.first_environment_hint(repo=_repo())})")
    for row in rows:
        if row.problem:
            typer.echo(f"{row.name:<24} INVALID  {row.problem}")
            continue
        parent = f"extends {row.extends}" if row.extends else "root"
        typer.echo(
            f"{row.name:<24} :{row.port:<6} {parent:<20} groups={','.join(row.groups)}  {row.description}".rstrip()
        )


@app.command()
def schema() -> None:
    """The JSON Schema of environments/NAME.toml: every key, its type and meaning (for editors)."""
    typer.echo(json.dumps(api.spec_schema(), indent=2, ensure_ascii=False))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Environment name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The resolved spec: extends applied, defaults filled in."""
    env = api.show(repo=_repo(), name=name)
    data = env.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    import tomlkit

    typer.echo(
        f"# {name}: resolved from {env.file}" + (f" (extends {' -> '.join(env.lineage)})" if env.lineage else "")
    )
    typer.echo(tomlkit.dumps(_tomlable(data)).rstrip())


def _tomlable(value: Any) -> Any:
    """TOML has no null: drop None values."""
    if isinstance(value, dict):
        return {k: _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_tomlable(v) for v in value]
    return value


@app.command()
def generate(
    names: Annotated[list[str] | None, typer.Argument(help="Environments (default: all).")] = None,
    groups: GroupsOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 5 if any generated file would change.")
    ] = False,
) -> None:
    """Write docker/NAME/{Dockerfile,compose.yaml,requirements/} from the specs and poetry.lock."""
    result = api.generate(repo=_repo(), names=names or [], groups=_split(groups), check=check)
    if check:
        typer.echo(f"up to date: {len(result.unchanged)} generated file(s)")
        return
    for path in result.changed:
        typer.echo(f"wrote   {path}")
    for path in result.stale:
        typer.echo(f"removed {path}")
    for path in result.kept:
        warn(f"{path}: no longer generated, left in place (edited, or written before nbenv kept a manifest)")
    if not result.changed and not result.stale:
        typer.echo(f"up to date: {len(result.unchanged)} generated file(s)")
    if groups is not None and result.changed:
        warn("--groups differs from the spec: these files are a local variant under .nbenv/ (not committed)")


image_app = typer.Typer(help="Images: build (parents first), status, inspect, push; base images.", no_args_is_help=True)
app.add_typer(image_app, name="image")


def _say(message: str) -> None:
    """Progress goes to stderr, so stdout carries only results (e.g. the URL)."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _live() -> bool:
    return sys.stderr.isatty()


@image_app.command("build")
def image_build(
    names: Annotated[list[str] | None, typer.Argument(help="Environments (default: the default one).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every environment, parents before children.")] = False,
    groups: GroupsOption = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild even if up to date, without cache.")] = False,
    cache_from: Annotated[
        list[str] | None,
        typer.Option(
            "--cache-from", help="buildx cache source, e.g. type=gha,scope=NAME (another platform's: NAME-ARCH)."
        ),
    ] = None,
    cache_to: Annotated[
        list[str] | None,
        typer.Option(
            "--cache-to", help="buildx cache export, e.g. type=gha,mode=max,scope=NAME (another platform's: NAME-ARCH)."
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(help="Build for this platform only (linux/amd64, linux/arm64); default: the spec's platforms."),
    ] = None,
) -> None:
    """Build environment images, parents first; skip those whose content key already exists."""
    if all_ and names:
        raise UsageError("--all builds every environment: give either names or --all", "drop one of them")
    built = api.image_build(
        repo=_repo(),
        names=names or [],
        all_envs=all_,
        groups=_split(groups),
        no_cache=no_cache,
        cache_from=cache_from or [],
        cache_to=cache_to or [],
        platform=platform,
        say=_say,
        live=_live(),
    )
    for image in built:
        where = f"\t{image.platform}" if image.platform else ""
        typer.echo(f"{image.name}\t{image.ref}\t{'built' if image.built else 'up to date'}{where}")


@image_app.command("status")
def image_status(
    names: Annotated[list[str] | None, typer.Argument(help="Environments (default: all).")] = None,
) -> None:
    """Which images are up to date and which a build would redo (and why). Builds and writes nothing."""
    for name, state in api.image_status(repo=_repo(), names=names or []):
        typer.echo(f"{name}\t{state}")


@image_app.command("inspect")
def image_inspect(
    name: Annotated[str, typer.Argument(help="Environment name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Labels, provenance and the whole lineage of an environment's image."""
    inspection = api.image_inspect(repo=_repo(), name=name)
    if as_json:
        typer.echo(json.dumps(inspection.as_json(), indent=2, sort_keys=True))
        return
    typer.echo("\n".join(inspection.lines()))


@image_app.command("push")
def image_push(
    name: Annotated[str, typer.Argument(help="Environment name.")],
    registry: Annotated[
        str | None, typer.Option(help="Registry host[:port][/path] (default: NBENV_REGISTRY, then the repo setting).")
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Push a dirty tree, under sha-<commit>-dirty tags only.")
    ] = False,
) -> None:
    """Push an image: sha-<commit> always, X.Y.Z/X.Y/latest from a release tag; never overwrite a tag."""
    result = api.image_push(repo=_repo(), name=name, registry=registry, allow_dirty=allow_dirty, say=_say, live=_live())
    for decision in (*result.decisions, *([result.hub] if result.hub else [])):
        typer.echo(f"{result.repository}:{decision.tag}\t{decision.action}")
    for platform, digest in result.platforms:
        typer.echo(f"{result.repository}@{digest}\t{platform}")
    if result.hub is not None:  # the hub layer's platforms and index (with `platforms`): tagged in a third column
        for platform, digest in result.hub_platforms:
            typer.echo(f"{result.repository}@{digest}\t{platform}\t{result.hub.tag}")
        if result.hub_digest:
            typer.echo(f"{result.repository}@{result.hub_digest}\t{result.hub.tag}")
    if result.digest:
        typer.echo(f"{result.repository}@{result.digest}")


@image_app.command("base")
def image_base(
    tag: Annotated[
        str | None,
        typer.Option(
            help=f"Tag of the base image (default {NBENV_BASE_REPOSITORY}:SUITE; a declared base brings its suite)."
        ),
    ] = None,
    suite: Annotated[str | None, typer.Option(help=f"Debian suite: {SUITES_HELP}; default {DEFAULT_SUITE}.")] = None,
    cuda: Annotated[
        bool, typer.Option("--cuda", help="Add Debian's CUDA runtime (non-free); default tag SUITE-cuda.")
    ] = False,
    platform: Annotated[
        str | None,
        typer.Option(
            help="linux/amd64 or linux/arm64 (default: the engine's); another is tagged TAG-ARCH, under QEMU."
        ),
    ] = None,
) -> None:
    """Build a base image from Debian packages (python3, venv, tini, user jovyan): no registry needed."""
    built, image_id = api.image_base(repo=_repo(), tag=tag, suite=suite, cuda=cuda, platform=platform, say=_say)
    typer.echo(f"{built}\t{image_id}")


# --- nbenv image preflight (issue 18: the wheel pre-flight; nbenv.wheel_preflight) ---
@image_app.command("preflight")
def image_preflight(
    name: Annotated[str | None, typer.Argument(help="Environment name (default: the default one).")] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Target platform, repeatable (default: linux/amd64 and linux/arm64)."),
    ] = None,
    python: Annotated[
        str | None, typer.Option(help="The image's Python X.Y (default: the base's, for a base nbenv makes).")
    ] = None,
    glibc: Annotated[
        str | None, typer.Option(help="The image's glibc X.Y (default: the base's Debian suite's).")
    ] = None,
) -> None:
    """List each selected package with no wheel for a target platform (it would compile); exit 11 if any."""
    from nbenv.errors import WheelsMissing

    report = api.image_preflight(repo=_repo(), name=name, platforms=platform or [], python=python, glibc=glibc)
    for item in report.compiles:
        typer.echo(item.line())
    if report.compiles:
        raise WheelsMissing(
            report.summary(),
            "expect a long (emulated) build, or pin versions with wheels for these platforms and run `poetry lock`",
        )
    typer.echo(report.summary())


# --- end of nbenv image preflight ---


MAX_SECONDS = 7 * 86400.0  # a week: any longer wait is a typo (1e400 would overflow the clock)


def _finite(value: float | None) -> float | None:
    """A time limit must be a number: `nan` passes click's range check, so it is refused here."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds")
    return value


DefaultEnv = Annotated[
    str | None, typer.Argument(help="Environment name (default: [tool.nbenv] default_environment, else the only leaf).")
]


@app.command()
def up(
    name: DefaultEnv = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Host port (default: the spec's).")] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=MAX_SECONDS, callback=_finite, help="Seconds to wait for Jupyter.")
    ] = 180.0,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="Do not pull the declared data first.")] = False,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="Start even if declared data is not in the workspace.")
    ] = False,
) -> None:
    """Build what is stale, pull the data, start the environment and print its Jupyter URL."""
    running = api.up(
        repo=_repo(),
        name=name,
        port=port,
        timeout=timeout,
        pull=not no_pull,
        allow_missing=allow_missing,
        say=_say,
        live=_live(),
    )
    typer.echo(running.url)


@app.command()
def devcontainer(
    name: DefaultEnv = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 5 if the devcontainer.json would change.")
    ] = False,
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Its initializeCommand: pull the data, build what is stale, write the token file; start nothing.",
        ),
    ] = False,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="With --prepare: do not pull the data.")] = False,
    allow_missing: Annotated[
        bool, typer.Option("--allow-missing", help="With --prepare: go on if declared data is missing.")
    ] = False,
) -> None:
    """Write .devcontainer/NAME/devcontainer.json: VS Code or the devcontainer CLI start the same container as `up`."""
    if prepare:
        if check:
            raise UsageError("--check and --prepare: give one of them", "`--check` compares, `--prepare` builds")
        image = api.devcontainer_prepare(
            repo=_repo(), name=name, pull=not no_pull, allow_missing=allow_missing, say=_say, live=_live()
        )
        _say(f"ready for the editor: {image}")
        return
    if no_pull or allow_missing:
        raise UsageError("--no-pull and --allow-missing go with --prepare", "add --prepare, or drop them")
    result = api.devcontainer(repo=_repo(), name=name, check=check)
    for path in result.changed if not check else []:
        typer.echo(f"wrote   {path}")
    if check or not result.changed:
        typer.echo(f"up to date: {len(result.unchanged)} generated file(s)")


@app.command()
def down(name: DefaultEnv = None) -> None:
    """Stop the environment: remove its containers and network (images and data stay)."""
    api.down(repo=_repo(), name=name, say=_say)


@app.command()
def ps() -> None:
    """The state of every environment's container."""
    rows = api.ps(repo=_repo())
    if not rows:
        typer.echo("no environment is running")
    for name, state in rows:
        typer.echo(f"{name:<24} {state.state:<10} {state.health or '-':<10} {state.image}")


@app.command()
def logs(
    name: DefaultEnv = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following.")] = False,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last N lines.")] = None,
) -> None:
    """The environment's Jupyter logs."""
    raise typer.Exit(api.logs(repo=_repo(), name=name, follow=follow, tail=tail))


# Everything after the name is the command, its options included (`nbenv shell NAME python -c ...`).
@app.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def shell(
    name: Annotated[str, typer.Argument(help="Environment name.")],
    command: Annotated[list[str] | None, typer.Argument(help="Command to run instead of bash.")] = None,
) -> None:
    """A shell (or COMMAND) inside the running environment, as the workspace's owner."""
    raise typer.Exit(api.shell(repo=_repo(), name=name, command=command or []))


@app.command("run")
def run_(
    name: Annotated[str, typer.Argument(help="Environment name.")],
    notebook: Annotated[Path, typer.Argument(help="The notebook (.ipynb) to execute.")],
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="NAME=VALUE for the cell tagged `parameters`; repeatable."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Executed notebook (default: NOTEBOOK.out.ipynb beside it).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1, max=MAX_SECONDS, callback=_finite, help="Seconds the whole run may take (default: no limit)."
        ),
    ] = None,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="Do not pull the declared data first.")] = False,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Use the environment's latest image as it is; never build.")
    ] = False,
) -> None:
    """Execute a notebook headless in the environment's image; print the executed notebook's path."""
    result = api.run(
        repo=_repo(),
        name=name,
        notebook=notebook,
        parameters=parameter or [],
        output=output,
        timeout=timeout,
        pull=not no_pull,
        build=not no_build,
        say=_say,
        live=_live(),
    )
    typer.echo(str(result.output))


data_app = typer.Typer(help="DVC-tracked data: pull, push, status; CSV -> Parquet compaction.", no_args_is_help=True)
app.add_typer(data_app, name="data")

EnvsArgument = Annotated[
    list[str] | None, typer.Argument(help="Environments whose declared data to use (default: the default one).")
]
AllOption = Annotated[bool, typer.Option("--all", help="Every environment's data.")]
JobsOption = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Parallel transfers (DVC's default).")]
RemoteOption = Annotated[str | None, typer.Option("--remote", "-r", help="DVC remote (default: DVC's default).")]


@data_app.command("pull")
def data_pull(
    names: EnvsArgument = None, all_envs: AllOption = False, jobs: JobsOption = None, remote: RemoteOption = None
) -> None:
    """Fetch (hash-verified) and check out exactly the data the environments declare."""
    summary = api.data_pull(repo=_repo(), names=names or [], all_envs=all_envs, jobs=jobs, remote=remote, say=_say)
    typer.echo(f"pulled {summary.line()}")


@data_app.command("push")
def data_push(
    names: EnvsArgument = None, all_envs: AllOption = False, jobs: JobsOption = None, remote: RemoteOption = None
) -> None:
    """Upload the environments' data to the DVC remote."""
    targets, pushed = api.data_push(repo=_repo(), names=names or [], all_envs=all_envs, jobs=jobs, remote=remote)
    typer.echo(f"pushed {pushed} object(s) of {len(targets)} target(s): {', '.join(targets)}")


@data_app.command("status")
def data_status(names: EnvsArgument = None, all_envs: AllOption = False, remote: RemoteOption = None) -> None:
    """Per target: is it in the workspace, and does the remote hold it?"""
    rows = api.data_status(repo=_repo(), names=names or [], all_envs=all_envs, remote=remote)
    typer.echo(f"{'target':<40} {'workspace':<10} remote")
    for row in rows:
        typer.echo(f"{row.target:<40} {row.workspace:<10} {row.remote}")


@data_app.command("compact")
def data_compact(
    source: Annotated[Path, typer.Argument(help="A CSV file (.csv, .csv.gz) or a directory of them.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory of Parquet files.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to keep (default: all).")] = None,
    partition_by: Annotated[
        str | None, typer.Option("--partition-by", help="Comma-separated columns: hive-style partitions.")
    ] = None,
    schema: Annotated[
        list[str] | None, typer.Option("--schema", help="COLUMN=TYPE override, repeatable (e.g. station=int32).")
    ] = None,
) -> None:
    """CSV -> Parquet (zstd): column selection, partitions, schema overrides; streaming and atomic."""
    with _progress_bar("compacting") as progress:
        result = api.data_compact(
            source=source,
            output=output,
            columns=_split(columns, option="--columns"),
            partition_by=_split(partition_by, option="--partition-by") or [],
            schema=schema or [],
            on_progress=progress,
        )
    ratio = result.input_bytes / max(result.output_bytes, 1)
    typer.echo(
        f"compacted {result.files_in} file(s), {result.rows} rows: {result.input_bytes / 1e6:.1f} MB -> "
        f"{result.output_bytes / 1e6:.1f} MB ({ratio:.1f}x smaller) in {result.seconds:.1f} s -> {output}"
    )


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A live bar on a terminal; elsewhere a line every 10%."""
    if not sys.stderr.isatty():
        last = [-10]

        def plain(done: int, total: int) -> None:
            percent = int(100 * done / total) if total else 100
            if percent >= last[0] + 10:
                last[0] = percent - percent % 10
                _say(f"{label}: {percent}% ({done / 1e6:.0f} of {total / 1e6:.0f} MB)")

        yield plain
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        f"[bold]{label}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), transient=True
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


ci_app = typer.Typer(help="CI workflows generated from the specs.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


@ci_app.command("github")
def ci_github(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Workflow file (default: .github/workflows/nbenv.yml)."),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 5 if the workflow would change.")] = False,
) -> None:
    """Write a GitHub Actions workflow: build every environment; push from the default branch and v* tags."""
    result = api.ci_github(repo=_repo(), output=output, check=check)
    typer.echo(f"{'wrote' if result.changed else 'up to date:'} {result.path}")


hub_app = typer.Typer(
    help="A JupyterHub for the team (DockerSpawner on one host, or SwarmSpawner on a swarm).", no_args_is_help=True
)
app.add_typer(hub_app, name="hub")


@hub_app.command("generate")
def hub_generate(
    check: Annotated[
        bool, typer.Option("--check", help="Build and write nothing; exit 5 if a file of docker/hub/ would change.")
    ] = False,
) -> None:
    """Build the offered environments (and their hub layers) when stale, then write docker/hub/."""
    result = api.hub_generate(repo=_repo(), check=check, say=_say, live=_live())
    for path in result.changed:
        typer.echo(f"wrote   {path}")
    for path in result.stale:
        typer.echo(f"removed {path}")
    for path in result.kept:
        warn(f"{path}: no longer generated, left in place (edited since nbenv wrote it)")
    if not result.changed and not result.stale:
        typer.echo(f"up to date: {len(result.unchanged)} generated file(s)")
    for item in result.profiles:
        typer.echo(f"profile {item.name}: {item.image}")


@hub_app.command("up")
def hub_up(
    bind: Annotated[
        str | None, typer.Option("--bind", help="Host address (default [tool.nbenv.hub] bind, 127.0.0.1; others warn).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Host port (default [tool.nbenv.hub] port).")
    ] = None,
    swarm: Annotated[
        bool,
        typer.Option(
            "--swarm", help="SwarmSpawner: each user's server a swarm service (this engine must be a swarm manager)."
        ),
    ] = False,
) -> None:
    """Generate and build what is stale, start JupyterHub and print its URL."""
    typer.echo(api.hub_up(repo=_repo(), bind=bind, port=port, swarm=swarm, say=_say, live=_live()))


@hub_app.command("down")
def hub_down() -> None:
    """Stop the hub and the users' servers (their work volumes stay)."""
    api.hub_down(repo=_repo(), say=_say)


@hub_app.command("status")
def hub_status() -> None:
    """The hub's state, URL and users' servers."""
    state = api.hub_status(repo=_repo())
    typer.echo(f"{state.hub}: {state.state or 'not running'}{f' {state.url}' if state.url else ''}")
    for name, server in state.servers:
        typer.echo(f"  {name}: {server}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one exit point for every error (README: "Exit codes")."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args or "--verbose" in args
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="nbenv", standalone_mode=False)
    except NbenvError as exc:
        print_error(exc, verbose=verbose)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except TyperException as exc:  # usage errors found by the parser: one line + a hint, like ours
        context = getattr(exc, "ctx", None)
        where = str(context.command_path) if context is not None else "nbenv"
        message = " ".join(exc.format_message().split())
        print_error(NbenvError(f"{where}: {message}", f"see `{where} --help`"), verbose=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        sys.stderr.write("aborted\n")
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except Exception as exc:
        print_internal_error(exc, verbose=verbose)
        raise SystemExit(70) from None
    # Without standalone mode click returns (not raises) the code of an interrupted command (130).
    if isinstance(code, int) and code:
        if code == 130:
            sys.stderr.write("interrupted\n")
        raise SystemExit(code)
    raise SystemExit(0)
