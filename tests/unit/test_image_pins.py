"""The content key, the image reference and the build-time labels, pinned for fixed inputs.

The values below were computed before the key and the labels moved from build.py into the plan
(nbenv/image_plan.py): the move provably changed neither. A change of the generated files (the
golden files) or of the key's formula changes them on purpose; update them then, with the reason.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nbenv.adapters.engine import BuildRequest
from nbenv.image_plan import content_key
from nbenv.provenance import GitState
from nbenv.ui import quiet
from tests.unit.test_fake_engine import FakeEngine, _project

VERSION = "9.9.9"  # the key includes nbenv's version: pinned here so a release does not move the pins
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PINS = Path(__file__).with_name("image_pins.json")
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class RecordingEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[BuildRequest] = []

    def build(self, request: BuildRequest, *, on_line: Callable[[str], None], live: bool) -> str:
        self.requests.append(request)
        return super().build(request, on_line=on_line, live=live)


class _Clock:
    @staticmethod
    def now(tz: object = None) -> datetime:
        return CREATED


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("NBENV_CA_BUNDLE", "PIP_CERT", "NBENV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("nbenv.image_plan.__version__", VERSION)
    monkeypatch.setattr("nbenv.build.datetime", _Clock)


def test_the_content_key_of_fixed_inputs_is_pinned(pinned: None) -> None:
    files = {"Dockerfile": "FROM x\n", "requirements/notebook.txt": "a==1\n", "build/register.py": "print()\n"}
    key = content_key(from_image_id="sha256:" + "a" * 64, files=files)
    assert key == "2b7440ea2bfccd17918f08eaeda8b3644cd484cc20a1f6d3a37198c25584fc22"


def test_the_key_ref_and_labels_of_the_demo_images_are_pinned(workspace: Path, pinned: None) -> None:
    engine = RecordingEngine()
    builder = _project(workspace, engine).builder(say=quiet, live=False)
    builder.__dict__["git"] = GitState(COMMIT, False, tag="v1.2.3", source="https://example.invalid/repo")
    child = builder.build("traffic-analysis")
    variant = builder.build("base", groups=["notebook", "models"])  # a variant: no :latest tag
    assert len(engine.requests) == 3
    got = {
        "refs": [r.tags for r in engine.requests],
        "keys": [builder.build("base").key, child.key, variant.key],
        "args": [dict(r.build_args) for r in engine.requests],
        "labels": [dict(r.labels) for r in engine.requests],
    }
    # The lock's content hash is the lock's (read here on its own), not pinned: a relock that adds a group
    # changes it, and nothing else of these images.
    lock_hash = tomllib.loads((workspace / "poetry.lock").read_text())["metadata"]["content-hash"]
    text = json.dumps(got, sort_keys=True, indent=1)
    assert lock_hash in text
    text = text.replace(lock_hash, "LOCK-CONTENT-HASH")
    if os.environ.get("NBENV_WRITE_IMAGE_PINS"):  # only when the inputs change on purpose
        PINS.write_text(text + "\n")
    assert json.loads(text) == json.loads(PINS.read_text())
