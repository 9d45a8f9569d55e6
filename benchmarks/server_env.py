"""What nbenv's separate Jupyter server costs: the same small project built with its own jupyterlab and with
only ipykernel plus nbenv's pinned server (issue 15, item 5).

    .venv/bin/python benchmarks/server_env.py [--repeat 1]

The project is tests/fixtures/server-env (a real Poetry 2 lock): group `lib` holds tabulate, `lab` the
project's own jupyterlab 4.6.6, `kernel` only ipykernel. Two environments of it:

  (a) own   groups lib + lab     the project's jupyterlab, in /opt/venv (the baseline: as before item 5)
  (b) nbenv groups lib + kernel  the project's ipykernel in /opt/venv, nbenv's JupyterLab in /opt/nbenv/server

Both are built through the same BuildKit builder FROM fresh copies of the same local base image (one tiny
layer added, so no step is a cache hit of an earlier build):
  cold  fresh base, a uv cache mount of its own (empty): every package downloaded;
  warm  another fresh base, the same uv cache: cold layers, downloads cached;
  noop  the same build again: every step cached.
Then the final images' sizes and the size of /opt/nbenv/server in (b). Prints a Markdown table and the
ratios (b)/(a); progress goes to stderr. At the end the run removes its images, and the build cache
records its steps added (as benchmarks/build.py does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(1, str(ROOT))

from build import DOCKER, NBENV, PY, _made_here, load, log, run  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "server-env"
BASE_IMAGE = "nbenv/debian-python:bookworm"
SIDES = {"own": ["lib", "lab"], "nbenv": ["lib", "kernel"]}


class Bench:
    def __init__(self, work: Path, run_id: str) -> None:
        self.work, self.id = work, run_id
        self.prefix = f"nbenv-bench-{run_id}"
        self.ws = work / "ws"
        self.records_before = {str(r["ID"]) for r in self.cache_records()}

    def setup(self) -> None:
        self.ws.mkdir(parents=True)
        shutil.copy2(FIXTURE / "poetry.lock", self.ws / "poetry.lock")
        text = (FIXTURE / "pyproject.toml").read_text()
        text = text.replace('image_prefix = "nbenv-e2e-server"', f'image_prefix = "{self.prefix}"')
        (self.ws / "pyproject.toml").write_text(text)
        (self.ws / "environments").mkdir()
        # nbenv runs from a snapshot of its code, so edits made to the tree during the run change nothing.
        shutil.copytree(ROOT / "nbenv", self.work / "code" / "nbenv", ignore=shutil.ignore_patterns("__pycache__"))

    def spec(self, side: str, base: str) -> None:
        groups = ", ".join(f'"{g}"' for g in SIDES[side])
        (self.ws / f"environments/{side}.toml").write_text(
            f'spec_version = 1\nname = "{side}"\ndescription = "benchmark"\nbase_image = "{base}"\n'
            f"groups = [{groups}]\n"
        )

    def fresh_base(self, nonce: str) -> str:
        tag = f"{self.prefix}/base:{nonce}"
        subprocess.run(
            [DOCKER, "build", "-q", "--label", f"nbenv.bench={self.id}", "--tag", tag, "-"],
            input=f"FROM {BASE_IMAGE}\nRUN echo {nonce} > /etc/nbenv-bench-nonce\n",
            text=True,
            capture_output=True,
            check=True,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        return tag

    def build(self, side: str, cache_id: str) -> float:
        seconds, out = run(
            [PY, "-c", NBENV, "-C", str(self.ws), "image", "build", side],
            cwd=self.work / "code",
            env={"NBENV_BENCH_UV_CACHE_ID": cache_id},
            retry=True,
        )
        log(f"  {seconds:.1f} s: {out.strip().splitlines()[-1][:160]}")
        return seconds

    def size(self, side: str) -> int:
        return int(run([DOCKER, "image", "inspect", "--format", "{{.Size}}", f"{self.prefix}/{side}:latest"])[1])

    def du(self, side: str, path: str) -> int:
        out = run([DOCKER, "run", "--rm", "--entrypoint", "du", f"{self.prefix}/{side}:latest", "-sb", path])[1]
        return int(out.split()[0])

    def cache_records(self) -> list[dict[str, object]]:
        import json

        out = run(["curl", "-s", "--unix-socket", "/var/run/docker.sock", "http://localhost/v1.41/system/df"])[1]
        return list(json.loads(out).get("BuildCache") or [])

    def cleanup(self) -> None:
        refs = run([DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}"])[1].split()
        mine = [ref for ref in refs if ref.startswith(f"{self.prefix}/")]
        if mine:
            subprocess.run([DOCKER, "rmi", "-f", *mine], capture_output=True)
        for _ in range(5):
            added = [
                r["ID"]
                for r in self.cache_records()
                if r["ID"] not in self.records_before and not r["InUse"] and _made_here(r)
            ]
            for record in added:
                subprocess.run([DOCKER, "builder", "prune", "-f", "--filter", f"id={record}"], capture_output=True)
            if not added:
                break
        shutil.rmtree(self.work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each build (medians are printed)")
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:8]
    bench = Bench(Path(tempfile.mkdtemp(prefix=f"nbenv-bench-server-{run_id}-")), run_id)
    times: dict[str, list[float]] = {f"{side}.{kind}": [] for side in SIDES for kind in ("cold", "warm", "noop")}
    started, load_before = time.perf_counter(), load()
    try:
        bench.setup()
        for repeat in range(args.repeat):
            for side in SIDES:  # interleaved: (a) then (b) in every round
                nonce = f"{run_id}-{side}-{repeat}"
                cache_id = f"nbenv-uv-bench-{nonce}"
                bench.spec(side, bench.fresh_base(f"{nonce}-cold"))
                log(f"{side}: cold build")
                times[f"{side}.cold"].append(bench.build(side, cache_id))
                bench.spec(side, bench.fresh_base(f"{nonce}-warm"))
                log(f"{side}: warm build (cold layers, warm uv cache)")
                times[f"{side}.warm"].append(bench.build(side, cache_id))
                log(f"{side}: no-op build")
                times[f"{side}.noop"].append(bench.build(side, cache_id))
        sizes = {side: bench.size(side) for side in SIDES}
        server = bench.du("nbenv", "/opt/nbenv/server")
        venvs = {side: bench.du(side, "/opt/venv") for side in SIDES}
    finally:
        log("cleaning up: images, build cache records of this run, workspace")
        bench.cleanup()

    def median(key: str) -> float:
        return statistics.median(times[key])

    mib = 1024 * 1024
    print(
        f"server env: run {run_id}, {args.repeat} run(s), load average {load_before} -> {load()}, "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print()
    print("| measure | (a) own jupyterlab | (b) ipykernel + nbenv's server | ratio b/a |")
    print("|---|---|---|---|")
    for kind, label in (
        ("cold", "cold build, empty uv cache (s)"),
        ("warm", "cold layers, warm uv cache (s)"),
        ("noop", "no-op rebuild (s)"),
    ):
        a, b = median(f"own.{kind}"), median(f"nbenv.{kind}")
        print(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")
    a, b = sizes["own"] / mib, sizes["nbenv"] / mib
    print(f"| final image (MiB) | {a:.0f} | {b:.0f} | {b / a:.2f}x |")
    print(
        f"| /opt/venv (MiB) | {venvs['own'] / mib:.0f} | {venvs['nbenv'] / mib:.0f} | "
        f"{venvs['nbenv'] / venvs['own']:.2f}x |"
    )
    print(f"| /opt/nbenv/server (MiB) | - | {server / mib:.0f} | |")


if __name__ == "__main__":
    main()
