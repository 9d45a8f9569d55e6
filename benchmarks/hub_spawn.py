"""A user's server through `nbenv hub` against `nbenv up` of the same environment, and the hub's memory.

    .venv/bin/python benchmarks/hub_spawn.py [--runs 5] [--port 8961] [--up-port 8962]

The workspace is a copy of this repository (committed files) with its own image prefix and one extra
environment, `hub-bench` (the demo's base plus the hub's jupyterhub-singleuser, mounting
data/processed/pems), offered by a hub on 127.0.0.1 (`nbenv hub up`: DockerSpawner). Images, the hub
layer and the hub image are built once, untimed; then, alternating (the order flips every run):

- hub: from the spawn request (POST /hub/api/users/USER/server with the profile) to the server answering
  through the hub (GET /user/USER/api/status via the hub's proxy with the user's token: 200), polled
  every 0.1 s as `nbenv up` polls; the server is stopped again (DELETE), untimed;
- up: `nbenv up hub-bench` until it returns (Jupyter ready, image present), then `nbenv down`, untimed.

Then two users' servers run at once and the memory of the hub container and of each server is read from
the Engine API's stats (usage minus inactive file cache, as `docker stats` shows it). Prints medians, the
ratio hub/up and the memory table; progress goes to stderr. At the end (also on Ctrl-C) the hub and its
servers are stopped, the users' volumes, the network, the run's images and the workspace removed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_queries import make_workspace, remove_prefixed_images, run  # noqa: E402
from nbenv.adapters.localhttp import NO_PROXY  # noqa: E402
from nbenv.hub.render import LABEL, hub_id  # noqa: E402
from nbenv.spec.models import RepoConfig  # noqa: E402

PY = sys.executable
DOCKER = shutil.which("docker") or "docker"
PREFIX = "nbenv-bench-hub"
HUB = hub_id(RepoConfig(image_prefix=PREFIX))
ENV = "hub-bench"
USERS = ("bencha", "benchb")
SPEC = """\
spec_version = 1
name = "hub-bench"
description = "The demo's base with the hub's jupyterhub-singleuser (benchmarks/hub_spawn.py)"
extends = "base"
groups = ["nbenv-singleuser"]

[[data]]
path = "data/processed/pems"
"""
MIB = 1 << 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Workspace:
    """The benchmark's copy of this repository, and `nbenv` run on it (this checkout's code)."""

    def __init__(self, work: Path, port: int) -> None:
        self.root = make_workspace(work, PREFIX)
        pyproject = self.root / "pyproject.toml"
        text = pyproject.read_text()
        if "[tool.nbenv.hub]" in text:
            sys.exit("pyproject.toml: [tool.nbenv.hub] exists now: update this benchmark")
        text += f'\n[tool.nbenv.hub]\nenvironments = ["{ENV}"]\nport = {port}\nnetwork = "{PREFIX}"\n'
        pyproject.write_text(text)
        (self.root / "environments" / f"{ENV}.toml").write_text(SPEC)
        data = self.root / "data/processed/pems"
        data.mkdir(parents=True, exist_ok=True)
        (data / "README.txt").write_text("placeholder data, mounted read-only by both sides\n")
        run(["git", "add", "-A"], cwd=self.root)
        run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "hub"], cwd=self.root)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}

    def nbenv(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [PY, "-m", "nbenv", "-C", str(self.root), *args]
        if check:
            return run(command, cwd=ROOT, env=self.env)
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)


class Hub:
    """The hub's REST API (nbenv's service token) and its proxy, on 127.0.0.1."""

    def __init__(self, ws: Workspace, url: str) -> None:
        self.base = url.removesuffix("/hub/")
        self.port = int(self.base.rsplit(":", 1)[1])
        self.token = (ws.root / ".nbenv/hub/secrets/api_token").read_text().strip()
        profiles = json.loads((ws.root / "docker/hub/profiles.json").read_text())["profiles"]
        self.option = next(p["option"] for p in profiles if p["name"] == ENV)

    def api(self, path: str, *, method: str = "GET", body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}/hub/api{path}", data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        with NO_PROXY.open(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def status(self, user: str, token: str) -> int:
        """GET /user/USER/api/status through the proxy; redirects are not followed (a 302 is not ready)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", f"/user/{user}/api/status", headers={"Authorization": f"token {token}"})
            return connection.getresponse().status
        except OSError:
            return 0
        finally:
            connection.close()

    def spawn(self, user: str, token: str, timeout: float = 300) -> float:
        """Seconds from the spawn request to the server answering through the proxy."""
        started = time.perf_counter()
        self.api(f"/users/{user}/server", method="POST", body={"image": self.option})
        deadline = time.monotonic() + timeout
        while self.status(user, token) != 200:
            if time.monotonic() > deadline:
                sys.exit(f"{user}'s server did not answer through the hub in {timeout:.0f} s")
            time.sleep(0.1)
        return time.perf_counter() - started

    def stop(self, user: str, timeout: float = 60) -> None:
        self.api(f"/users/{user}/server", method="DELETE")
        deadline = time.monotonic() + timeout
        while self.api(f"/users/{user}").get("servers"):
            if time.monotonic() > deadline:
                sys.exit(f"{user}'s server did not stop")
            time.sleep(0.2)


