"""Record afresh from a real llama-server and compare structurally with the bundled fixtures.

Marked `real_server`: skipped, with the reason, unless contracts/servers can provide an
already built llama-server (set FAKELLAMA_BUILD_REAL=1 to allow building one).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from fakellama.convert import event_payloads
from fakellama.fixtures import Fixture, bundled_dir, load_dir

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real_server


def _skip(reason: str) -> None:
    """Skip, or fail where the run demands a real server (PEDROLLM_REQUIRE_REAL_SERVER=1)."""
    if os.environ.get("PEDROLLM_REQUIRE_REAL_SERVER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _built_server_or_skip() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        build = importlib.import_module("contracts.servers.build")
        importlib.import_module("contracts.servers.llama_server")
        importlib.import_module("contracts.servers.scripted_model")
    except ImportError as exc:
        _skip(f"no real llama-server: contracts/servers is not importable ({exc})")
    if os.environ.get("FAKELLAMA_BUILD_REAL") == "1":
        return
    for name in ("cached_binary", "find_llama_server"):
        finder = getattr(build, name, None)
        if callable(finder):
            if finder():
                return
            _skip(f"no built llama-server ({name}() found none; "
                  "set FAKELLAMA_BUILD_REAL=1 to build one)")
    _skip("cannot tell whether llama-server is built without building it; "
                "set FAKELLAMA_BUILD_REAL=1 to build and record")


def shape(value: Any) -> Any:
    """The structure of a JSON value: key sets and value types, not the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def fixture_shape(fixture: Fixture) -> Any:
    """The structure of a fixture's response: status, then body or event shapes."""
    if fixture.events is not None:
        return (fixture.status, [(f, shape(v)) for f, v in event_payloads(fixture.events)])
    if fixture.response_text is not None:
        try:
            return (fixture.status, shape(json.loads(fixture.response_text)))
        except ValueError:
            return (fixture.status, "text")
    return (fixture.status, shape(fixture.response_body))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Record every fixture afresh from the real server into a temporary directory."""
    _built_server_or_skip()
    sys.path.insert(0, str(ROOT / "contracts" / "servers"))
    recorder = importlib.import_module("record_fixtures")
    out = tmp_path_factory.mktemp("fresh")
    recorder.record_all(out / "llamacpp", out / "llamacpp_errors")
    return out / "llamacpp", out / "llamacpp_errors"


@pytest.mark.parametrize("kind", ["llamacpp", "llamacpp_errors"])
def test_fresh_recording_matches_the_bundled_structure(fresh: tuple[Path, Path],
                                                       kind: str) -> None:
    directory = bundled_dir(kind)
    # the top level only: contract-suite/ holds the contract suite's own recordings
    bundled = {f.name: f for f in load_dir(directory)
               if Path(f.source).parent == directory} if directory.is_dir() else {}
    recorded = {f.name: f for f in load_dir(fresh[0] if kind == "llamacpp" else fresh[1])}
    if any(f.by_hand for f in bundled.values()):
        pytest.fail("bundled fixtures are still hand-written; run "
                    "contracts/servers/record_fixtures.py --replace")
    assert set(bundled) == set(recorded)
    for name, fixture in recorded.items():
        assert fixture_shape(fixture) == fixture_shape(bundled[name]), name
