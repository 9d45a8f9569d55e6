"""`nbenv hub`, the pure parts: [tool.nbenv.hub] settings, profiles -> profiles.json and the fixed configs
(loaded by JupyterHub's own config loader, their pre-spawn hook run on a stand-in spawner), the hub layer's
refusals, the hub's secrets, golden files of docker/hub/."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbenv.errors import SpecError
from nbenv.hub import generate as hub_generate_module
from nbenv.hub.generate import offered, singleuser_requirements, write_hub
from nbenv.hub.profiles import DataMount, HubProfile
from nbenv.hub.render import CONFIG, PROFILES, SWARM_CONFIG, files, fixed, hub_id, layer, profiles_json
from nbenv.hub.run import SECRET_FILES, ensure_secrets
from nbenv.project import Project
from nbenv.server_env import SINGLEUSER_PINS, parse, shipped
from nbenv.spec.models import HubSettings, RepoConfig
from nbenv.workspace import Workspace
from tests.conftest import REPO, run_cli, snapshot

GOLDEN = REPO / "tests" / "golden" / "hub"

LAB = HubProfile(
    name="lab",
    display_name='Python (lab) "quoted" {braces}',
    description="The project's own JupyterLab",
    image="nbenv/lab:hub-0123456789ab",
    kernel="lab",
    cpus=1.5,
    memory="4g",
    shm_size="1g",
    data=(DataMount("data/processed/pems", "/home/jovyan/work/data/processed/pems"),),
    environment=(("GREETING", 'a "quoted" {username} $(HOME) %U'), ("TZ", "UTC")),
    default_url="/lab/tree/notebooks/a%20b$(HOME)%U.ipynb?reset#top",
)
SERVER = HubProfile(
    name="server",
    display_name="Python (server)",
    description="nbenv's server",
    image="nbenv/server:hub-ba9876543210",
    kernel="server",
    cpus=None,
    memory=None,
    shm_size=None,
    data=(DataMount("data/{user}/x", "/home/jovyan/work/x"),),
    nbenv_server=True,
)
SINGLEUSER_TEXT = "# pins\njupyterhub==6.1.1 \\\n    --hash=sha256:" + "0" * 64 + "\n"


def rendered() -> dict[str, str]:
    layers = [
        layer(LAB, from_image="nbenv/lab:ck-0123456789ab", requirements=None),
        layer(SERVER, from_image="nbenv/server:ck-ba9876543210", requirements=SINGLEUSER_TEXT),
    ]
    settings_ = HubSettings(admin_users=["bob", "alice"])
    return files(
        [LAB, SERVER], settings_, hub="nbenv-hub-0123456789ab", layers=layers, base_image="nbenv/debian-python:bookworm"
    )


@pytest.mark.parametrize(
    "name",
    [CONFIG, SWARM_CONFIG, PROFILES, "image/Dockerfile", "singleuser/lab/Dockerfile", "singleuser/server/Dockerfile"],
)
def test_golden_hub_files(name: str) -> None:
    """docker/hub/ byte for byte. Refresh with NBENV_UPDATE_GOLDEN=1 after a deliberate change."""
    golden = GOLDEN / name
    actual = rendered()[name]
    if os.environ.get("NBENV_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert actual == golden.read_text()


# --- the configs, loaded as JupyterHub loads them ----------------------------------------------------


def load_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = CONFIG, hub_files: dict[str, str] | None = None
) -> Any:
    """docker/hub/ (`hub_files`, default `rendered()`) loaded as JupyterHub loads it."""
    from traitlets.config.loader import PyFileConfigLoader

    out = tmp_path / "hub"
    out.mkdir(parents=True)
    for rel, text in (rendered() if hub_files is None else hub_files).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for secret in SECRET_FILES:
        (secrets / secret).write_text(f"{secret}-value\n")
    monkeypatch.setenv("NBENV_HUB_REPO", "/srv/repo {x}")
    monkeypatch.setenv("NBENV_HUB_SECRETS", str(secrets))
    monkeypatch.setenv("NBENV_HUB_STATE", str(tmp_path / "state"))
    return PyFileConfigLoader(name, path=str(out)).load_config()


def spawn(config: Any, user_options: dict[str, str], **attributes: Any) -> SimpleNamespace:
    spawner = SimpleNamespace(user_options=user_options, **attributes)
    config.Spawner.pre_spawn_hook(spawner)
    return spawner


def test_the_config_offers_every_profile_with_its_limits_data_and_work(tmp_path: Path, monkeypatch: Any) -> None:
    config = load_config(tmp_path, monkeypatch)
    assert config.JupyterHub.authenticator_class == "native", "never a dummy authenticator"
    assert config.NativeAuthenticator.open_signup is False
    assert config.Authenticator.admin_users == {"alice", "bob"}
    assert config.DockerSpawner.allowed_images == {
        'lab: Python (lab) "quoted" {braces}': LAB.image,
        "server: Python (server)": SERVER.image,
    }
    assert config.ConfigurableHTTPProxy.auth_token == "proxy_token-value"
    assert config.JupyterHub.cookie_secret_file.endswith("/cookie_secret")
    lab = spawn(config, {"image": 'lab: Python (lab) "quoted" {braces}'})
    assert lab.image == LAB.image and lab.mem_limit == 4 << 30 and lab.cpu_limit == 1.5
    assert lab.extra_host_config == {
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": False,
        "shm_size": 1 << 30,
    }
    assert lab.volumes == {
        "nbenv-hub-0123456789ab-work-{username}": "/home/jovyan/work",
        "/srv/repo {{x}}/data/processed/pems": {"bind": "/home/jovyan/work/data/processed/pems", "mode": "ro"},
    }
    assert lab.cmd[0] == "jupyterhub-singleuser" and "--MappingKernelManager.default_kernel_name=lab" in lab.cmd
    assert lab.environment == {
        "GREETING": 'a "quoted" {username} $(HOME) %U',  # DockerSpawner formats no environment value
        "TZ": "UTC",
        "JUPYTER_TOKEN_FILE": "",
        "NBENV_HUB_PROFILE": "lab",
    }
    # JupyterHub formats default_url (Spawner.format_string) and reads %U as the user's name: neither applies.
    assert lab.default_url.format(username="alice", base_url="/user/alice/") == LAB.default_url.replace("%U", "%25U")
    server = spawn(config, {})  # the API without options: the first profile
    assert server.image == LAB.image
    server = spawn(config, {"image": "server: Python (server)"})
    assert server.cmd[0] == "/opt/nbenv/server/bin/jupyterhub-singleuser"
    assert server.mem_limit is None and "shm_size" not in server.extra_host_config
    assert server.default_url == "/lab" and server.environment == {
        "JUPYTER_TOKEN_FILE": "",
        "NBENV_HUB_PROFILE": "server",
    }
    assert "/srv/repo {{x}}/data/{{user}}/x" in server.volumes, "braces never reach DockerSpawner's format()"
    with pytest.raises(ValueError, match="no such profile"):
        spawn(config, {"image": "../../etc"})


LAB_OPTION = 'lab: Python (lab) "quoted" {braces}'


def test_the_swarm_variant_keeps_the_profiles_and_spawns_services(tmp_path: Path, monkeypatch: Any) -> None:
    config = load_config(tmp_path, monkeypatch, SWARM_CONFIG)
    assert config.JupyterHub.spawner_class == "dockerspawner.SwarmSpawner"
    assert config.SwarmSpawner.extra_endpoint_spec == {"mode": "dnsrr"}, "no virtual IP: no IPVS needed"
    assert config.SwarmSpawner.extra_create_kwargs == {"labels": {"nbenv.hub": "nbenv-hub-0123456789ab"}}
    spawner = spawn(config, {"image": "server: Python (server)"}, escaped_name="alice")
    assert spawner.image == SERVER.image and spawner.extra_host_config == {} and spawner.volumes == {}
    spec = spawner.extra_container_spec
    assert spec["cap_drop"] == ["ALL"] and spec["labels"] == {"nbenv.hub": "nbenv-hub-0123456789ab"}
    assert spec["healthcheck"] == {"Test": ["NONE"]}, "the image's probes /api, which a hub's server lacks"
    work, data = spec["mounts"]
    assert work == {
        "Target": "/home/jovyan/work",
        "Source": "nbenv-hub-0123456789ab-work-alice",  # the same volume as under DockerSpawner
        "Type": "volume",
        "ReadOnly": False,
        "VolumeOptions": {"Labels": {"nbenv.hub": "nbenv-hub-0123456789ab"}},
    }
    # A bind mount's source is never formatted by DockerSpawner here: the path as it is, braces and all.
    assert data == {"Target": "/home/jovyan/work/x", "Source": "/srv/repo {x}/data/{user}/x", "Type": "bind"} | {
        "ReadOnly": True
    }
    lab = spawn(config, {"image": LAB_OPTION}, escaped_name="bob")
    assert lab.mem_limit == 4 << 30 and lab.cpu_limit == 1.5
    assert lab.environment["GREETING"] == dict(LAB.environment)["GREETING"], "a service gets the spec's [env]"
    assert lab.default_url.format(username="bob") == LAB.default_url.replace("%U", "%25U")
    assert [(m["Target"], m["Type"], m["ReadOnly"]) for m in lab.extra_container_spec["mounts"]] == [
        ("/home/jovyan/work", "volume", False),
        ("/home/jovyan/work/data/processed/pems", "bind", True),
        ("/dev/shm", "tmpfs", False),
    ]
    assert lab.extra_container_spec["mounts"][2]["TmpfsOptions"] == {"SizeBytes": 1 << 30}
    with pytest.raises(ValueError, match="no such profile"):
        spawn(config, {"image": "../../etc"}, escaped_name="eve")


class FakeImages:
    def __init__(self, found: dict[str, Any]) -> None:
        self.found = found
        self.asked: list[str] = []

    def inspect_image(self, image: str) -> dict[str, Any]:
        self.asked.append(image)
        return self.found


@pytest.mark.parametrize(
    ("repo_digests", "expected"),
    [
        ([], "sha256:" + "1" * 64),  # never pushed: by ID, which the engine never tries to pull
        (["nbenv/server@sha256:" + "2" * 64], "nbenv/server@sha256:" + "2" * 64),  # pushed: by digest
        (["other/repo@sha256:" + "3" * 64], "sha256:" + "1" * 64),  # another repository's digest is not this one
        (["nbenv/serv@sha256:" + "4" * 64, "nbenv/server@sha256:" + "5" * 64], "nbenv/server@sha256:" + "5" * 64),
        # pushed by `nbenv image push` (REGISTRY[/PATH]/PREFIX/NAME): that registry's digest
        (["127.0.0.1:5000/nbenv/server@sha256:" + "6" * 64], "127.0.0.1:5000/nbenv/server@sha256:" + "6" * 64),
        (
            ["reg.example:5000/team/nbenv/server@sha256:" + "7" * 64],
            "reg.example:5000/team/nbenv/server@sha256:" + "7" * 64,
        ),
        (["127.0.0.1:5000/x-nbenv/server@sha256:" + "8" * 64], "sha256:" + "1" * 64),  # not a suffix at a `/`
    ],
)
def test_the_swarm_service_names_the_chosen_image_pinned(
    tmp_path: Path, monkeypatch: Any, repo_digests: list[str], expected: str
) -> None:
    config = load_config(tmp_path, monkeypatch, SWARM_CONFIG)
    client = FakeImages({"Id": "sha256:" + "1" * 64, "RepoDigests": repo_digests})
    spawner = SimpleNamespace(user_options={"image": "server: Python (server)"}, client=client)
    allowed = config.SwarmSpawner.allowed_images(spawner)
    assert allowed == {LAB_OPTION: LAB.image, "server: Python (server)": expected}
    assert client.asked == [SERVER.image], "only the chosen profile's image is looked up"


# --- hostile values never become code ---------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@pytest.mark.security
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(display=_TEXT, description=_TEXT, path=st.from_regex(r"[a-z{}'\"$\\ ]{1,12}", fullmatch=True))
def test_spec_values_land_only_in_json_and_round_trip(display: str, description: str, path: str) -> None:
    hostile = HubProfile(
        name="lab",
        display_name=display,
        description=description,
        image=LAB.image,
        kernel="lab",
        cpus=None,
        memory=None,
        shm_size=None,
        data=(DataMount(path, "/home/jovyan/work/d"),),
    )
    text = profiles_json([hostile], HubSettings(), hub="h")
    form = hostile_form(text)
    assert "<" not in form.split("<select", 1)[1].replace("<option", "").replace("</option>", "").replace(
        "</select>", ""
    ), "no tag from a spec value reaches the profile form"
    loaded = json.loads(text)["profiles"][0]
    assert (loaded["display_name"], loaded["description"], loaded["data"][0]["path"]) == (display, description, path)
    out = files([hostile], HubSettings(), hub="h", layers=[], base_image="nbenv/debian-python:bookworm")
    assert out[CONFIG] == fixed(CONFIG) and out[SWARM_CONFIG] == fixed(SWARM_CONFIG), "the configs never change"


def hostile_form(profiles_text: str) -> str:
    """The profile form the fixed config renders for these profiles (loaded as JupyterHub loads it)."""
    import tempfile

    from traitlets.config.loader import PyFileConfigLoader

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / CONFIG).write_text(fixed(CONFIG))
        (root / PROFILES).write_text(profiles_text)
        for secret in SECRET_FILES:
            (root / secret).write_text("x")
        saved = {k: os.environ.get(k) for k in ("NBENV_HUB_REPO", "NBENV_HUB_SECRETS")}
        os.environ.update(NBENV_HUB_REPO="/repo", NBENV_HUB_SECRETS=tmp)
        try:
            config = PyFileConfigLoader(CONFIG, path=tmp).load_config()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return str(config.DockerSpawner.options_form(SimpleNamespace()))


@pytest.mark.security
def test_the_profile_form_escapes_spec_values() -> None:
    hostile = HubProfile(
        name="lab",
        display_name='<img src=x onerror="alert(1)"> & </option></select><script>x()</script>',
        description="",
        image=LAB.image,
        kernel="lab",
        cpus=None,
        memory=None,
        shm_size=None,
        data=(),
    )
    form = hostile_form(profiles_json([hostile, SERVER], HubSettings(), hub="h"))
    assert "<script>" not in form and "<img" not in form and form.count("<option ") == 2
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;/option&gt;" in form


# --- settings: one line, nothing written ------------------------------------------------------------

BAD_SETTINGS = [
    ('bind = "localhost"', "bind", "is not an IP address"),
    ("port = 0", "port", "greater than or equal to 1"),
    ("port = 70000", "port", "less than or equal to 65535"),
    ('authenticator = "dummy"', "authenticator", "'native'"),
    ('authenticator = "pam"', "authenticator", "'native'"),
    ('admin_users = ["Bob Smith"]', "admin_users[0]", "is not a hub user name"),
    ('admin_users = ["a\\nb"]', "admin_users[0]", "is not a hub user name"),
    ('network = "host net"', "network", "is not a Docker network name"),
    ('network = "-x"', "network", "is not a Docker network name"),
    ('environments = ["Bad Name"]', "environments[0]", "not a valid environment name"),
    ("environments = []", "environments", "at least 1"),
    ('environments = ["missing"]', "environments[0]", "no environment 'missing'"),
    ('environments = ["base", "base"]', "environments[1]", "listed twice"),
    ('unknown = "x"', "unknown", "unknown key (allowed: environments, bind"),
]


@pytest.mark.badinput
@pytest.mark.parametrize(("line", "field", "message"), BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS])
def test_bad_hub_settings_are_one_line_and_write_nothing(workspace: Path, line: str, field: str, message: str) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.nbenv.hub]\n{line}\n")
    before = snapshot(workspace)
    result = run_cli("hub", "generate", cwd=workspace)
    assert result.code == 3, result.err
    first = result.err_lines[0]
    assert first.startswith("error: pyproject.toml:") or first.startswith("pyproject.toml:"), first
    assert f"tool.nbenv.hub.{field}" in first and message in first, first
    assert len(result.err_lines) <= 2 and "Traceback" not in result.err
    assert snapshot(workspace) == before


def test_default_settings_serve_every_environment_on_loopback(workspace: Path) -> None:
    ws = Workspace(workspace)
    assert ws.config.hub == HubSettings()
    assert (ws.config.hub.bind, ws.config.hub.port, ws.config.hub.authenticator) == ("127.0.0.1", 8000, "native")
    assert offered(ws) == ["base", "traffic-analysis"]


def test_the_hub_id_is_namespaced_by_the_image_prefix() -> None:
    ids = {hub_id(RepoConfig(image_prefix=p)) for p in ("nbenv", "team.a", "team-a", "team/a")}
    assert len(ids) == 4 and all(len(i) <= 63 for i in ids)


# --- single-user servers: the layer, or a clear refusal ---------------------------------------------


@pytest.mark.badinput
def test_an_environment_whose_own_jupyter_lacks_jupyterhub_is_refused_with_the_fix(workspace: Path) -> None:
    project = Project(Workspace(workspace))
    with pytest.raises(SpecError) as caught:
        singleuser_requirements(project, project.plan("base"))
    text = str(caught.value)
    assert (
        text.startswith("environments/base.toml:")
        and "groups: its groups run Jupyter but install no jupyterhub" in text
    )
    assert 'add jupyterhub = "==6.1.1"' in (caught.value.hint or "")
    result = run_cli("hub", "generate", cwd=workspace)
    assert result.code == 3 and "install no jupyterhub" in result.err_lines[0] and len(result.err_lines) == 2


@pytest.mark.badinput
def test_an_environment_pinning_another_jupyterhub_is_refused(workspace: Path, monkeypatch: Any) -> None:
    (workspace / "environments/hub.toml").write_text(
        'spec_version = 1\nname = "hub"\nextends = "base"\ngroups = ["nbenv-singleuser"]\n'
    )
    project = Project(Workspace(workspace))
    assert singleuser_requirements(project, project.plan("hub")) is None, "its groups carry the hub's jupyterhub"
    monkeypatch.setattr(hub_generate_module, "hub_version", lambda: "9.9.9")
    with pytest.raises(SpecError, match=r"pin jupyterhub 6\.1\.1, but the hub runs jupyterhub 9\.9\.9"):
        singleuser_requirements(project, project.plan("hub"))


def test_nbenvs_server_gets_the_singleuser_pins_it_lacks_hash_checked(workspace: Path) -> None:
    (workspace / "environments/plain.toml").write_text('spec_version = 1\nname = "plain"\ngroups = ["models"]\n')
    project = Project(Workspace(workspace))
    plan = project.plan("plain")
    assert plan.nbenv_server
    text = singleuser_requirements(project, plan)
    assert text is not None
    names = {r.name for r in parse(text)}
    assert "jupyterhub" in names and "jupyter-server" not in names and "tornado" not in names
    shipped_text = shipped(SINGLEUSER_PINS)
    assert all(r.text in shipped_text for r in parse(text)), "byte for byte the shipped (hash-checked) pins"


# --- secrets ----------------------------------------------------------------------------------------


@pytest.mark.security
def test_hub_secrets_are_private_ignored_and_never_in_generated_files(workspace: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    project = Project(Workspace(workspace))
    directory = ensure_secrets(project)
    values = {}
    for name in SECRET_FILES:
        path = directory / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        values[name] = path.read_text().strip()
        assert len(values[name]) == 64
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert ensure_secrets(project) == directory and values == {
        n: (directory / n).read_text().strip() for n in SECRET_FILES
    }, "kept across restarts"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".nbenv/hub/secrets/api_token"], cwd=workspace)
    assert ignored.returncode == 0
    generated = "\n".join(rendered().values())
    assert not any(v in generated for v in values.values())
    for secret in SECRET_FILES:  # the configs read them at run time, by name
        assert f'"{secret}"' in fixed(CONFIG)


@pytest.mark.security
def test_a_symlinked_secret_is_refused(workspace: Path, tmp_path: Path) -> None:
    project = Project(Workspace(workspace))
    directory = ensure_secrets(project)
    (directory / "api_token").unlink()
    (directory / "api_token").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Exception, match="is not a regular file"):
        ensure_secrets(project)


# --- docker/hub/: written like docker/NAME/ (manifest, drift, links) ---------------------------------


def test_docker_hub_is_written_atomically_with_a_manifest_and_checked_for_drift(workspace: Path) -> None:
    ws = Workspace(workspace)
    files_ = rendered()
    result = write_hub(ws, files_, check=False)
    assert "docker/hub/.nbenv-manifest" in result.changed and not result.unchanged
    assert not result.stale and not result.kept
    assert write_hub(ws, files_, check=True).changed == []
    (workspace / "docker/hub/profiles.json").write_text("{}")
    assert write_hub(ws, files_, check=True).changed == ["docker/hub/profiles.json"]
    assert (workspace / "docker/hub/profiles.json").read_text() == "{}", "--check writes nothing"
    fewer = {k: v for k, v in files_.items() if not k.startswith("singleuser/server/")}
    assert write_hub(ws, fewer, check=False).stale == [
        "docker/hub/singleuser/server/Dockerfile",
        "docker/hub/singleuser/server/jupyterhub-singleuser.txt",
    ]
    # `nbenv generate --check` knows docker/hub/ is nbenv hub's, not an orphaned environment.
    assert run_cli("generate", cwd=workspace).code == 0
    result = run_cli("generate", "--check", cwd=workspace)
    assert result.code == 0, result.err


@pytest.mark.security
def test_a_symlinked_docker_hub_is_refused_and_nothing_is_written(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "docker").mkdir(exist_ok=True)
    (workspace / "docker/hub").symlink_to(outside)
    with pytest.raises(SpecError, match="is a symlink"):
        write_hub(Workspace(workspace), rendered(), check=False)
    assert not list(outside.iterdir())


@pytest.mark.badinput
def test_an_environment_named_hub_is_refused(workspace: Path) -> None:
    (workspace / "environments/hub.toml").write_text('spec_version = 1\nname = "hub"\ngroups = ["models"]\n')
    before = snapshot(workspace)
    result = run_cli("hub", "generate", cwd=workspace)
    assert result.code == 3 and "would share docker/hub/" in result.err_lines[0], result.err
    assert snapshot(workspace) == before


@pytest.mark.badinput
@pytest.mark.parametrize("bind", ["localhost", "127.0.0.1; rm -rf /", "", "::1\n"])
def test_a_bad_bind_address_is_one_line_before_anything_starts(workspace: Path, bind: str) -> None:
    before = snapshot(workspace)
    result = run_cli("hub", "up", "--bind", bind, cwd=workspace)
    assert result.code == 2, result.err
    assert result.err_lines[0].startswith("--bind: ") and "is not an IP address" in result.err_lines[0], result.err
    assert snapshot(workspace) == before


@pytest.mark.parametrize("name", ["image/Dockerfile", "singleuser/lab/Dockerfile", "singleuser/server/Dockerfile"])
def test_hadolint_has_no_findings_in_the_hub_dockerfiles(tmp_path: Path, name: str) -> None:
    from tests.unit.test_generated_files_lint import HADOLINT_CONFIG, _tool

    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(rendered()[name])
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--config", str(config), "-f", "json", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout


# --- `nbenv hub up --swarm`: the engine must be a swarm manager, the network an attachable overlay -----


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("swarm", "message", "hint"),
    [
        ({}, "not part of a swarm", "docker swarm init --advertise-addr 127.0.0.1"),
        ({"LocalNodeState": "inactive"}, "not part of a swarm", "docker swarm init"),
        ({"LocalNodeState": "pending"}, "not part of a swarm", "docker swarm init"),
        ({"LocalNodeState": "error"}, "not part of a swarm", "docker swarm init"),
        ({"LocalNodeState": "locked"}, "not part of a swarm", "docker swarm init"),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "is a swarm worker", "on a manager node"),
    ],
)
def test_the_swarm_hub_needs_an_active_manager_in_one_line(swarm: dict[str, Any], message: str, hint: str) -> None:
    from nbenv.errors import UsageError
    from nbenv.hub.run import require_manager

    with pytest.raises(UsageError) as caught:
        require_manager({"Swarm": swarm})
    assert caught.value.message.startswith("--swarm: ") and message in caught.value.message
    assert hint in (caught.value.hint or "") and "\n" not in caught.value.message
    assert require_manager({"Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "n1"}}) == "n1"


class FakeNetworks:
    def __init__(self, *networks: dict[str, Any]) -> None:
        self.listed = list(networks)
        self.created: list[tuple[str, dict[str, Any]]] = []

    def networks(self, names: list[str]) -> list[dict[str, Any]]:
        return [n for n in self.listed if names[0] in n["Name"]]  # the engine's filter matches substrings

    def create_network(self, name: str, **kwargs: Any) -> None:
        self.created.append((name, kwargs))


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ({"Name": "team", "Driver": "bridge"}, "'team' is a bridge network"),
        ({"Name": "team", "Driver": "overlay", "Attachable": False}, "'team' is a non-attachable overlay network"),
        ({"Name": "team", "Driver": "host"}, "'team' is a host network"),
        ({"Name": "team", "Driver": "macvlan", "Attachable": True}, "'team' is a macvlan network"),
    ],
)
def test_the_swarm_hub_refuses_a_network_it_cannot_join(existing: dict[str, Any], message: str) -> None:
    from nbenv.errors import UsageError
    from nbenv.hub.run import ensure_network

    api = FakeNetworks(existing)
    with pytest.raises(UsageError) as caught:
        ensure_network(api, "team", hub="h", swarm=True)
    assert caught.value.message == (
        f"[tool.nbenv.hub] network: {message}; the swarm hub needs an attachable overlay one"
    )
    assert api.created == [], "nothing made"


def test_the_hub_network_is_made_as_needed_and_matched_by_its_whole_name() -> None:
    from nbenv.hub.run import ensure_network

    api = FakeNetworks({"Name": "team-other", "Driver": "bridge"})  # a longer name is not this network
    ensure_network(api, "team", hub="h", swarm=True)
    assert api.created == [("team", {"driver": "overlay", "attachable": True, "labels": {"nbenv.hub": "h"}})]
    api = FakeNetworks({"Name": "team-other", "Driver": "overlay", "Attachable": True})
    ensure_network(api, "team", hub="h", swarm=False)
    assert api.created == [("team", {"driver": "bridge", "labels": {"nbenv.hub": "h"}})]
    api = FakeNetworks({"Name": "team", "Driver": "overlay", "Attachable": True})
    ensure_network(api, "team", hub="h", swarm=True)
    assert api.created == [], "an attachable overlay network of that name is used as it is"


class FakeSwarmEngine:
    """An engine holding a hub, two users' services and their task containers (the swarm removes a
    service's tasks itself, a moment after the service)."""

    def __init__(self, hub: str) -> None:
        from nbenv.adapters.engine import ContainerInfo

        self.hub = hub
        self.calls: list[tuple[str, str]] = []
        self.service_names = [f"{hub}-alice", f"{hub}-bob"]
        self.tasks = {
            f"{name}.1.abc": ContainerInfo("id", f"{name}.1.abc", "running", "", "i", {}) for name in self.service_names
        }
        self.polls = 0
        self.api = self

    # the Engine adapter's part
    def container_state(self, name: str) -> str:
        return "running" if name == self.hub and ("rm", self.hub) not in self.calls else ""

    def remove_containers(self, names: list[str]) -> None:
        self.calls += [("rm", name) for name in names]

    def containers(self, labels: list[str]) -> list[Any]:
        self.polls += 1
        if all(("service rm", n) in self.calls for n in self.service_names) and self.polls > 2:
            self.tasks.clear()  # the swarm has removed them
        return list(self.tasks.values())

    def remove_network(self, name: str) -> bool:
        self.calls.append(("network rm", name))
        return True

    # the Engine API's part
    def services(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        self.calls.append(("services", filters["label"]))
        return [{"ID": name, "Spec": {"Name": name}} for name in self.service_names]

    def remove_service(self, name: str) -> None:
        self.calls.append(("service rm", name))


def test_hub_down_removes_the_services_and_lets_the_swarm_remove_their_tasks(workspace: Path, monkeypatch: Any) -> None:
    from nbenv.hub import run

    project = Project(Workspace(workspace))
    hub = hub_id(project.ws.config)
    engine = FakeSwarmEngine(hub)
    monkeypatch.setattr(run, "_engine", lambda _project: engine)
    monkeypatch.setattr(run.time, "sleep", lambda _seconds: None)
    stopped = run.down(project, say=lambda _line: None)
    assert stopped == [hub, f"{hub}-alice", f"{hub}-bob"]
    assert engine.calls[0] == ("rm", hub), "the hub first: it starts nothing meanwhile"
    assert ("service rm", f"{hub}-alice") in engine.calls and ("service rm", f"{hub}-bob") in engine.calls
    assert [c for c in engine.calls if c[0] == "rm"] == [("rm", hub)], "no task container removed under the swarm"
    assert engine.calls[-1] == ("network rm", "nbenv-hub")
