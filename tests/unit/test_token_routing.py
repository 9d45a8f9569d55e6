"""Issue 13 items 3, 8, 11, 14, 19: the token goes only to the server nbenv started, compose projects
never collide, the printed URL keeps the token. Pure code plus real sockets on loopback (no engine)."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nbenv.adapters.compose import Compose
from nbenv.adapters.engine import Engine
from nbenv.errors import RunError
from nbenv.plan import compose_project, legacy_compose_project
from nbenv.running.jupyter import check_token_required, jupyter_url, netloc, probe_host, status_code
from nbenv.spec.models import IMAGE_PREFIX_RE, RepoConfig, _url_path, env_value_problem, env_var_problem, secret_name

# --- item 3: the probe's address follows jupyter.bind ----------------------------------------------------------

PROBE_CASES = [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.2", "127.0.0.2"),
    ("::1", "::1"),
    ("0.0.0.0", "127.0.0.1"),
    ("::", "::1"),
    ("192.168.7.9", "192.168.7.9"),
    ("10.1.2.3", "10.1.2.3"),
    ("fd00::5", "fd00::5"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
]


@pytest.mark.security
@pytest.mark.parametrize(("bind", "expected"), PROBE_CASES)
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_the_probe_talks_to_the_address_jupyter_is_published_on(bind: str, expected: str) -> None:
    assert probe_host(bind) == expected
    url = jupyter_url(probe_host(bind), 8888, "T", "/lab")
    assert urllib.parse.urlsplit(url).hostname == expected, "the printed URL names the same address"
    if ":" in expected:
        assert f"[{expected}]:8888" in url


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def listener(host: str = "127.0.0.1") -> tuple[http.server.HTTPServer, list[dict[str, str]]]:
    """Another local user's server: answers 200 to anything and records what it received."""
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = http.server.HTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def stranger() -> Iterator[tuple[int, list[dict[str, str]]]]:
    server, seen = listener()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.security
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_a_listener_on_127_0_0_1_never_sees_the_token_of_a_jupyter_bound_to_v6(
    stranger: tuple[int, list[dict[str, str]]],
) -> None:
    """The issue's reproduction at the probe: someone listens on 127.0.0.1:P, Jupyter binds ::1:P (not up yet)."""
    port, seen = stranger
    assert status_code(port, "secret-token", host=probe_host("::1")) is None, "nothing answers on [::1]:P"
    assert status_code(port, "secret-token", host=probe_host("::")) is None
    assert seen == []
    assert status_code(port, "secret-token", host=probe_host("127.0.0.1")) == 200  # the control: it does listen
    assert seen and seen[0]["Authorization"] == "token secret-token"


@pytest.mark.security
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_the_probe_ignores_proxy_settings(
    stranger: tuple[int, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An HTTP proxy from the environment would receive the token: the probe never uses one."""
    port, seen = stranger
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nothing = closed.getsockname()[1]
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert status_code(nothing, "secret-token", host="127.0.0.1") is None
    assert seen == []


# --- item 8: a server that answers without the token is stopped ----------------------------------------------------


@pytest.mark.security
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_a_server_that_answers_without_the_token_fails_up(
    stranger: tuple[int, list[dict[str, str]]], tmp_path: Path
) -> None:
    from nbenv.spec.load import Loader
    from nbenv.workspace import Workspace
    from tests.conftest import REPO

    port, _ = stranger
    env = Loader(Workspace(REPO)).environment("base")
    compose = Compose(
        engine=Engine(docker="docker"), project="p", compose_file=tmp_path / "compose.yaml", env_file=None
    )
    with pytest.raises(
        RunError, match=r"answered 200 without the token instead of refusing \(403\).*stopped it"
    ) as caught:
        check_token_required(compose.project, env, host="127.0.0.1", port=port)
    assert caught.value.hint is not None and "token = false" in caught.value.hint


# --- item 19: default_url with a query or fragment keeps the token ---------------------------------------------------

URL_PATH = st.from_regex(
    r"/[A-Za-z0-9._~!$'()*+,;=:@/%-]{0,20}(\?[A-Za-z0-9._~!$&'()*+,;=:@/%?-]{0,20})?", fullmatch=True
)


@pytest.mark.badinput
@settings(max_examples=300, deadline=None)
@given(default_url=URL_PATH, host=st.sampled_from(["127.0.0.1", "::1", "10.0.0.1"]))
@example(default_url="////", host="127.0.0.1").via("a path of slashes lost its path")
@example(default_url="//x/lab?a=1", host="::1").via("a leading // was read as a host")
@pytest.mark.hostile("run-time values (sizes, cpus, timeouts, -p, default_url)")
def test_the_printed_url_carries_the_token_whatever_the_default_url(default_url: str, host: str) -> None:
    _url_path(default_url)  # a valid spec value
    url = jupyter_url(host, 8890, "tok_EN-1", default_url)
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == netloc(host, 8890) and parts.hostname == host
    # The path as written (urlsplit(default_url) would read a leading `//x` as a host and lose it).
    assert parts.path == default_url.partition("#")[0].partition("?")[0]
    assert urllib.parse.parse_qs(parts.query, keep_blank_values=True)["token"] == ["tok_EN-1"]


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("default_url", "expected"),
    [
        ("/lab", "http://[::1]:9/lab?token=T"),
        ("/lab?a=1", "http://[::1]:9/lab?a=1&token=T"),
        ("/lab?reset", "http://[::1]:9/lab?reset&token=T"),
        ("/lab?token=evil&a=1", "http://[::1]:9/lab?a=1&token=T"),
        ("/tree/notebooks", "http://[::1]:9/tree/notebooks?token=T"),
    ],
)
@pytest.mark.hostile("run-time values (sizes, cpus, timeouts, -p, default_url)")
def test_default_url_with_a_query(default_url: str, expected: str) -> None:
    """The issue's reproduction: `default_url = "/lab?a=1"` printed `/lab?a=1?token=...` (token lost)."""
    assert jupyter_url("::1", 9, "T", default_url) == expected


# --- item 11: compose project names are injective ---------------------------------------------------------------

COMPOSE_PROJECT_RE = r"[a-z0-9][a-z0-9_-]*"
NAMES = st.from_regex(r"[a-z0-9]{1,6}(?:[-_][a-z0-9]{1,6}){0,2}", fullmatch=True)
_WORD = st.text("abz09", min_size=1, max_size=4)
_COMPONENT = st.builds(
    lambda w, rest: w + "".join(s + x for s, x in rest),
    _WORD,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "--"]), _WORD), max_size=2),
)
PREFIXES = st.builds(
    lambda host, parts: (host + "/" if host else "") + "/".join(parts),
    st.sampled_from(["", "localhost:5000", "reg.example", "a.b-c:1"]),
    st.lists(_COMPONENT, min_size=1, max_size=3),
).filter(lambda p: bool(IMAGE_PREFIX_RE.match(p)))
# Prefixes built to collide under a slug: the same words joined by each separator the grammar allows.
SEPARATED = st.builds(
    lambda words, seps: words[0] + "".join(s + w for s, w in zip(seps, words[1:], strict=False)),
    st.lists(st.sampled_from(["a", "b", "team", "x1"]), min_size=1, max_size=4),
    st.lists(st.sampled_from([".", "-", "_", "__", "/", "--"]), min_size=3, max_size=3),
)


