"""`nbenv hub` on one host, for real: JupyterHub (the hub image nbenv builds), DockerSpawner,
configurable-http-proxy and NativeAuthenticator on 127.0.0.1, two users, two environments.

- alice starts `hub-lab` (the project's own JupyterLab, jupyterhub in its groups) through the hub's REST API;
- bob signs up and starts `hub-server` (nbenv's own server plus the hub layer's jupyterhub-singleuser)
  through a real browser on the profile form (Playwright driving /usr/bin/chromium; screenshot kept);
- each runs a cell (kernel websocket, the environment's kernel as the default) that reads the mounted data,
  cannot write it, writes its own work and does not see the other's files;
- stopping alice's server leaves bob's running; `nbenv hub down` + `up` keeps both users' files.

Everything the module starts carries the hub's label or name prefix and is removed at the end, even on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbenv.hub.render import HUB_SECRETS_DIR, LABEL, hub_id
from nbenv.spec.models import RepoConfig
from tests.conftest import REPO
from tests.e2e.conftest import PREFIX, SESSION, commit_all, docker, free_port, nbenv

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(os.environ.get("NBENV_TEST_ARTIFACTS", REPO / "test-artifacts")) / "hub"
HUB = hub_id(RepoConfig(image_prefix=PREFIX))
NETWORK = f"{PREFIX}-hub"
PASSWORD = "correct horse battery staple"

LAB_TOML = """\
spec_version = 1
name = "hub-lab"
description = "The demo's JupyterLab, served by the hub"
extends = "base"
groups = ["nbenv-singleuser"]

[[data]]
path = "data/processed/pems"
"""
SERVER_TOML = """\
spec_version = 1
name = "hub-server"
description = "No JupyterLab in its groups: nbenv's server, with the hub's jupyterhub-singleuser"
groups = ["models"]

[[data]]
path = "data/processed/climate"

[resources]
memory = "2g"
cpus = 1.5
"""


@dataclass(frozen=True)
class Hub:
    root: Path
    url: str  # http://127.0.0.1:PORT/hub/
    base: str  # http://127.0.0.1:PORT
    token: str  # nbenv's service token (.nbenv/hub/secrets/api_token)
    generated: str  # stdout of `nbenv hub generate`


def api(hub: Hub, path: str, *, method: str = "GET", body: object = None, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        hub.base + path, data=json.dumps(body).encode() if body is not None else None, method=method
    )
    request.add_header("Authorization", f"token {token or hub.token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def cleanup(network: str = NETWORK) -> None:
    """Everything of this session's hub: containers (hub and servers), their volumes, the network."""
    listed = docker("ps", "-aq", "--filter", f"label={LABEL}={HUB}", check=False).stdout.split()
    if listed:
        docker("rm", "-f", *listed, check=False)
    volumes = docker("volume", "ls", "-q", "--filter", f"name={HUB}-work-", check=False).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)
    docker("network", "rm", network, check=False)


def hub_workspace(
    e2e_workspace: Path,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    network: str,
    environments: tuple[str, ...] = ("hub-lab", "hub-server"),
) -> tuple[Path, int]:
    """A committed copy of the e2e workspace offering `environments` on a free port; (root, port)."""
    root = tmp_path_factory.mktemp("hub") / "repo"
    shutil.copytree(e2e_workspace, root, symlinks=True)
    (root / "environments" / "hub-lab.toml").write_text(LAB_TOML)
    (root / "environments" / "hub-server.toml").write_text(SERVER_TOML)
    port = free_port()
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write(
            "\n[tool.nbenv.hub]\n"
            f"environments = {json.dumps(list(environments))}\n"
            f"port = {port}\n"
            'admin_users = ["bob"]\n'
            f'network = "{network}"\n'
        )
    commit_all(root, "hub workspace")
    return root, port


