"""The demo environment built for linux/arm64 under QEMU emulation against the native build of the same one.

    .venv/bin/python benchmarks/arm64.py [--runs 1]

The workspace is a copy of this repository (committed files) with its own image prefix and its own base
tag, so every run starts from bases made in that run (no layer of an earlier build can be reused). Per run,
native first, then arm64 (`--platform linux/arm64`, QEMU through binfmt_misc; scripts/emulation sets it up):

- base: `nbenv image base` (mmdebstrap: Debian bookworm minbase with python3, then import/load);
- environment: `nbenv image build traffic-analysis` (`base`, then `traffic-analysis` FROM it: uv installs
  both groups and compiles their bytecode), with a uv cache mount of its own per side and run (cold
  downloads on both sides: each platform fetches its own wheels).

Prints seconds per step and side, and the ratio arm64/native, measured in the same run; progress goes
to stderr. At the end (also on failure) the run's images and the build cache records its builds added
are removed.
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(ROOT))

from benchmarks.engine_queries import make_workspace, remove_prefixed_images  # noqa: E402

PY = sys.executable
DOCKER = shutil.which("docker") or "docker"
ENV = "traffic-analysis"
# nbenv with the uv cache mount's id taken from the environment: a fresh id is a cold uv cache.
NBENV = (
    "import os, sys; import nbenv.render.dockerfile as d; "
    "d.UV_CACHE_ID = os.environ.get('NBENV_BENCH_UV_CACHE_ID') or d.UV_CACHE_ID; "
    "from nbenv.cli import main; sys.argv[0] = 'nbenv'; main()"
)
PLATFORMS = {"native": None, "arm64": "linux/arm64"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_records() -> dict[str, bool]:
    import docker

    client = docker.from_env()
    try:
        return {r["ID"]: bool(r.get("InUse")) for r in client.df().get("BuildCache") or []}
    finally:
        client.close()


class Run:
    def __init__(self, work: Path, run_id: str) -> None:
        self.work, self.id = work, run_id
        self.prefix = f"nbenv-bench-arm-{run_id}"
        self.base = f"{self.prefix}/debian-python:bookworm"
        self.ws = make_workspace(work, self.prefix)
        pyproject = self.ws / "pyproject.toml"
        text = pyproject.read_text()
        default = 'default_base_image = "nbenv/debian-python:bookworm"'
        if default not in text:
            sys.exit(f"pyproject.toml: {default} is not there any more: update this benchmark")
        pyproject.write_text(text.replace(default, f'default_base_image = "{self.base}"'))
        subprocess.run(["git", "commit", "-qam", "bench base"], cwd=self.ws, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@localhost",
                            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@localhost"})  # fmt: skip
        self.before = set(cache_records())

    def nbenv(self, *args: str, cache_id: str | None = None) -> float:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        if cache_id:
            env["NBENV_BENCH_UV_CACHE_ID"] = cache_id
        started = time.perf_counter()
        result = subprocess.run([PY, "-c", NBENV, "-C", str(self.ws), *args], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"failed: nbenv {' '.join(args)}\n{result.stderr[-4000:]}")
        return elapsed

    def side(self, name: str, platform: str | None, n: int) -> dict[str, float]:
        option = ["--platform", platform] if platform else []
        log(f"run {n}, {name}: base image")
        base = self.nbenv("image", "base", "--tag", self.base, *option)
        log(f"run {n}, {name}: base {base:.0f} s; environment {ENV}")
        build = self.nbenv("image", "build", ENV, *option, cache_id=f"nbenv-bench-uv-{self.id}-{name}-{n}")
        log(f"run {n}, {name}: environment {build:.0f} s")
        return {"base": base, "environment": build}

    def cleanup(self) -> None:
        remove_prefixed_images(self.prefix)
        import docker

        client = docker.from_env()
        try:
            for _ in range(5):  # children first, so a few rounds
                new = [rid for rid, used in cache_records().items() if rid not in self.before and not used]
                for rid in new:
                    client.api.prune_builds(filters={"id": rid})
                if not new:
                    break
        finally:
            client.close()
        shutil.rmtree(self.work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    from nbenv.platforms import emulation_problem

    if problem := emulation_problem("linux/arm64", "linux/amd64"):
        sys.exit(f"{problem} (scripts/emulation does it)")
    results: dict[str, dict[str, list[float]]] = {s: {"base": [], "environment": []} for s in PLATFORMS}
    run_id = uuid.uuid4().hex[:8]
    bench = Run(Path(tempfile.mkdtemp(prefix="nbenv-bench-arm-")), run_id)
    try:
        for n in range(1, options.runs + 1):
            for name, platform in PLATFORMS.items():
                for step, seconds in bench.side(name, platform, n).items():
                    results[name][step].append(seconds)
            if n < options.runs:  # the next run starts from new bases again
                bench.cleanup()
                bench = Run(Path(tempfile.mkdtemp(prefix="nbenv-bench-arm-")), uuid.uuid4().hex[:8])
    finally:
        bench.cleanup()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"run {run_id}, {options.runs} run(s), load average at the end {load}\n")
    print("| step | native s | arm64 (QEMU) s | ratio arm64/native |")
    print("|---|---|---|---|")
    for step in ("base", "environment"):
        native = statistics.median(results["native"][step])
        arm = statistics.median(results["arm64"][step])
        print(f"| {step} | {native:.1f} | {arm:.1f} | {arm / native:.1f}x |")
    total_native = sum(statistics.median(v) for v in results["native"].values())
    total_arm = sum(statistics.median(v) for v in results["arm64"].values())
    print(f"| both | {total_native:.1f} | {total_arm:.1f} | {total_arm / total_native:.1f}x |")
    print(json.dumps({"runs": options.runs, "results": results}), file=sys.stderr)


if __name__ == "__main__":
    main()