def time_up(ws: Workspace, port: int) -> float:
    started = time.perf_counter()
    ws.nbenv("up", ENV, "--port", str(port), "--allow-missing")
    elapsed = time.perf_counter() - started
    ws.nbenv("down", ENV)
    return elapsed


def memory(api: Any, container: str) -> float:
    """MiB a container uses: usage minus inactive file cache (what `docker stats` shows), cgroup v1 or v2."""
    stats = api.stats(container, stream=False)["memory_stats"]
    usage, detail = stats["usage"], stats.get("stats", {})
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return float(usage - cache if cache < usage else usage) / MIB


def cleanup(ws: Workspace | None, work: Path) -> None:
    if ws is not None:
        ws.nbenv("down", ENV, check=False)
        ws.nbenv("hub", "down", check=False)
    listed = subprocess.run(
        [DOCKER, "ps", "-aq", "--filter", f"label={LABEL}={HUB}"], capture_output=True, text=True
    ).stdout.split()
    if listed:
        subprocess.run([DOCKER, "rm", "-f", *listed], capture_output=True)
    volumes = subprocess.run(
        [DOCKER, "volume", "ls", "-q", "--filter", f"name={HUB}-work-"], capture_output=True, text=True
    ).stdout.split()
    if volumes:
        subprocess.run([DOCKER, "volume", "rm", "-f", *volumes], capture_output=True)
    subprocess.run([DOCKER, "network", "rm", PREFIX], capture_output=True)
    remove_prefixed_images(PREFIX)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8961, help="the hub's port on 127.0.0.1")
    parser.add_argument("--up-port", type=int, default=8962, help="`nbenv up`'s port")
    options = parser.parse_args()
    import docker

    engine = docker.APIClient()
    work = Path(tempfile.mkdtemp(prefix="nbenv-bench-hub-"))
    ws: Workspace | None = None
    try:
        ws = Workspace(work, options.port)
        log(f"building {ENV}, its hub layer and the hub image ({PREFIX}), untimed")
        ws.nbenv("hub", "generate")
        hub = Hub(ws, ws.nbenv("hub", "up").stdout.strip().splitlines()[-1])
        tokens = {}
        for user in USERS:
            hub.api(f"/users/{user}", method="POST")
            tokens[user] = hub.api(f"/users/{user}/tokens", method="POST", body={"note": "bench"})["token"]
        idle = memory(engine, HUB)
        log("warming up: one spawn through the hub, one `nbenv up`")
        hub.spawn(USERS[0], tokens[USERS[0]])
        hub.stop(USERS[0])
        time_up(ws, options.up_port)
        times: dict[str, list[float]] = {"hub": [], "up": []}
        for index in range(options.runs):
            order = ["hub", "up"] if index % 2 == 0 else ["up", "hub"]
            for side in order:
                if side == "hub":
                    times["hub"].append(hub.spawn(USERS[0], tokens[USERS[0]]))
                    hub.stop(USERS[0])
                else:
                    times["up"].append(time_up(ws, options.up_port))
            log(f"run {index + 1}/{options.runs}: hub {times['hub'][-1]:.2f} s, up {times['up'][-1]:.2f} s")
        for user in USERS:
            hub.spawn(user, tokens[user])
        time.sleep(5)  # both servers idle, as after a login
        servers = sorted(c["Names"][0].lstrip("/") for c in engine.containers(filters={"label": f"{LABEL}={HUB}"}))
        used = {name: memory(engine, name) for name in (HUB, *(s for s in servers if s != HUB))}
        load = os.getloadavg()
        hub_median, up_median = statistics.median(times["hub"]), statistics.median(times["up"])
        print(f"nbenv hub: spawn through the hub against nbenv up ({ENV}, image present)")
        print(f"{options.runs} runs each, alternating; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
        print("| measure | median s | min s | max s |")
        print("|---|---|---|---|")
        for label, key in (
            ("spawn request → /api/status 200 through the hub's proxy", "hub"),
            (f"`nbenv up {ENV}` → ready", "up"),
        ):
            values = times[key]
            print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
        print(f"| ratio hub / up | {hub_median / up_median:.2f}x | | |")
        print("\n| container (two users' servers running) | memory MiB |")
        print("|---|---|")
        print(f"| hub (JupyterHub + configurable-http-proxy), no server running | {idle:.1f} |")
        for name, mib in used.items():
            role = "hub" if name == HUB else f"server of {name.removeprefix(HUB + '-')}"
            print(f"| {role} | {mib:.1f} |")
        print(f"| all three | {sum(used.values()):.1f} |")
    finally:
        log("cleaning up")
        cleanup(ws, work)


if __name__ == "__main__":
    main()
