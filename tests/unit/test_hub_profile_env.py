"""Issue 17: what a hub serves carries the spec's `[env]` and start page (`[jupyter] default_url`), as
`nbenv up` does, escaped where each lands, and a spec can never set a variable the hub sets itself.

The names a hub sets are read from the installed JupyterHub and KubeSpawner themselves (their `get_env`), so a
new variable in a new release is covered without editing this list."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbenv.errors import SpecError
from nbenv.hub.profiles import HubProfile, profile, spawner_template
from nbenv.hub.render import profile_data
from nbenv.plan import start_page
from nbenv.project import Project
from nbenv.running.jupyter import jupyter_url
from tests.conftest import REPO, run_cli, snapshot

SPEC = "environments/traffic-analysis.toml"
# What nbenv itself sets in a hub's servers and Jobs (the configs in nbenv/hub/files/, k8s_jobs).
NBENV_SETS = ("JUPYTER_TOKEN_FILE", "NBENV_HUB_PROFILE")


def hub_sets() -> list[str]:
    """Every variable JupyterHub's spawner and KubeSpawner set for a server (DockerSpawner adds only
    JUPYTER_IMAGE_SPEC, which KubeSpawner sets too), and nbenv's own."""
    from jupyterhub.spawner import Spawner
    from kubespawner import KubeSpawner

    names: set[str] = set(NBENV_SETS)
    for get_env in (Spawner.get_env, KubeSpawner.get_env):
        names |= set(re.findall(r"env\[['\"]([A-Z0-9_]+)['\"]\]", inspect.getsource(get_env)))
    return sorted(names)


HUB_SETS = hub_sets()


def test_the_list_of_the_hubs_variables_is_read_from_the_real_spawners() -> None:
    assert len(HUB_SETS) >= 30, HUB_SETS
    assert {"JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "MEM_LIMIT", "JUPYTER_IMAGE"} <= set(HUB_SETS)


@pytest.mark.badinput
@pytest.mark.parametrize("name", HUB_SETS)
def test_a_spec_cannot_set_a_variable_the_hub_sets_in_one_line(workspace: Path, name: str) -> None:
    """The spec's own rule (the one `nbenv up` applies to [env]): one line at the key, nothing written; and
    the hub's profile checks it again (a profile is never made with such a name)."""
    spec = workspace / SPEC
    spec.write_text(spec.read_text().replace('TZ = "UTC"\n', f'TZ = "UTC"\n{name.lower()} = "x"\n'))
    before = snapshot(workspace)
    result = run_cli("generate", "traffic-analysis", cwd=workspace)
    assert result.code == 3, result.err
    assert len(result.err_lines) == 1, result.err
    assert re.match(rf"^{SPEC}:\d+: env\.{name.lower()}: '{name.lower()}' ", result.err_lines[0]), result.err
    assert snapshot(workspace) == before
    plan = Project.discover(REPO).plan("traffic-analysis")
    env = plan.env.model_copy(update={"env": {**plan.env.env, name: "x"}})
    with pytest.raises(SpecError, match=rf"^{SPEC}: env\.{name}: '{name}' "):
        profile(dataclasses.replace(plan, env=env), image="nbenv/traffic-analysis:ck-0")


def test_the_demo_profile_has_its_env_and_start_page() -> None:
    project = Project.discover(REPO)
    p = profile(project.plan("traffic-analysis"), image="nbenv/traffic-analysis:ck-0")
    assert p.environment == (("TZ", "UTC"),) and p.default_url == "/lab"
    data = profile_data(p)
    assert (data["environment"], data["default_url"]) == ({"TZ": "UTC"}, "/lab")


_VALUE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)
_URL = st.from_regex(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%?-]{0,30}(#[a-z]{0,4})?", fullmatch=True)


@pytest.mark.security
@settings(max_examples=200, deadline=None)
@given(value=_VALUE, url=_URL)
def test_env_values_and_the_start_page_reach_the_hub_as_written(value: str, url: str) -> None:
    """profiles.json (json.dumps) keeps every [env] value as it is (DockerSpawner formats none); the start
    page, formatted by JupyterHub (`{username}`, `%U`), is `up`'s start page (no token in its query)."""
    base = HubProfile("lab", "Lab", "", "nbenv/lab:hub-0", "lab", None, None, None, ())
    p = dataclasses.replace(base, environment=(("VALUE", value),), default_url=start_page(url))
    loaded = json.loads(json.dumps(profile_data(p)))
    assert loaded["environment"] == {"VALUE": value}
    formatted = loaded["default_url"].format(username="alice", base_url="/user/alice/")
    assert formatted == start_page(url).replace("%U", "%25U")
    assert "token=" not in urlquery(formatted)
    # The page `up` opens, less its address and token: the same page.
    assert jupyter_url("127.0.0.1", 8888, None, url).removeprefix("http://127.0.0.1:8888") == start_page(url)


def urlquery(url: str) -> str:
    return "&" + url.split("?", 1)[1].split("#", 1)[0] if "?" in url else ""


def test_a_token_in_the_start_page_never_reaches_the_hub() -> None:
    assert start_page("/lab?token=abc&reset") == "/lab?reset"
    assert start_page("/lab/tree/x.ipynb?a=1&token=t#h") == "/lab/tree/x.ipynb?a=1#h"
    assert spawner_template("/tree/%U/{x}") == "/tree/%25U/{{x}}"
