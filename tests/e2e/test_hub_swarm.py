"""`nbenv hub up --swarm` on a real single-node swarm: the hub (SwarmSpawner) starts a user's server as a
swarm service, which answers through the hub's proxy and reads its data, read-only.

The module makes this engine a one-node swarm listening on 127.0.0.1 only (`docker swarm init`), and
always leaves it again (`docker swarm leave --force`), removing the services, containers, volumes and
networks it made. An engine that is already part of a swarm the test did not make is left alone: skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbenv.hub.render import LABEL
from tests.e2e.conftest import PREFIX, docker, nbenv
from tests.e2e.test_hub import ARTIFACTS, HUB, Hub, api, cleanup, hub_workspace, run_cell, start, user_token

pytestmark = pytest.mark.e2e

NETWORK = f"{PREFIX}-swarm"
GATEWAY = "docker_gwbridge"  # the bridge a swarm makes for its containers' outside traffic


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def remove_services() -> None:
    listed = docker("service", "ls", "-q", "--filter", f"label={LABEL}={HUB}", check=False).stdout.split()
    if listed:
        docker("service", "rm", *listed, check=False)


@pytest.fixture(scope="module")
def swarm_workspace(e2e_workspace: Path, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = hub_workspace(e2e_workspace, tmp_path_factory, network=NETWORK, environments=("hub-lab",))
    return root


@pytest.fixture(scope="module")
def swarm(swarm_workspace: Path) -> Iterator[None]:
    """A one-node swarm on 127.0.0.1 for this module, left again at the end (even on failure)."""
    state = swarm_state()
    if state != "inactive":
        pytest.skip(f"this engine is already part of a swarm ({state}) that this test did not make: left alone")
    # Not a swarm yet: `hub up --swarm` refuses in one line, before it builds or starts anything.
    refused = nbenv("hub", "up", "--swarm", cwd=swarm_workspace, timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 2, refused.stderr
    assert lines[0] == "--swarm: this Docker engine is not part of a swarm", lines
    assert "docker swarm init" in lines[1]
    assert not docker("ps", "-aq", "--filter", f"label={LABEL}={HUB}").stdout.split(), "nothing started"
    had_gateway = docker("network", "inspect", GATEWAY, check=False).returncode == 0
    init = docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377", check=False)
    try:
        assert init.returncode == 0, init.stderr
        yield
    finally:
        remove_services()
        cleanup(NETWORK)
        left = docker("swarm", "leave", "--force", check=False)
        if not had_gateway:
            docker("network", "rm", GATEWAY, check=False)
        assert left.returncode == 0, left.stderr
        assert swarm_state() == "inactive"


@pytest.fixture(scope="module")
def swarm_hub(swarm_workspace: Path, swarm: None) -> Iterator[Hub]:
    root = swarm_workspace
    cleanup(NETWORK)
    try:
        up = nbenv("hub", "up", "--swarm", cwd=root, timeout=1800)
        assert up.returncode == 0, up.stderr[-4000:]
        url = up.stdout.strip().splitlines()[-1]
        token = (root / ".nbenv/hub/secrets/api_token").read_text().strip()
        yield Hub(root, url, url.removesuffix("/hub/"), token, "")
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        logs = docker("logs", HUB, check=False)
        (ARTIFACTS / "swarm-hub.log").write_text(logs.stdout + logs.stderr)
        down = nbenv("hub", "down", cwd=root, timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]


def test_a_server_starts_as_a_swarm_service_and_answers_through_the_hub(swarm_hub: Hub) -> None:
    hub = swarm_hub
    network = json.loads(docker("network", "inspect", NETWORK).stdout)[0]
    assert network["Driver"] == "overlay" and network["Attachable"] is True
    hub_container = json.loads(docker("inspect", HUB).stdout)[0]
    assert hub_container["Config"]["Cmd"][-1].endswith("/swarm_config.py")
    assert hub_container["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostIp"] == "127.0.0.1"

    status, body = api(hub, "/hub/api/users/carol", method="POST")
    assert status == 201, body
    start(hub, "carol", "hub-lab")  # through the REST API, with nbenv's service token
    token = user_token(hub, "carol")
    status, body = api(hub, "/user/carol/api/status", token=token)
    assert status == 200 and "started" in json.loads(body), body

    # The server is a swarm service: the hub's label, no capabilities, the data read-only, carol's volume.
    services = docker("service", "ls", "--format", "{{.Name}}", "--filter", f"label={LABEL}={HUB}").stdout.split()
    assert services == [f"{HUB}-carol"]
    spec = json.loads(docker("service", "inspect", f"{HUB}-carol").stdout)[0]["Spec"]["TaskTemplate"]
    container = spec["ContainerSpec"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["Image"].startswith("sha256:"), "never pushed: named by ID, so the engine pulls nothing"
    mounts = {m["Target"]: m for m in container["Mounts"]}
    assert mounts["/home/jovyan/work"]["Source"] == f"{HUB}-work-carol" and mounts["/home/jovyan/work"]["Type"] == (
        "volume"
    )
    data = [m for m in container["Mounts"] if m["Type"] == "bind"]
    assert data and all(m.get("ReadOnly") for m in data), data
    assert spec["Networks"][0]["Target"] in (NETWORK, network["Id"])

    result = run_cell(hub, "carol", token, "/home/jovyan/work/data/processed/pems")
    assert result["files"], "carol reads the mounted data"
    assert result["data_write"] in ("OSError", "PermissionError"), f"carol cannot write the data: {result}"
    assert "carol.txt" in result["work"] and result["hub_token"] is True and result["uid"] == 1000, result

    status_out = nbenv("hub", "status", cwd=hub.root)
    assert f"{HUB}-carol: service" in status_out.stdout, status_out.stdout

    # down removes the service with the hub; carol's volume stays.
    down = nbenv("hub", "down", cwd=hub.root, timeout=300)
    assert down.returncode == 0, down.stderr
    assert not docker("service", "ls", "-q", "--filter", f"label={LABEL}={HUB}").stdout.split()
    assert docker("volume", "inspect", f"{HUB}-work-carol", check=False).returncode == 0
