"""fakellama's own safety: llama-server's --api-key rules, safe fixture loading, loopback bind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from fakellama.__main__ import build_parser
from fakellama.fixtures import MAX_FIXTURE_BYTES, FixtureError, load_dir, write_fixture
from fakellama.personalities import Personality
from fakellama.record import NAME_HEADER, Recorder
from fakellama.server import BackgroundServer, FakeServer
from pedrollm import errors
from pedrollm.factory import new_backend
from pedrollm.types import InferenceRequest
from tests.reliability.replies import reply_fixture
from tests.reliability.sockets import listening_addresses, proc_available

KEY = "fake-key-31337"
# The routes the pinned llama-server (contracts/servers/build.py) serves without a key
# when started with --api-key; /models, /v1/models, /props and /metrics answer 401.
LLAMA_SERVER_PUBLIC = {"/health", "/v1/health"}
ROUTES = [
    pytest.param(method, path, id=f"{method} {path}")
    for method, path in sorted(Personality.routes)
]


pytestmark = pytest.mark.fake_llama(api_key=KEY)


def _call(server: FakeServer, method: str, path: str, headers: dict[str, str]) -> int:
    body = {"messages": [{"role": "user", "content": "Say hello."}], "prompt": "x",
            "content": "x", "tokens": [1]} if method == "POST" else None
    return requests.request(method, server.url + path, json=body, headers=headers,
                            timeout=5).status_code


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_api_key_guards_every_route_but_llama_servers_public_ones(
        fake_llama_server: FakeServer, method: str, path: str) -> None:
    public = path in LLAMA_SERVER_PUBLIC
    for headers in ({}, {"Authorization": f"Bearer {KEY}x"}, {"X-Api-Key": "nope"}):
        assert (_call(fake_llama_server, method, path, headers) == 401) is not public, headers
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-Api-Key": KEY}):
        assert _call(fake_llama_server, method, path, headers) != 401, headers


# llama-server reads Authorization, falls back to X-Api-Key only when Authorization is
# empty, strips a "Bearer " prefix from either, then compares.
HEADER_RULES = [
    ({"Authorization": KEY}, 200),
    ({"X-Api-Key": f"Bearer {KEY}"}, 200),
    ({"Authorization": "Bearer wrong", "X-Api-Key": KEY}, 401),
]


@pytest.mark.parametrize(("headers", "status"), HEADER_RULES,
                         ids=["bare-key", "x-api-key-bearer", "authorization-wins"])
def test_api_key_headers_are_read_the_way_llama_server_reads_them(
        fake_llama_server: FakeServer, headers: dict[str, str], status: int) -> None:
    assert _call(fake_llama_server, "GET", "/props", headers) == status


def test_the_401_body_is_llama_servers_and_the_sdk_calls_it_an_authentication_error(
        fake_llama_server: FakeServer) -> None:
    reply = requests.post(
        fake_llama_server.url + "/v1/chat/completions", json={"messages": []}, timeout=5
    )
    assert reply.json() == {"error": {"code": 401, "message": "Invalid API Key",
                                      "type": "authentication_error"}}
    backend = new_backend(
        {"type": "llamacpp", "server_url": fake_llama_server.url, "api_key": "wrong"}
    )
    with pytest.raises(errors.AuthenticationError):
        backend.infer(InferenceRequest(user_prompt="Say hello."))
    backend.close()


# -- fixture loading ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "..", "a/b", "/etc/passwd", "..\\x", ".hidden",
                                  "x" * 129, "a..b"])
def test_a_fixture_name_that_could_leave_the_directory_is_refused(
        name: str, tmp_path: Path) -> None:
    data = reply_fixture("ok", "p", "a")
    data["name"] = name
    with FakeServer() as server, pytest.raises(FixtureError, match="unsafe fixture name"):
        server.add_fixture(data)
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "f.json").write_text(json.dumps(data))
    with pytest.raises(FixtureError, match="unsafe fixture name"):
        load_dir(tmp_path / "fixtures")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixtures"]


def test_write_fixture_refuses_an_unsafe_name(tmp_path: Path) -> None:
    from fakellama.fixtures import fixture_from_json

    fixture = fixture_from_json(reply_fixture("fine", "p", "a"))
    with pytest.raises(FixtureError):
        write_fixture(fixture.__class__(**{**fixture.__dict__, "name": "../out"}), tmp_path / "d")
    assert not (tmp_path / "out.json").exists()


def test_a_recorded_name_header_cannot_write_outside_the_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeServer() as upstream, BackgroundServer(
            Recorder(upstream.url, out, log=lambda line: None)) as proxy:
        reply = requests.get(proxy.url + "/health", headers={NAME_HEADER: "../../pwned"},
                             timeout=5)
    assert reply.status_code >= 400
    assert [p for p in tmp_path.rglob("*") if p.suffix == ".json"] == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_out_of_the_fixture_dir_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(reply_fixture("outside", "p", "a")))
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "inside.json").write_text(json.dumps(reply_fixture("inside", "q", "b")))
    (fixtures / "link.json").symlink_to(outside)
    with pytest.raises(FixtureError, match="outside the fixture directory"):
        load_dir(fixtures)
    with pytest.raises(FixtureError, match="outside the fixture directory"):
        FakeServer(fixtures)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlinked_directory_out_of_the_fixture_dir_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.json").write_text(json.dumps(reply_fixture("stolen", "p", "a")))
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / "sub").symlink_to(elsewhere, target_is_directory=True)
    assert [f.name for f in load_dir(fixtures)] == []


def test_a_fixture_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    data = reply_fixture("big", "p", "a")
    data["metadata"]["padding"] = "x" * MAX_FIXTURE_BYTES
    (tmp_path / "big.json").write_text(json.dumps(data))
    with pytest.raises(FixtureError, match="byte limit"):
        load_dir(tmp_path)


# -- where it listens ---------------------------------------------------------------------

def test_the_fake_listens_on_loopback_only_unless_told_otherwise() -> None:
    with FakeServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rsplit(":", 1)[1])
        if proc_available():
            assert listening_addresses(port) == {"127.0.0.1"}
    for command in (["serve"], ["record", "--upstream", "http://127.0.0.1:1", "--out", "x"]):
        assert build_parser().parse_args(command).host == "127.0.0.1"
