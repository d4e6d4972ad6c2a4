"""What a hostile client or a hostile fixture file could do to the fake (issue 18, 10-12, 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from fakellama.__main__ import main
from fakellama.faults import FaultSpecError, parse_faults
from fakellama.fixtures import MAX_DEPTH, FixtureError, load_dir
from fakellama.server import FakeServer

KEY = "hardening-key-4242"
CHAT = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "Say hello."}]}


# -- item 12: faults need the key, and a spec the fake cannot act on is a 400 ------------------

@pytest.mark.fake_llama(api_key=KEY)
@pytest.mark.parametrize("spec", ["status=500", "close", "loading=5", "first_token_delay=-1",
                                  "nonsense"])
def test_a_client_without_the_key_gets_401_whatever_fault_it_asks_for(
        fake_llama_server: FakeServer, spec: str) -> None:
    reply = requests.post(fake_llama_server.url + CHAT, json=HELLO,
                          headers={"X-Fake-Fault": spec}, timeout=5)
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "authentication_error"


@pytest.mark.fake_llama(api_key=KEY)
def test_a_client_with_the_key_still_gets_its_fault(fake_llama_server: FakeServer) -> None:
    reply = requests.post(fake_llama_server.url + CHAT, json=HELLO, timeout=5,
                          headers={"X-Fake-Fault": "status=503", "Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 503


@pytest.mark.parametrize(("spec", "field"), [
    ("first_token_delay=-1", "first_token_delay"),
    ("first_token_delay=inf", "first_token_delay"),
    ("first_token_delay=nan", "first_token_delay"),
    ("stall=-0.5", "stall"),
    ("stall=1e300", "stall"),
    ("tokens_per_second=1e-300", "tokens_per_second"),
    ("tokens_per_second=-3", "tokens_per_second"),
    ("retry_after=inf", "retry_after"),
    ("loading=nan", "loading"),
    ("disconnect_after=-1", "disconnect_after"),
    ("stall_after=-2", "stall_after"),
])
def test_a_fault_value_the_fake_cannot_act_on_is_a_400_naming_the_field(
        fake_llama_server: FakeServer, spec: str, field: str) -> None:
    for streamed in (False, True):
        reply = requests.post(fake_llama_server.url + CHAT, json=dict(HELLO, stream=streamed),
                              headers={"X-Fake-Fault": spec}, timeout=5)
        assert reply.status_code == 400, reply.text
        assert field in reply.json()["error"]["message"]
    assert fake_llama_server.errors == []  # no traceback, no 500
    with pytest.raises(FaultSpecError, match=field):
        parse_faults(spec)


def test_sane_fault_values_still_parse() -> None:
    faults = parse_faults("first_token_delay=0.5,tokens_per_second=20,stall=0,disconnect_after=0")
    assert (faults.first_token_delay, faults.tokens_per_second) == (0.5, 20.0)
    assert faults.disconnect_after == 0


# -- item 10: the kept request log is bounded, and keeps no body for a 401 ---------------------

@pytest.mark.fake_llama(api_key=KEY)
def test_an_unauthenticated_body_is_not_kept(fake_llama_server: FakeServer) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 1_000_000}]}
    reply = requests.post(fake_llama_server.url + CHAT, json=big, timeout=10)
    assert reply.status_code == 401
    (kept,) = fake_llama_server.requests
    assert (kept.status, kept.path, kept.raw, kept.body) == (401, CHAT, b"", None)


def test_the_request_log_keeps_only_the_newest_requests() -> None:
    with FakeServer(keep_requests=3) as fake:
        for n in range(5):
            requests.post(fake.url + CHAT, json=HELLO, headers={"X-N": str(n)}, timeout=5)
        assert [r.headers["X-N"] for r in fake.requests] == ["2", "3", "4"]


def test_the_request_log_is_bounded_in_bytes_too() -> None:
    with FakeServer(keep_request_bytes=250_000) as fake:
        for n in range(10):
            requests.post(fake.url + CHAT, timeout=5, headers={"X-N": str(n)},
                          json={"messages": [{"role": "user", "content": "y" * 100_000}]})
        kept = fake.requests
        assert [r.headers["X-N"] for r in kept] == ["8", "9"]
        assert sum(len(r.raw) for r in kept) <= 250_000


@pytest.mark.parametrize("bad", [-1, "3"])
def test_a_bad_keep_requests_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="keep_requests"):
        FakeServer(keep_requests=bad)


def test_the_cli_refuses_a_negative_keep_requests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--keep-requests", "-1"]) == 2
    assert "keep_requests" in capsys.readouterr().err


# -- item 14: a fixture file nested too deep is refused by name --------------------------------

@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_a_deeply_nested_fixture_file_is_refused_naming_the_file(
        tmp_path: Path, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    text = json.dumps({"fakellama_fixture": 1, "name": "deep",
                       "request": {"method": "POST", "path": CHAT, "body": "X"},
                       "response": {"status": 200, "body": {}},
                       "metadata": {"authored": "by hand"}}).replace('"X"', nested)
    (tmp_path / "deep.json").write_text(text)
    with pytest.raises(FixtureError, match=r"deep\.json: JSON nested") as caught:
        load_dir(tmp_path)
    assert str(MAX_DEPTH) in str(caught.value)


def test_a_fixture_with_a_bad_fault_spec_is_refused_when_loaded(tmp_path: Path) -> None:
    fixture = {"fakellama_fixture": 1, "name": "slow", "faults": "first_token_delay=inf",
               "request": {"method": "POST", "path": CHAT, "body": HELLO},
               "response": {"status": 200, "body": {}}, "metadata": {"authored": "by hand"}}
    (tmp_path / "slow.json").write_text(json.dumps(fixture))
    with pytest.raises(FixtureError, match=r"slow\.json: faults: .*first_token_delay"):
        load_dir(tmp_path)
