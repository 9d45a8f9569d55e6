"""Reading `docker ps`'s Labels column (the compose file a container was started from)."""

from __future__ import annotations

import pytest

from nbenv.adapters.compose import _label

KEY = "com.docker.compose.project.config_files"


@pytest.mark.parametrize(
    ("labels", "value"),
    [
        (f"com.docker.compose.project=p,{KEY}=/a/compose.yaml,com.docker.compose.service=jupyter", "/a/compose.yaml"),
        (f"{KEY}=/a,b/compose.yaml,com.docker.compose.service=jupyter", "/a,b/compose.yaml"),  # a comma in the path
        (f"{KEY}=/last/compose.yaml", "/last/compose.yaml"),
        ("com.docker.compose.project=p", ""),
        ("", ""),
        (f"x{KEY}=/not/this", ""),  # whole keys only
    ],
)
def test_label(labels: str, value: str) -> None:
    assert _label(labels, KEY) == value
