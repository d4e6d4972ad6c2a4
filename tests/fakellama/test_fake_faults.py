"""Each fault, switched on per server, per request (X-Fake-Fault) or per fixture."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from fake_helpers import bundled

from fakellama.faults import FaultSpecError, parse_faults
from fakellama.server import FakeServer

URL = "/v1/chat/completions"
HELLO = bundled("chat-hello")["request"]["body"]


def _fault(fake_llama_server: FakeServer, spec: str, streamed: bool = False,
           **kw: object) -> requests.Response:
    return requests.post(fake_llama_server.url + URL, json=dict(HELLO, stream=streamed),
                         headers={"X-Fake-Fault": spec}, **kw)  # type: ignore[arg-type]


def test_loading_for_n_seconds_gives_503_then_recovers(fake_llama_server: FakeServer) -> None:
    fake_llama_server.set_faults("loading=60")
    reply = requests.get(fake_llama_server.url + "/health")
    assert reply.status_code == 503
    assert reply.json() == {"error": {"code": 503, "message": "Loading model",
                                      "type": "unavailable_error"}}
    assert requests.post(fake_llama_server.url + URL, json=HELLO).status_code == 503
    fake_llama_server.set_faults("")
    assert requests.get(fake_llama_server.url + "/health").status_code == 200


def test_loading_per_request(fake_llama_server: FakeServer) -> None:
    reply = requests.get(fake_llama_server.url + "/health", headers={"X-Fake-Fault": "loading=1"})
    assert reply.status_code == 503
    assert requests.get(fake_llama_server.url + "/health").status_code == 200


def test_status_500_is_a_server_error(fake_llama_server: FakeServer) -> None:
    reply = _fault(fake_llama_server, "status=500")
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "server_error"


def test_429_carries_retry_after(fake_llama_server: FakeServer) -> None:
    reply = _fault(fake_llama_server, "status=429,retry_after=3")
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "3"
    assert reply.json()["error"]["code"] == 429


def test_slow_first_token_trips_a_short_read_timeout(fake_llama_server: FakeServer) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout):
        _fault(fake_llama_server, "first_token_delay=2", streamed=True, timeout=(2, 0.2))


def test_tokens_per_second_paces_the_stream(fake_llama_server: FakeServer) -> None:
    reply = _fault(
        fake_llama_server, "tokens_per_second=2", streamed=True, stream=True, timeout=(2, 0.2)
    )
    lines = reply.iter_lines()
    assert next(lines).startswith(b"data: ")
    with pytest.raises(requests.exceptions.ConnectionError):
        list(lines)


def test_mid_stream_disconnect_cuts_before_done(fake_llama_server: FakeServer) -> None:
    reply = requests.post(fake_llama_server.url + URL, json=dict(HELLO, stream=True), stream=True,
                          headers={"X-Fake-Fault": "disconnect_after=2"})
    got: list[bytes] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for line in reply.iter_lines():
            got.append(line)
    events = [line for line in got if line]
    assert len(events) == 2
    assert b"[DONE]" not in b"".join(events)


def test_non_stream_disconnect_truncates_the_body(fake_llama_server: FakeServer) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        _fault(fake_llama_server, "disconnect_after=0")


def test_malformed_json_body(fake_llama_server: FakeServer) -> None:
    reply = _fault(fake_llama_server, "malformed_json")
    assert reply.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.text)


def test_malformed_sse_line(fake_llama_server: FakeServer) -> None:
    events = [
        e for e in _fault(fake_llama_server, "malformed_sse", streamed=True).text.split("\n\n") if e
    ]
    payloads = [e[len("data: "):] for e in events]
    with pytest.raises(json.JSONDecodeError):
        json.loads(payloads[1])
    assert json.loads(payloads[0])["object"] == "chat.completion.chunk"


def test_stall_between_chunks_trips_a_read_timeout(fake_llama_server: FakeServer) -> None:
    reply = _fault(
        fake_llama_server, "stall=2,stall_after=2", streamed=True, stream=True, timeout=(2, 0.3)
    )
    lines = [line for line in _until_error(reply.iter_lines()) if line]
    assert len(lines) == 2


def _until_error(lines: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from lines
    except requests.exceptions.ConnectionError:
        return


def test_close_before_reply(fake_llama_server: FakeServer) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        _fault(fake_llama_server, "close")
    assert requests.get(fake_llama_server.url + "/health").status_code == 200


def test_empty_choices(fake_llama_server: FakeServer) -> None:
    assert _fault(fake_llama_server, "empty_choices").json()["choices"] == []
    events = [
        e for e in _fault(fake_llama_server, "empty_choices", streamed=True).text.split("\n\n") if e
    ]
    assert all(json.loads(e[6:])["choices"] == [] for e in events[:-1])


def test_fixture_metadata_can_carry_a_fault(fake_llama_server: FakeServer) -> None:
    fixture = bundled("chat-hello")
    fixture.update(name="chat-hello-broken", faults="status=500")
    fixture["request"]["body"]["messages"][0]["content"] = "Break, please."
    fake_llama_server.add_fixture(fixture)
    body = {"messages": [{"role": "user", "content": "Break, please."}]}
    reply = requests.post(fake_llama_server.url + URL, json=body)
    assert reply.status_code == 500
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello-broken"


def test_unknown_fault_is_refused_with_its_name(fake_llama_server: FakeServer) -> None:
    reply = _fault(fake_llama_server, "explode")
    assert reply.status_code == 400
    assert "explode" in reply.json()["error"]["message"]
    with pytest.raises(FaultSpecError, match="retry_after"):
        parse_faults("retry_after=soon")
