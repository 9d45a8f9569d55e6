"""Issue 17 follow-ups on one host: the hub's readiness poll never goes through a proxy, DockerSpawner servers
get no `nbenv up` healthcheck and their GPU device request, and a GPU profile is refused under SwarmSpawner."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from nbenv.errors import RunError
from nbenv.hub import run
from tests.unit.test_token_routing import listener

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


class _Hub:
    """The engine as `_wait` asks it: the hub container runs (its HTTP side is a real local listener)."""

    def __init__(self) -> None:
        self.removed: list[list[str]] = []
        self.api = self

    def container_state(self, name: str) -> str:
        return "running"

    def logs(self, name: str, tail: int) -> bytes:
        return b"no answer"

    def remove_containers(self, names: list[str]) -> None:
        self.removed.append(names)


@pytest.fixture
def fake_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A real listener standing in for a proxy: it answers 200 to anything and records what it got."""
    server, seen = listener()
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


@pytest.mark.security
@pytest.mark.parametrize("variable", PROXY_VARIABLES)
@pytest.mark.parametrize("hub_answers", [True, False], ids=["hub-up", "hub-down"])
def test_the_hub_wait_never_goes_through_a_proxy_from_the_environment(
    fake_proxy: tuple[int, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch, variable: str, hub_answers: bool
) -> None:
    """`nbenv hub up` polls the hub until it answers: with a proxy variable set, the poll still goes to
    127.0.0.1 only. Hub down: the proxy (which answers 200) would make a diverted poll succeed."""
    proxy_port, proxy_seen = fake_proxy
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy_port}")
    engine: Any = _Hub()
    if hub_answers:
        hub, hub_seen = listener()
        try:
            run._wait(engine, "hub", f"http://127.0.0.1:{hub.server_address[1]}/hub/", timeout=10)
        finally:
            hub.shutdown()
            hub.server_close()
        assert hub_seen, "the hub itself was asked"
    else:
        with pytest.raises(RunError, match="the hub did not answer"):
            run._wait(engine, "hub", f"http://127.0.0.1:{_closed_port()}/hub/", timeout=1.5)
        assert engine.removed == [["hub"]]
    assert proxy_seen == [], "the proxy from the environment was asked"
