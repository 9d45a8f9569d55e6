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

from nbenv.running.jupyter import status_code
from tests.e2e.conftest import docker, free_port, nbenv, project
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

# A mount over the whole home (/home/jovyan) is refused at validation; these reach the same places.
[[mounts]]
source = "hostile-home"
target = "/home/jovyan/work"

[[mounts]]
source = "hostile-home/.jupyter"
target = "/home/jovyan/.jupyter"

[[mounts]]
source = "hostile-home/.local"
target = "/home/jovyan/.local"

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


@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
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


@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_a_base_image_that_drops_the_token_is_stopped_unless_the_spec_opts_in(
    e2e_workspace: Path, base_image: str
) -> None:
    """Belt and braces on the real engine: a configuration nbenv cannot pin (here a custom base image's
    /etc/jupyter, which Jupyter always reads) switches the token off. `up` sees the server answer without
    the token, stops it and fails with one line; with `[jupyter] token = false` it starts, and warns."""
    root, name = e2e_workspace, "open-base"
    evil = f"{base_image.rsplit(':', 1)[0]}-open:1"
    helper = f"{project(name)}-maker"
    config = json.dumps({"IdentityProvider": {"token": ""}, "ServerApp": {"token": ""}})
    made = docker(
        "run", "--name", helper, "--user", "0", base_image, "sh", "-c",
        f"mkdir -p /etc/jupyter && printf '%s' '{config}' > /etc/jupyter/jupyter_server_config.json",
        check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert docker("commit", helper, evil, check=False).returncode == 0
    docker("rm", helper, check=False)
    spec = root / "environments" / f"{name}.toml"
    body = f'spec_version = 1\nname = "{name}"\nbase_image = "{evil}"\ngroups = ["notebook"]\nimportable = false\n'
    exclude = root / ".git" / "info" / "exclude"
    exclude_before = exclude.read_text() if exclude.exists() else ""
    exclude.write_text(exclude_before + f"/environments/{name}.toml\n/docker/{name}/\n")
    port = free_port()
    try:
        spec.write_text(body)
        refused = nbenv("up", name, "--port", str(port), cwd=root)
        assert refused.returncode == 9, refused.stderr[-3000:]
        lines = refused.stderr.splitlines()
        assert re.fullmatch(
            rf"{project(name)}: Jupyter on 127\.0\.0\.1:{port} answered 200 without the token instead of refusing "
            r"\(403\), so anyone who reaches the port could run code: stopped it",
            lines[-2],
        ), lines[-2]
        assert lines[-1].startswith("  hint: a Jupyter configuration in the image switches the token off")
        assert containers_of(name) == [] and status_code(port, None, host="127.0.0.1") is None

        spec.write_text(body + "\n[jupyter]\ntoken = false\n")
        opened = nbenv("up", name, "--port", str(port), cwd=root)
        assert opened.returncode == 0, opened.stderr[-3000:]
        assert opened.stdout.strip() == f"http://127.0.0.1:{port}/lab", "no token in the URL: there is none"
        assert "Jupyter asks for no token ([jupyter] token = false" in opened.stderr
        assert status_code(port, None, host="127.0.0.1") == 200
        again = nbenv("up", name, "--port", str(port), cwd=root)
        assert again.returncode == 0 and "asks for no token" in again.stderr, "the warning comes on every `up`"
    finally:
        nbenv("down", name, cwd=root, timeout=120)
        spec.unlink(missing_ok=True)
        shutil.rmtree(root / "docker" / name, ignore_errors=True)
        exclude.write_text(exclude_before)
        docker("rm", "--force", helper, check=False)
        images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
        mine = [image for image in images if f"/{name}:" in image or image == evil]
        if mine:
            docker("rmi", "--force", *mine, check=False)
    assert containers_of(name) == []


def containers_of(name: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project(name)}").stdout.split()
