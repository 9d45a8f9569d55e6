"""Issue 13 items 3 and 8 on the real engine: with `bind = "::1"` the token goes to nbenv's Jupyter only
(never to another local user's listener on 127.0.0.1), and configuration committed to the repository
cannot switch the token off, even when the repository is mounted over the home directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nbenv.run import status_code
from tests.e2e.conftest import docker, nbenv, project
from tests.unit.test_token_routing import listener

pytestmark = [pytest.mark.e2e, pytest.mark.security]

NAME = "hostile-v6"
MARKER = "/tmp/nbenv-hostile-config-loaded"
NO_TOKEN_PY = (
    f"open({MARKER!r}, 'w').close()\n"
    "c.IdentityProvider.token = ''\nc.ServerApp.token = ''\nc.ServerApp.password = ''\n"
    "c.ServerApp.disable_check_xsrf = True\n"
)
NO_TOKEN_JSON = json.dumps({"IdentityProvider": {"token": ""}, "ServerApp": {"token": "", "password": ""}})
# Every place a Jupyter server might read configuration from, below the mounted home and its working directory.
HOSTILE_FILES = {
    ".jupyter/jupyter_server_config.py": NO_TOKEN_PY,
    ".jupyter/jupyter_server_config.json": NO_TOKEN_JSON,
    ".jupyter/jupyter_lab_config.py": NO_TOKEN_PY,
    ".jupyter/jupyter_config.json": NO_TOKEN_JSON,
    ".local/etc/jupyter/jupyter_server_config.json": NO_TOKEN_JSON,
    ".local/etc/jupyter/jupyter_server_config.d/no-token.json": NO_TOKEN_JSON,
    "jupyter_server_config.py": NO_TOKEN_PY,
    "jupyter_server_config.json": NO_TOKEN_JSON,
    "jupyter_lab_config.py": NO_TOKEN_PY,
}
SPEC = f"""\
spec_version = 1
name = "{NAME}"
extends = "base"
importable = false

[[mounts]]
source = "hostile-home"
target = "/home/jovyan"

[jupyter]
bind = "::1"
default_url = "/lab?reset"
"""


def get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def ipv6_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", port))
        except OSError:
            return False
    return True


def containers() -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project(NAME)}").stdout.split()


def test_a_v6_jupyter_gets_the_token_a_listener_on_127_0_0_1_nothing_and_repo_config_cannot_drop_it(
    e2e_workspace: Path, base_image: str
) -> None:
    root = e2e_workspace
    home = root / "hostile-home"
    for rel, text in HOSTILE_FILES.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    (root / "environments" / f"{NAME}.toml").write_text(SPEC)
    exclude = root / ".git" / "info" / "exclude"
    exclude_before = exclude.read_text() if exclude.exists() else ""
    exclude.write_text(exclude_before + f"/hostile-home/\n/environments/{NAME}.toml\n/docker/{NAME}/\n")
    if os.geteuid() == 0:
        for path in [home, *home.rglob("*")]:
            os.chown(path, 1000, 100)
    server, seen = listener("127.0.0.1")  # another local user's server, on the port Jupyter gets on ::1
    port = server.server_address[1]
    assert ipv6_port_free(port)
    try:
        result = nbenv("up", NAME, "--port", str(port), cwd=root)
        assert result.returncode == 0, result.stderr[-4000:]
        url = result.stdout.strip()
        match = re.fullmatch(rf"http://\[::1\]:{port}/lab\?reset&token=([A-Za-z0-9_-]{{43}})", url)
        assert match, url
        token = match.group(1)
        assert seen == [], "the listener on 127.0.0.1 received no request (so no token)"
        assert get(url) == 200, "the printed URL answers"
        assert get(f"http://[::1]:{port}/api/status", token) == 200
        assert get(f"http://[::1]:{port}/api/status") == 403, "the committed configuration did not drop the token"
        assert get(f"http://[::1]:{port}/api/status", "wrong") == 403
        (container,) = containers()
        inside = docker("exec", container, "sh", "-c", f"jupyter --config-dir; test -e {MARKER} && echo LOADED; true")
        assert inside.stdout.split() == ["/opt/nbenv/jupyter/config"], inside.stdout + inside.stderr
        assert seen == []
        assert nbenv("down", NAME, cwd=root).returncode == 0

        # A probe that times out removes the container this `up` started (it used to stay up).
        failed = nbenv("up", NAME, "--port", str(port), "--timeout", "0.1", cwd=root)
        assert failed.returncode == 9, failed.stderr[-2000:]
        assert re.search(rf"Jupyter did not answer on \[::1\]:{port} within 0\.1 s$", failed.stderr.splitlines()[-2])
        assert containers() == [], "nothing left running"
        assert status_code(port, None, host="::1") is None
        assert seen == []
    finally:
        nbenv("down", NAME, cwd=root, timeout=120)
        server.shutdown()
        server.server_close()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(root / "docker" / NAME, ignore_errors=True)
        (root / "environments" / f"{NAME}.toml").unlink(missing_ok=True)
        exclude.write_text(exclude_before)
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [image for image in images if f"/{NAME}:" in image]
        if mine:
            docker("rmi", "--force", *mine, check=False)
    assert containers() == []