@pytest.mark.security
@pytest.mark.hostile("compose project names (no collisions)")
def test_the_issue_prefixes_get_distinct_projects() -> None:
    pairs = [("team.a", "env"), ("team-a", "env"), ("team/a", "env"), ("team_a", "env"), ("a-b", "c"), ("a", "b-c")]
    projects = [compose_project(RepoConfig(image_prefix=p), n) for p, n in pairs]
    assert len(set(projects)) == len(pairs)
    assert legacy_compose_project(RepoConfig(image_prefix="team.a"), "env") == "team-a-env"  # the old collision


@pytest.mark.security
@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.one_of(PREFIXES, SEPARATED), NAMES), min_size=2, max_size=8, unique=True))
@pytest.mark.hostile("compose project names (no collisions)")
def test_distinct_prefix_and_name_pairs_never_share_a_project(pairs: list[tuple[str, str]]) -> None:
    import re

    projects = {}
    for prefix, name in pairs:
        project = compose_project(RepoConfig(image_prefix=prefix), name)
        assert re.fullmatch(COMPOSE_PROJECT_RE, project), project
        assert project.startswith(re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")[:40].rstrip("-"))
        assert len(project) <= 40 + 1 + 63 + 1 + 12
        projects[project] = (prefix, name)
    assert len(projects) == len(pairs), "two (prefix, name) pairs share a compose project"


# --- items 8 and 16: env names and values, false positives --------------------------------------------------------

NOT_CREDENTIALS = [
    "TZ",
    "KEYBOARD",
    "KEY_LAYOUT",
    "MONKEY",
    "MY_MONKEY",
    "HOTKEY",
    "BYPASS",
    "PROXY_BYPASS",
    "PWD",
    "OLDPWD",
    "TOKENIZERS_PARALLELISM",
    "MPLBACKEND",
    "OMP_NUM_THREADS",
    "DSN_HOST",
    "PASSTHROUGH",
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
]


@pytest.mark.badinput
@pytest.mark.parametrize("name", NOT_CREDENTIALS)
@pytest.mark.hostile("credential names and values in [env]")
def test_ordinary_names_are_accepted(name: str) -> None:
    assert env_var_problem(name) is None
    assert not secret_name(name)


@pytest.mark.badinput
@pytest.mark.parametrize(
    "value",
    ["UTC", "s3://bucket/key", "http://mlflow:5000", "user@example.org", "https://h/x?page=2", "a:b@c", "agg"],
)
@pytest.mark.hostile("credential names and values in [env]")
def test_ordinary_values_are_accepted(value: str) -> None:
    assert env_value_problem(value) is None


@pytest.mark.security
@pytest.mark.hostile("token: goes only to nbenv's Jupyter, cannot be switched off")
def test_token_false_is_the_only_way_to_a_server_without_a_token(workspace: Path) -> None:
    from tests.conftest import run_cli

    (workspace / "environments/open-lab.toml").write_text(
        'spec_version = 1\nname = "open-lab"\nextends = "base"\n\n[jupyter]\nbind = "::1"\ntoken = false\n'
    )
    assert run_cli("generate", cwd=workspace).code == 0
    open_lab = (workspace / "docker/open-lab/Dockerfile").read_text()
    base = (workspace / "docker/base/Dockerfile").read_text()
    cmd = next(line for line in open_lab.splitlines() if line.startswith("CMD "))
    assert cmd.endswith('"--IdentityProvider.token="]')
    assert "IdentityProvider" not in base
    for dockerfile in (open_lab, base):  # Jupyter's configuration lives where no mount reaches
        assert "ENV JUPYTER_CONFIG_DIR=/opt/nbenv/jupyter/config JUPYTER_DATA_DIR=/opt/nbenv/jupyter/data" in dockerfile
