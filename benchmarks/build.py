"""Build performance: nbenv's generated Dockerfiles against a seed-style Poetry Dockerfile, side by side.

    .venv/bin/python benchmarks/build.py [--repeat 3] [--quick]

Everything runs in a copy of the workspace under /tmp with its own image prefix
(`nbenv-bench-<id>`), both sides through the same BuildKit builder and FROM the same local base
image. At the end the run removes its images, its uv cache mounts and the build cache records its
steps added (new since the start, not in use, made by these Dockerfiles' steps). Scenarios:

1. cold build: both sides FROM a fresh copy of the base image (one tiny layer added, so no step can
   be a cache hit from an earlier build) and nbenv with a uv cache mount of its own ("fully cold");
   then nbenv again on another fresh copy: cold layers, warm uv cache;
2. rebuild after editing a notebook and a file of the project's source;
3. rebuild after adding one package to the `models` group (pyproject.toml and poetry.lock updated,
   as `poetry add --group models NAME` would when the package is already locked for another group);
4. `--groups notebook`, then `--groups notebook,models` (once, not repeated);
5. image sizes: nbenv's final image, the baseline's, and the baseline's builder stage (a single-stage build);
6. CLI start-up: `nbenv --help`, `nbenv list`, `nbenv validate`;
7. `nbenv up` to ready against bare `docker compose up -d` + the same poll (benchmarks/up_vs_compose.py,
   on this repository's own environment).

Prints a Markdown table of medians and ratios nbenv/baseline; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbenv.lock import content_hash  # noqa: E402

PY = sys.executable
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
ENV = "traffic-analysis"
BASE_IMAGE = "nbenv/debian-python:bookworm"
# nbenv with the uv cache mount's id taken from the environment: a fresh id is a cold uv cache.
NBENV = (
    "import os, sys; import nbenv.render.dockerfile as d; "
    "d.UV_CACHE_ID = os.environ.get('NBENV_BENCH_UV_CACHE_ID') or d.UV_CACHE_ID; "
    "from nbenv.cli import main; sys.argv[0] = 'nbenv'; main()"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, retry: bool = False
) -> tuple[float, str]:
    """Wall time and combined output; exits on failure. `retry`: one more try (builds on a flaky network)."""
    started = time.perf_counter()
    result = subprocess.run(list(command), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 and retry:
        log(f"failed, trying once more (the failed run is not counted): {' '.join(command)[:200]}")
        return run(command, cwd=cwd, env=env)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{(result.stdout + result.stderr)[-4000:]}")
    return elapsed, result.stdout + result.stderr


class Bench:
    def __init__(self, work: Path, run_id: str) -> None:
        self.work, self.id = work, run_id
        self.prefix = f"nbenv-bench-{run_id}"
        self.ws = work / "ws"
        self.seed = work / "seed"
        self.cache_ids: list[str] = []
        self.base = BASE_IMAGE  # the baseline's base image: the current run's fresh copy
        self.records_before: set[str] = set()
        self.index_url = run([PY, "-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"])[1]
        self.index_url = self.index_url.strip()

    # ---------------------------------------------------------------- workspaces
    def setup(self) -> None:
        self.ws.mkdir(parents=True)
        for name in ("pyproject.toml", "poetry.lock", "dvc.yaml", "environments", "notebooks", "nbenv"):
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.ws / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.ws / name)
        pyproject = self.ws / "pyproject.toml"
        text = re.sub(r'(?m)^image_prefix = ".*"$', f'image_prefix = "{self.prefix}"', pyproject.read_text())
        pyproject.write_text(text)
        self.original = {name: (self.ws / name).read_text() for name in ("pyproject.toml", "poetry.lock")}
        # nbenv runs from a snapshot of its code, so edits made to the tree during the run change nothing.
        shutil.copytree(ROOT / "nbenv", self.work / "code" / "nbenv", ignore=shutil.ignore_patterns("__pycache__"))
        self.seed.mkdir()
        shutil.copy2(ROOT / "benchmarks/seed/Dockerfile", self.seed / "Dockerfile")
        shutil.copy2(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt", self.seed / "ca.pem")
        self.sync_seed()

    def sync_seed(self) -> None:
        """The baseline's context: the workspace's pyproject/lock plus a legacy source for the same index."""
        pyproject = (self.ws / "pyproject.toml").read_text()
        pyproject += f'\n[[tool.poetry.source]]\nname = "index"\nurl = "{self.index_url}"\npriority = "primary"\n'
        lock = (self.ws / "poetry.lock").read_text()
        digest = content_hash(tomllib.loads(pyproject))
        lock = re.sub(r'(?m)^content-hash = ".*"$', f'content-hash = "{digest}"', lock)
        (self.seed / "pyproject.toml").write_text(pyproject)
        (self.seed / "poetry.lock").write_text(lock)
        project = self.seed / "project"
        shutil.rmtree(project, ignore_errors=True)
        for name in ("notebooks", "nbenv"):
            shutil.copytree(self.ws / name, project / name)

    def restore(self) -> None:
        for name, text in self.original.items():
            (self.ws / name).write_text(text)
        self.sync_seed()

    # ---------------------------------------------------------------- the two sides
    def nbenv(self, *args: str, cache_id: str | None = None) -> tuple[float, str]:
        env = {"NBENV_BENCH_UV_CACHE_ID": cache_id} if cache_id else {}
        if cache_id and cache_id not in self.cache_ids:
            self.cache_ids.append(cache_id)
        return run([PY, "-c", NBENV, "-C", str(self.ws), *args], cwd=self.work / "code", env=env, retry=True)

    def seed_build(
        self, tag: str, *, nonce: str, no_cache: bool = False, groups: str = "notebook,models", target: str = ""
    ) -> tuple[float, str]:
        command = [DOCKER, "build", "--progress=plain", "--label", f"nbenv.bench={self.id}"]
        command += ["--tag", f"{self.prefix}/seed:{tag}", "--build-arg", f"BASE_IMAGE={self.base}"]
        command += ["--build-arg", f"SEED_NONCE={nonce}", "--build-arg", f"GROUPS={groups}"]
        command += (["--no-cache"] if no_cache else []) + (["--target", target] if target else [])
        return run([*command, str(self.seed)], env={"DOCKER_BUILDKIT": "1"}, retry=True)

    def fresh_base(self, nonce: str, *, for_seed: bool = True) -> str:
        """The base image plus a 40-byte file of its own. BuildKit keys a step by the layers below it
        (a label alone changes nothing), so no step of either side can be a cache hit from an earlier
        build: an empty build cache for this base image. Steps within one cold build can still share,
        as in a user's first build."""
        tag = f"{self.prefix}/base:{nonce}"
        dockerfile = f"FROM {BASE_IMAGE}\nRUN echo {nonce} > /etc/nbenv-bench-nonce\n"
        subprocess.run(
            [DOCKER, "build", "-q", "--label", f"nbenv.bench={self.id}", "--tag", tag, "-"],
            input=dockerfile,
            text=True,
            capture_output=True,
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        spec = self.ws / "environments/base.toml"
        text = re.sub(r'(?m)^base_image = ".*"\n', "", spec.read_text())
        spec.write_text(text.replace("groups = [", f'base_image = "{tag}"\ngroups = [', 1))
        if for_seed:
            self.base = tag
        return tag

    def size(self, ref: str) -> int:
        return int(run([DOCKER, "image", "inspect", "--format", "{{.Size}}", ref])[1].strip())

    # ---------------------------------------------------------------- scenario 3's lock edit
    def add_package(self, name: str) -> None:
        """What `poetry add --group models NAME` writes when NAME is already locked for another group."""
        pyproject = self.original["pyproject.toml"]
        data = tomllib.loads(self.original["poetry.lock"])
        version = next(p["version"] for p in data["package"] if p["name"] == name)
        header = "[tool.poetry.group.models.dependencies]\n"
        pyproject = pyproject.replace(header, f'{header}{name} = "{version}"\n')
        lock = self.original["poetry.lock"]
        entry = re.search(rf'(?ms)^name = "{re.escape(name)}"\n.*?^groups = \[(.*?)\]$', lock)
        assert entry, name
        start, end = entry.span(1)
        lock = lock[:start] + entry.group(1) + ', "models"' + lock[end:]
        digest = content_hash(tomllib.loads(pyproject))
        lock = re.sub(r'(?m)^content-hash = ".*"$', f'content-hash = "{digest}"', lock)
        (self.ws / "pyproject.toml").write_text(pyproject)
        (self.ws / "poetry.lock").write_text(lock)
        self.sync_seed()

    def candidates(self, count: int) -> list[str]:
        """Pure-Python packages locked only for other groups, with no dependencies or markers."""
        data = tomllib.loads(self.original["poetry.lock"])
        found = [
            p["name"]
            for p in data["package"]
            if not {"notebook", "models", "nbenv-builder"} & set(p["groups"])
            and not p.get("dependencies")
            and not p.get("markers")
            and any(f["file"].endswith("-py3-none-any.whl") for f in p["files"])
        ]
        return sorted(found)[:count]

    # ---------------------------------------------------------------- cleanup
    def cleanup(self) -> None:
        refs = run([DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}"])[1].split()
        mine = [ref for ref in refs if ref.startswith(f"{self.prefix}/")]
        if mine:
            subprocess.run([DOCKER, "rmi", "-f", *mine], capture_output=True)
        subprocess.run(
            [DOCKER, "image", "prune", "-f", "--filter", f"label=nbenv.bench={self.id}"], capture_output=True
        )
        # Build cache records this run added (cold builds leave GBs): new since the start, not in use,
        # and made by these Dockerfiles' steps. Children first, so a few rounds.
        for _ in range(5):
            mine = [
                b["ID"]
                for b in self.cache_records()
                if b["ID"] not in self.records_before and not b["InUse"] and _made_here(b)
            ]
            for record in mine:
                subprocess.run([DOCKER, "builder", "prune", "-f", "--filter", f"id={record}"], capture_output=True)
            if not mine:
                break
        shutil.rmtree(self.work, ignore_errors=True)

    def cache_records(self) -> list[dict[str, object]]:
        out = run(["curl", "-s", "--unix-socket", "/var/run/docker.sock", "http://localhost/v1.41/system/df"])[1]
        return list(json.loads(out).get("BuildCache") or [])


_STEPS = ("/tmp/seed", "/tmp/nbenv", "/opt/venv", "/opt/nbenv", "useradd", "tini", "/root/.cache/uv")


def _made_here(record: dict[str, object]) -> bool:
    """A record of a step in nbenv's or the baseline's Dockerfile (or a COPY/context of one)."""
    description = str(record.get("Description", ""))
    return description in ("fileop target", "local source for context", "local source for dockerfile") or any(
        step in description for step in _STEPS
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def count_installed(output: str) -> str:
    uv = sum(int(n) for n in re.findall(r"Installed (\d+) packages? in", output))
    poetry = len(re.findall(r"- Installing \S+", output))
    return str(uv or poetry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of scenarios 1-3 (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run; skip scenario 4 and the up benchmark")
    parser.add_argument("--up-runs", type=int, default=5)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    run_id = uuid.uuid4().hex[:8]
    bench = Bench(Path(tempfile.mkdtemp(prefix="nbenv-bench-build-")), run_id)
    bench.records_before = {str(b["ID"]) for b in bench.cache_records()}
    loads = [load()]
    rows: dict[str, list[float]] = {}
    notes: dict[str, str] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    try:
        bench.setup()
        packages = bench.candidates(repeat)
        log(f"run {run_id}: workspace {bench.ws}; scenario 3 adds {', '.join(packages)}")
        for r in range(repeat):
            nonce = f"{run_id}-{r}"
            cache_id = f"nbenv-uv-bench-{nonce}"
            # 1. cold: a fresh base image (no build step cached), nbenv then the baseline; then nbenv
            # again on another fresh base image: cold layers, warm uv cache
            bench.fresh_base(f"cold-{nonce}")
            t, _ = bench.nbenv("image", "build", ENV, cache_id=cache_id)
            add("cold.nbenv", t)
            t, _ = bench.seed_build(f"cold-{r}", nonce=nonce)
            add("cold.seed", t)
            bench.fresh_base(f"warm-uv-{nonce}", for_seed=False)
            t, _ = bench.nbenv("image", "build", ENV, cache_id=cache_id)
            add("cold-warm-uv.nbenv", t)
            # 2. edit a notebook and the project's source
            for path in (bench.ws / "notebooks").rglob("*.ipynb"):
                nb = json.loads(path.read_text())
                nb.setdefault("metadata", {})["nbenv-bench"] = nonce
                path.write_text(json.dumps(nb, indent=1))
                break
            with (bench.ws / "nbenv/__init__.py").open("a") as f:
                f.write(f"# edited by benchmarks/build.py ({nonce})\n")
            bench.sync_seed()
            t, out = bench.nbenv("image", "build", ENV, cache_id=cache_id)
            assert "up to date" in out, out[-2000:]
            add("edit.nbenv", t)
            t, _ = bench.seed_build(f"edit-{r}", nonce=nonce)
            add("edit.seed", t)
            # 3. one package added to `models`
            bench.add_package(packages[r])
            t, out = bench.nbenv("image", "build", ENV, cache_id=cache_id)
            add("add.nbenv", t)
            notes["add.nbenv"] = count_installed(out)
            t, out = bench.seed_build(f"add-{r}", nonce=nonce)
            add("add.seed", t)
            notes["add.seed"] = count_installed(out)
            bench.restore()
            loads.append(load())
            log(f"run {r + 1}/{repeat}: " + "; ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items()))

        # 5. sizes (the last run's images; the builder stage is a cache hit of the same build)
        nbenv_ref = f"{bench.prefix}/{ENV}:latest"
        bench.nbenv("image", "build", ENV, cache_id=f"nbenv-uv-bench-{run_id}-{repeat - 1}")
        bench.seed_build("single", nonce=f"{run_id}-{repeat - 1}", target="builder")
        sizes = {
            "nbenv": bench.size(nbenv_ref),
            "seed": bench.size(f"{bench.prefix}/seed:cold-{repeat - 1}"),
            "single": bench.size(f"{bench.prefix}/seed:single"),
            "base": bench.size(BASE_IMAGE),
        }
        log(f"sizes (bytes): {sizes}")

        # 4. a second group set (once)
        groups: dict[str, float] = {}
        if not args.quick:
            nonce = f"{run_id}-groups"
            cache_id = f"nbenv-uv-bench-{nonce}"
            bench.fresh_base(f"groups-{nonce}")
            groups["nbenv.first"], _ = bench.nbenv("image", "build", ENV, "--groups", "notebook", cache_id=cache_id)
            groups["nbenv.second"], out = bench.nbenv(
                "image", "build", ENV, "--groups", "notebook,models", cache_id=cache_id
            )
            notes["groups.nbenv"] = count_installed(out)
            groups["seed.first"], _ = bench.seed_build("g1", nonce=nonce, groups="notebook")
            groups["seed.second"], out = bench.seed_build("g2", nonce=nonce, groups="notebook,models")
            notes["groups.seed"] = count_installed(out)
            log(f"groups: {groups}; installed by the second: {notes}")

        # 6. CLI start-up (in the workspace copy)
        for _ in range(max(repeat, 5)):
            for name, argv in (("help", ["--help"]), ("list", ["list"]), ("validate", ["validate"])):
                add(f"cli.{name}", run([str(Path(PY).parent / "nbenv"), "-C", str(bench.ws), *argv])[0])
        loads.append(load())
    finally:
        log("cleaning up: images, uv cache mounts, workspace")
        bench.cleanup()

    # 7. up against bare compose (this repository's environment, images nbenv/...)
    up = ""
    if not args.quick:
        up = run([PY, str(ROOT / "benchmarks/up_vs_compose.py"), "--runs", str(args.up_runs)], cwd=ROOT)[1]
        up = "\n".join(line for line in up.splitlines() if line.startswith("|"))

    def row(label: str, key: str, target: str = "") -> str:
        n, s = rows[f"{key}.nbenv"], rows[f"{key}.seed"]
        ratio = median(n) / median(s)
        return f"| {label} | {median(n):.1f} | {median(s):.1f} | {ratio:.2f}x | {target} | {fmt(n)} / {fmt(s)} |"

    cold = median(rows["cold.nbenv"])
    print(f"Load average (1, 5, 15 min) at start, after each run and at the end: {'; '.join(loads)}\n")
    print(
        f"| scenario ({repeat} runs) | nbenv s (median) | baseline s (median) | nbenv / baseline | target "
        "| each run, s (nbenv / baseline) |"
    )
    print("|---|---:|---:|---:|---|---|")
    print(row("1. cold build, fully cold (no layers, empty uv cache)", "cold", "<= 0.5x"))
    warm = rows["cold-warm-uv.nbenv"]
    print(
        f"| 1b. cold layers, warm uv cache (nbenv only) | {median(warm):.1f} | {median(rows['cold.seed']):.1f} "
        f"| {median(warm) / median(rows['cold.seed']):.2f}x | | {fmt(warm)} |"
    )
    print(row("2. rebuild after editing a notebook and the source", "edit", "nbenv: no rebuild"))
    print(row("3. rebuild after adding one package to `models`", "add", "nbenv <= 0.3x its cold build"))
    add_n = median(rows["add.nbenv"])
    print(
        f"\nScenario 3: nbenv's rebuild is {add_n / cold:.2f}x its own cold build "
        f"(packages installed: nbenv {notes['add.nbenv']}, baseline {notes['add.seed']})."
    )
    if groups:
        print("\n| 4. second group set (1 run) | nbenv s | baseline s | packages installed by the second |")
        print("|---|---:|---:|---:|")
        print(f"| `--groups notebook` (cold) | {groups['nbenv.first']:.1f} | {groups['seed.first']:.1f} | |")
        print(
            f"| then `--groups notebook,models` | {groups['nbenv.second']:.1f} | {groups['seed.second']:.1f} "
            f"| nbenv {notes['groups.nbenv']}, baseline {notes['groups.seed']} |"
        )
    mb = 1e6
    print("\n| 5. image size | MB | nbenv / this |")
    print("|---|---:|---:|")
    print(f"| nbenv `{ENV}` (final) | {sizes['nbenv'] / mb:.0f} | |")
    print(f"| baseline, multi-stage | {sizes['seed'] / mb:.0f} | {sizes['nbenv'] / sizes['seed']:.2f}x |")
    print(
        f"| single-stage (the baseline's builder stage) | {sizes['single'] / mb:.0f} "
        f"| {sizes['nbenv'] / sizes['single']:.2f}x (target <= 0.7x) |"
    )
    print(f"| the base image `{BASE_IMAGE}` | {sizes['base'] / mb:.0f} | |")
    print(f"\n| 6. CLI start-up ({len(rows['cli.help'])} runs) | median s | min s |")
    print("|---|---:|---:|")
    for name, label in (
        ("help", "nbenv --help (target <= 0.25 s)"),
        ("list", "nbenv list"),
        ("validate", "nbenv validate"),
    ):
        values = rows[f"cli.{name}"]
        print(f"| {label} | {median(values):.2f} | {min(values):.2f} |")
    if up:
        print(f"\n7. `nbenv up` to ready, image present (benchmarks/up_vs_compose.py --runs {args.up_runs}):\n")
        print(up)


if __name__ == "__main__":
    main()
