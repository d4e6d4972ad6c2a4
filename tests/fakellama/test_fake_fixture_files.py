"""Bad fixture files are refused at load, each with a message naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fake_helpers import bundled, fixture_json, write_json

from fakellama.fixtures import MAX_FIXTURE_BYTES, FixtureError, bundled_dir, load_dir
from fakellama.server import FakeServer


def test_bundled_fixtures_load_and_say_how_they_were_made() -> None:
    fixtures = load_dir(bundled_dir())
    assert fixtures
    for fixture in fixtures:
        meta = fixture.metadata
        assert meta.get("authored") == "by hand" or {"server", "recorded_at", "command"} <= set(
            meta)


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(FixtureError, match=r"broken\.json: invalid JSON"):
        load_dir(tmp_path)


@pytest.mark.parametrize("drop", ["request", "response", "metadata", "name"])
def test_missing_fields_are_refused(tmp_path: Path, drop: str) -> None:
    data = bundled("chat-hello")
    del data[drop]
    write_json(tmp_path, "partial.json", data)
    with pytest.raises(FixtureError, match=rf"partial\.json: missing field {drop}"):
        load_dir(tmp_path)


def test_recorded_fixture_without_provenance_is_refused(tmp_path: Path) -> None:
    data = bundled("chat-hello")
    data["metadata"] = {"server": "llama-server"}
    write_json(tmp_path, "anon.json", data)
    with pytest.raises(FixtureError, match=r"anon\.json: metadata\.recorded_at missing"):
        load_dir(tmp_path)


def test_path_traversal_in_a_name_is_refused(tmp_path: Path) -> None:
    write_json(tmp_path, "evil.json", fixture_json("../../etc/passwd", "/x", None, {}))
    with pytest.raises(FixtureError, match=r"evil\.json: unsafe fixture name"):
        load_dir(tmp_path)


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = write_json(outside, "secret.json", bundled("chat-hello"))
    inside = tmp_path / "fixtures"
    inside.mkdir()
    os.symlink(target, inside / "link.json")
    with pytest.raises(FixtureError, match=r"link\.json: resolves outside the fixture directory"):
        load_dir(inside)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    data = bundled("chat-hello")
    data["metadata"]["padding"] = "x" * (MAX_FIXTURE_BYTES + 1)
    write_json(tmp_path, "huge.json", data)
    with pytest.raises(FixtureError, match=r"huge\.json: \d+ bytes is over"):
        load_dir(tmp_path)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    write_json(tmp_path, "a.json", bundled("chat-hello"))
    write_json(tmp_path, "b.json", bundled("chat-hello"))
    with pytest.raises(FixtureError, match=r"duplicate fixture name 'chat-hello'"):
        load_dir(tmp_path)


def test_response_needs_exactly_one_form(tmp_path: Path) -> None:
    data = bundled("chat-hello")
    data["response"]["events"] = []
    write_json(tmp_path, "both.json", data)
    with pytest.raises(FixtureError, match=r"both\.json: response needs exactly one"):
        load_dir(tmp_path)


def test_server_refuses_a_bad_directory_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps([1, 2]))
    with pytest.raises(FixtureError, match=r"bad\.json"):
        FakeServer(tmp_path)
