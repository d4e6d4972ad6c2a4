"""The fake's own answers against what llama-server itself answered (recorded fixtures).

Skipped, with the reason, while the bundled fixtures are still hand-written.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from fakellama.convert import assemble, event_payloads, split
from fakellama.fixtures import Fixture, bundled_dir, load_dir
from fakellama.server import FakeServer


def _recorded(kind: str) -> dict[str, Fixture]:
    directory = bundled_dir(kind)
    fixtures = {f.name: f for f in load_dir(directory)} if directory.is_dir() else {}
    if not fixtures or any(f.by_hand for f in fixtures.values()):
        pytest.skip(f"bundled {kind} fixtures are not recorded yet "
                    "(contracts/servers/record_fixtures.py)")
    return fixtures


def _error(fixtures: dict[str, Fixture], name: str) -> Fixture:
    if name not in fixtures:
        pytest.skip(f"no recorded {name}")
    return fixtures[name]


def _body_bytes(fixture: Fixture) -> bytes:
    if fixture.response_text is not None:
        return fixture.response_text.encode()
    return json.dumps(fixture.response_body, separators=(",", ":"),
                      ensure_ascii=False).encode()


def test_unknown_route_bytes_match_llama_server() -> None:
    recorded = _error(_recorded("llamacpp_errors"), "error-unknown-route")
    with FakeServer() as fake:
        reply = requests.get(fake.url + recorded.path)
    assert reply.status_code == recorded.status
    assert reply.content == _body_bytes(recorded)


@pytest.mark.parametrize("name", ["error-unauthorized", "error-unauthorized-x-api-key"])
def test_unauthorized_bytes_match_llama_server(name: str) -> None:
    recorded = _error(_recorded("llamacpp_errors"), name)
    with FakeServer(api_key="the-right-key") as fake:
        reply = requests.request(recorded.method, fake.url + recorded.path, json=recorded.body,
                                 headers={"Authorization": "Bearer wrong-key"})
    assert reply.status_code == recorded.status
    assert reply.content == _body_bytes(recorded)


def test_wrong_type_bytes_match_llama_server() -> None:
    recorded = _error(_recorded("llamacpp_errors"), "error-wrong-type")
    with FakeServer() as fake:
        reply = requests.post(fake.url + recorded.path, json=recorded.body)
    assert reply.status_code == recorded.status
    assert reply.content == _body_bytes(recorded)


def test_malformed_json_status_type_and_error_family_match_llama_server() -> None:
    name = "error-bad-json"
    recorded = _error(_recorded("llamacpp_errors"), name)
    with FakeServer() as fake:
        data = recorded.body if isinstance(recorded.body, str) else json.dumps(recorded.body)
        reply = requests.post(fake.url + recorded.path, data=data,
                              headers={"Content-Type": "application/json"})
    expected = json.loads(_body_bytes(recorded))
    assert reply.status_code == recorded.status
    assert reply.json()["error"]["type"] == expected["error"]["type"]
    assert reply.json()["error"]["code"] == expected["error"]["code"]
    family = "[json.exception.parse_error.101] parse error at line 1, column "
    assert reply.json()["error"]["message"].startswith(family)
    assert expected["error"]["message"].startswith(family)


def test_overflow_error_has_llama_servers_fields_and_wording() -> None:
    recorded = _error(_recorded("llamacpp_errors"), "error-context-overflow")
    expected = json.loads(_body_bytes(recorded))["error"]
    with FakeServer(ctx_size=expected["n_ctx"]) as fake:
        reply = requests.post(fake.url + recorded.path, json=recorded.body)
    error = reply.json()["error"]
    assert reply.status_code == recorded.status
    assert list(error) == list(expected)
    def wording(message: str) -> str:
        return re.sub(r"\d+", "N", message)
    assert wording(error["message"]) == wording(expected["message"])


def _pairs() -> list[tuple[Fixture, Fixture]]:
    """Each recorded chat reply with its streamed twin."""
    fixtures = _recorded("llamacpp")
    return [(f, fixtures[f.name + "-stream"]) for f in fixtures.values()
            if f.name + "-stream" in fixtures and not f.streamed
            and f.path == "/v1/chat/completions"]


def test_the_native_completion_stream_assembles_into_the_recorded_whole_reply() -> None:
    fixtures = _recorded("llamacpp")
    whole, streamed = fixtures["completion-hello"], fixtures["completion-hello-stream"]
    assert streamed.events is not None
    status, assembled = assemble(streamed.events)
    assert status == whole.status
    assert assembled["content"] == whole.response_body["content"]
    assert list(assembled) == list(whole.response_body)


def _message_view(body: dict[str, Any]) -> Any:
    choice = body["choices"][0]
    message = dict(choice["message"])
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in message.pop("tool_calls", [])]
    return choice["finish_reason"], message.get("content"), calls, list(body)


def test_assembling_a_recorded_stream_gives_the_recorded_whole_reply() -> None:
    for whole, streamed in _pairs():
        assert streamed.events is not None
        status, assembled = assemble(streamed.events)
        assert status == whole.status
        assert _message_view(assembled) == _message_view(whole.response_body), whole.name


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_splitting_a_recorded_reply_frames_it_like_the_recorded_stream() -> None:
    for whole, streamed in _pairs():
        assert streamed.events is not None
        usage = bool((streamed.body.get("stream_options") or {}).get("include_usage"))
        ours = event_payloads(split(whole.response_body, usage))
        theirs = event_payloads(streamed.events)
        assert _shape(ours[0][1]) == _shape(theirs[0][1]), whole.name
        assert [_shape(v) for _, v in ours[-3:]] == [_shape(v) for _, v in theirs[-3:]], (
            whole.name)