@pytest.fixture(scope="module")
def hub(e2e_workspace: Path, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root, port = hub_workspace(e2e_workspace, tmp_path_factory, network=NETWORK)
    cleanup()
    try:
        generated = nbenv("hub", "generate", cwd=root)
        assert generated.returncode == 0, generated.stderr[-4000:]
        up = nbenv("hub", "up", cwd=root, timeout=1800)
        assert up.returncode == 0, up.stderr[-4000:]
        url = up.stdout.strip().splitlines()[-1]
        assert url == f"http://127.0.0.1:{port}/hub/"
        token = (root / ".nbenv/hub/secrets/api_token").read_text().strip()
        yield Hub(root, url, url.removesuffix("/hub/"), token, generated.stdout)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        logs = docker("logs", HUB, check=False)
        (ARTIFACTS / "hub.log").write_text(logs.stdout + logs.stderr)
        down = nbenv("hub", "down", cwd=root, timeout=300)
        cleanup()
        assert down.returncode == 0, down.stderr[-2000:]


def option(hub: Hub, name: str) -> str:
    profiles = json.loads((hub.root / "docker/hub/profiles.json").read_text())["profiles"]
    return next(p["option"] for p in profiles if p["name"] == name)


def wait_ready(hub: Hub, user: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = api(hub, f"/hub/api/users/{user}")
        assert status == 200, body
        server = json.loads(body).get("servers", {}).get("", {})
        if server.get("ready"):
            return
        time.sleep(1)
    raise AssertionError(f"{user}'s server did not become ready: {body}")


def start(hub: Hub, user: str, environment: str) -> None:
    status, body = api(hub, f"/hub/api/users/{user}/server", method="POST", body={"image": option(hub, environment)})
    assert status in (201, 202), f"{status} {body}"
    wait_ready(hub, user)


def user_token(hub: Hub, user: str) -> str:
    status, body = api(hub, f"/hub/api/users/{user}/tokens", method="POST", body={"note": "e2e", "expires_in": 3600})
    assert status in (200, 201), f"{status} {body}"
    return str(json.loads(body)["token"])


async def _execute(base: str, token: str, code: str) -> tuple[str, str]:
    """Run `code` in a new kernel of the default kernelspec (over the kernel websocket); (stdout, error)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {token}"}
    request = urllib.request.Request(f"{base}/api/kernels", data=b"{}", method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        kernel = json.loads(response.read())
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel['id']}/channels"
    connection = await websocket_connect(HTTPRequest(ws_url, headers=headers, connect_timeout=30))
    msg_id = uuid.uuid4().hex
    message = {
        "header": {"msg_id": msg_id, "username": "e2e", "session": uuid.uuid4().hex, "msg_type": "execute_request"}
        | {"version": "5.3"},
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
        | {"allow_stdin": False, "stop_on_error": True},
        "channel": "shell",
        "buffers": [],
    }
    await connection.write_message(json.dumps(message))
    out: list[str] = []
    error = ""
    while True:
        raw = await asyncio.wait_for(connection.read_message(), timeout=120)
        assert raw is not None, "the kernel websocket closed"
        reply = json.loads(raw)
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = reply["msg_type"]
        if kind == "stream":
            out.append(reply["content"]["text"])
        elif kind == "error":
            error = f"{reply['content']['ename']}: {reply['content']['evalue']}"
        elif kind == "status" and reply["content"]["execution_state"] == "idle":
            break
    connection.close()
    while await asyncio.wait_for(connection.read_message(), timeout=30) is not None:
        pass  # until the server has closed it too: no socket is left open
    return "".join(out), error


def execute(base: str, token: str, code: str) -> str:
    out, error = asyncio.run(_execute(base, token, code))
    assert not error, f"{error}\n{out}"
    return out


CELL = """\
import json, os, pathlib, sys
data = pathlib.Path({data!r})
files = sorted(p.name for p in data.rglob("*") if p.is_file())
try:
    (data / "written-by-{user}").write_text("x")
    data_write = "written"
except OSError as exc:
    data_write = type(exc).__name__
work = pathlib.Path("/home/jovyan/work")
(work / "{user}.txt").write_text("{user}'s work")
print(json.dumps({{"files": files, "data_write": data_write, "work": sorted(os.listdir(work)),
    "kernel": os.environ.get("JPY_SESSION_NAME", ""), "executable": sys.executable,
    "hub_token": bool(os.environ.get("JUPYTERHUB_API_TOKEN")), "uid": os.getuid()}}))
"""


def run_cell(hub: Hub, user: str, token: str, data: str) -> dict[str, object]:
    out = execute(f"{hub.base}/user/{user}", token, CELL.format(data=data, user=user))
    return dict(json.loads(out.strip().splitlines()[-1]))


def browser_spawn(hub: Hub, user: str, environment: str, screenshot: Path) -> None:
    """bob signs up (an admin: authorized on sign-up), logs in and picks `environment` on the profile form."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.browser import CHROMIUM_ARGS, system_chromium

    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=system_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            try:
                page.goto(f"{hub.url}signup")
                page.fill("#username_input", user)
                page.fill("#password_input", PASSWORD)
                if page.locator("#password_confirmation_input").count():
                    page.fill("#password_confirmation_input", PASSWORD)
                page.click("#signup_submit")
                expect(page.locator(".alert")).to_contain_text("successful", ignore_case=True)
                page.goto(f"{hub.url}login")
                page.fill("#username_input", user)
                page.fill("#password_input", PASSWORD)
                page.click("#login_submit")
                page.wait_for_url(re.compile(r".*/hub/(spawn|home).*"))  # logged in (the login POST is done)
                if "/hub/spawn" not in page.url:
                    page.goto(f"{hub.url}spawn")
                page.select_option("select[name=image]", option(hub, environment))
                page.screenshot(path=str(screenshot.with_name("profile-form.png")))
                page.locator("#spawn_form [type=submit]").click()
                page.wait_for_url(f"**/user/{user}/lab**", timeout=300_000)
                expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=120_000)
                page.screenshot(path=str(screenshot))
            except Exception:
                page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-failed.png")))
                raise
        finally:
            browser.close()


def test_two_users_two_environments_on_one_host(hub: Hub) -> None:
    # What was generated and what holds the secrets.
    assert "profile hub-lab:" in hub.generated and "profile hub-server:" in hub.generated
    check = nbenv("hub", "generate", "--check", cwd=hub.root)
    assert check.returncode == 0, check.stderr
    secrets_dir = hub.root / ".nbenv/hub/secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    secrets = {}
    for path in secrets_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
        secrets[path.name] = path.read_text().strip()
    generated = "\n".join(p.read_text() for p in (hub.root / "docker/hub").rglob("*") if p.is_file())
    assert not [name for name, value in secrets.items() if value in generated]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".nbenv/hub/secrets/api_token"], cwd=hub.root)
    assert ignored.returncode == 0, "the hub's secrets are git-ignored"
    hub_inspect = json.loads(docker("inspect", HUB).stdout)[0]
    assert hub_inspect["HostConfig"]["CapDrop"] == ["ALL"]
    assert any("no-new-privileges" in o for o in hub_inspect["HostConfig"]["SecurityOpt"])
    assert hub_inspect["HostConfig"]["PortBindings"]["8000/tcp"] == [
        {"HostIp": "127.0.0.1", "HostPort": str(hub.base.rsplit(":", 1)[1])}
    ]

    # alice: created and started through the REST API (nbenv's service token), environment hub-lab.
    status, body = api(hub, "/hub/api/users/alice", method="POST")
    assert status == 201, body
    started = time.monotonic()
    start(hub, "alice", "hub-lab")
    alice_seconds = time.monotonic() - started
    alice = user_token(hub, "alice")

    # bob: signs up, logs in and starts hub-server in a real browser, on the profile form.
    screenshot = ARTIFACTS / "bob-lab-through-the-hub.png"
    browser_spawn(hub, "bob", "hub-server", screenshot)
    assert screenshot.stat().st_size > 10_000
    bob = user_token(hub, "bob")

    a = run_cell(hub, "alice", alice, "/home/jovyan/work/data/processed/pems")
    b = run_cell(hub, "bob", bob, "/home/jovyan/work/data/processed/climate")
    for result, user, other in ((a, "alice", "bob"), (b, "bob", "alice")):
        assert result["files"], f"{user} reads the mounted data"
        assert result["data_write"] in ("OSError", "PermissionError"), f"{user} cannot write the data: {result}"
        assert f"{user}.txt" in result["work"] and f"{other}.txt" not in result["work"], result
        assert result["hub_token"] is True, "the server's token arrives as JUPYTERHUB_API_TOKEN"
        assert result["uid"] == 1000
    assert a["executable"] == "/opt/venv/bin/python" and b["executable"] == "/opt/venv/bin/python"
    for user in ("alice", "bob"):
        container = json.loads(docker("inspect", f"{HUB}-{user}").stdout)[0]
        host = container["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and any("no-new-privileges" in o for o in host["SecurityOpt"]), user
        assert container["Config"]["Labels"].get(LABEL) == HUB
        binds = [m for m in container["Mounts"] if m["Type"] == "bind"]
        assert binds and all(not m["RW"] for m in binds), f"{user}'s data is read-only: {binds}"
        assert [m["Name"] for m in container["Mounts"] if m["Type"] == "volume"] == [f"{HUB}-work-{user}"]
        # The image's healthcheck is `nbenv up`'s (GET /api on 8888): a hub's server answers it with an error
        # (it serves under /user/NAME/), so the hub turns it off rather than leave the container "unhealthy".
        assert container["Config"]["Healthcheck"]["Test"] == ["NONE"] and "Health" not in container["State"], user
        image_check = json.loads(docker("inspect", container["Image"]).stdout)[0]["Config"]["Healthcheck"]["Test"]
        assert image_check[0] == "CMD" and "127.0.0.1:8888/api" in image_check[-1], image_check
        probe = docker("exec", f"{HUB}-{user}", *image_check[1:], check=False)
        assert probe.returncode != 0 and "HTTP Error 404" in probe.stderr, (user, probe.stderr[-500:])
    bob_host = json.loads(docker("inspect", f"{HUB}-bob").stdout)[0]["HostConfig"]
    assert bob_host["Memory"] == 2 << 30, "[resources] memory"
    assert bob_host["CpuQuota"] == 150_000 and bob_host["CpuPeriod"] == 100_000, "[resources] cpus: 1.5 CPUs"

    status_out = nbenv("hub", "status", cwd=hub.root)
    assert status_out.returncode == 0 and f"{HUB}: running {hub.url}" in status_out.stdout, status_out
    assert f"{HUB}-alice: running" in status_out.stdout and f"{HUB}-bob: running" in status_out.stdout

    # Stopping alice's server leaves bob's running.
    status, body = api(hub, "/hub/api/users/alice/server", method="DELETE")
    assert status in (202, 204), body
    deadline = time.monotonic() + 60
    while json.loads(api(hub, "/hub/api/users/alice")[1]).get("servers") and time.monotonic() < deadline:
        time.sleep(1)
    assert not json.loads(api(hub, "/hub/api/users/alice")[1]).get("servers")
    assert api(hub, "/user/bob/api/status", token=bob)[0] == 200

    # A restart of the hub (down stops every server; volumes stay) keeps both users' files.
    down = nbenv("hub", "down", cwd=hub.root, timeout=300)
    assert down.returncode == 0, down.stderr
    assert not docker("ps", "-aq", "--filter", f"label={LABEL}={HUB}").stdout.split()
    up = nbenv("hub", "up", cwd=hub.root, timeout=900)
    assert up.returncode == 0, up.stderr[-3000:]
    start(hub, "alice", "hub-lab")
    start(hub, "bob", "hub-server")
    for user, token in (("alice", alice), ("bob", bob)):
        status, body = api(hub, f"/user/{user}/api/contents/{user}.txt?content=1", token=token)
        assert status == 200 and json.loads(body)["content"] == f"{user}'s work", body
    logs = docker("logs", HUB)
    assert not [name for name, value in secrets.items() if value in logs.stdout + logs.stderr], "no secret in the logs"
    (ARTIFACTS / "timing.txt").write_text(f"alice (API) spawn to ready: {alice_seconds:.1f} s; session {SESSION}\n")


SLOW_ROUTE = """\
import http.server, json, os, pathlib, threading, time, urllib.request
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(25)
        self.send_response(200); self.end_headers(); self.wfile.write(b"slow but there")
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
threading.Thread(target=server.serve_forever, daemon=True).start()
token = (pathlib.Path(SECRETS_DIR) / "proxy_token").read_text().strip()
def api(method, body=None):
    request = urllib.request.Request("http://127.0.0.1:8001/api/routes/nbenv-slow-probe", method=method,
        data=json.dumps(body).encode() if body else None, headers={"Authorization": f"token {token}"})
    urllib.request.urlopen(request, timeout=10).read()
api("POST", {"target": f"http://127.0.0.1:{server.server_port}"})
try:
    started = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/nbenv-slow-probe", timeout=120) as response:
            print(response.status, response.read().decode(), round(time.monotonic() - started))
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode()[:200], round(time.monotonic() - started))
finally:
    api("DELETE")
"""


@pytest.mark.fault
def test_the_proxy_waits_for_an_answer_as_long_as_a_spawn_may_take(hub: Hub) -> None:
    """The spawn page's progress stream is one response that lasts until the server is ready; the Python
    configurable-http-proxy buffers it and gave up after tornado's default 20 s (a 503 the page never shows:
    a server that took 28 s on a loaded machine left its user at "starting" forever). A route to a target
    that answers after 25 s, on the real proxy of the running hub, must get the answer."""
    probe = docker(
        "exec",
        "-e",
        "PYTHONDONTWRITEBYTECODE=1",
        HUB,
        "python",
        "-c",
        SLOW_ROUTE.replace("SECRETS_DIR", repr(HUB_SECRETS_DIR)),
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    status, body, seconds = probe.stdout.split(" ", 1)[0], probe.stdout, probe.stdout.split()[-1]
    assert status == "200" and "slow but there" in body and int(seconds) >= 25, probe.stdout
