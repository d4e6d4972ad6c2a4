"""A requests.Session the caller passes is honoured as requests itself would honour it.

The SDK's own session takes a faster path (each URL prepared once); these tests also
show that path gives what ``Session.request`` would, cookies set by the server included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from werkzeug import Response

from pedrollm import ConnectionFailed, InferenceRequest, new_backend

from .sse import completion

CHAT = "/v1/chat/completions"
HI = InferenceRequest(user_prompt="hi")


def _backend(server: HTTPServer, session: requests.Session | None = None) -> Any:
    return new_backend({"type": "openai", "server_url": server.url_for("/"), "max_retries": 0},
                       session=session)


class CountingSession(requests.Session):
    """A session that customises request(), as base-URL or logging sessions do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append(f"{method!s} {url!s}")
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-Logged": "yes"}
        return super().request(method, url, *args, **kwargs)


def test_a_sessions_request_override_is_called_for_every_request(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = CountingSession()
    with _backend(httpserver, session) as llm:
        llm.infer(HI)
        llm.infer(HI)
    assert session.calls == [f"POST {httpserver.url_for(CHAT)}"] * 2
    assert all(r.headers["X-Logged"] == "yes" for r, _ in httpserver.log)


def test_a_sessions_hooks_see_every_response(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    seen: list[int] = []
    with _backend(httpserver, session) as llm:
        llm.infer(HI)
        session.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
        llm.infer(HI)
    assert seen == [200]


def test_a_sessions_cookies_are_sent_and_kept(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    session.cookies.set("route", "a")
    with _backend(httpserver, session) as llm:
        llm.infer(HI)
    assert httpserver.log[0][0].cookies.get("route") == "a"


def test_cookies_a_server_sets_come_back_on_the_sdks_own_session(
        httpserver: HTTPServer) -> None:
    # A load balancer in front of the server pins a client with a cookie.
    def pin(request: Any) -> Response:
        resp = Response(json.dumps(completion("ok")), content_type="application/json")
        resp.set_cookie("lb", "node-2")
        return resp

    httpserver.expect_request(CHAT).respond_with_handler(pin)
    with _backend(httpserver) as llm:
        llm.infer(HI)
        llm.infer(HI)
    assert "lb" not in httpserver.log[0][0].cookies
    assert httpserver.log[1][0].cookies.get("lb") == "node-2"


def test_a_sessions_proxies_are_used(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    session.proxies = {"http": "http://127.0.0.1:9"}  # nothing listens: the proxy is refused
    with _backend(httpserver, session) as llm, pytest.raises(ConnectionFailed):
        llm.infer(HI)
    assert not httpserver.log


def test_environment_proxies_apply_when_the_session_trusts_the_environment(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    trusting = requests.Session()
    with _backend(httpserver, trusting) as llm, pytest.raises(ConnectionFailed):
        llm.infer(HI)
    distrusting = requests.Session()
    distrusting.trust_env = False
    with _backend(httpserver, distrusting) as llm:
        assert llm.infer(HI).text == "ok"
    # The SDK's own session reads the environment too (once, when it is built).
    with _backend(httpserver) as llm, pytest.raises(ConnectionFailed):
        llm.infer(HI)


class RecordingAdapter(HTTPAdapter):
    """An adapter mounted by the caller; records what send() is given."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(kwargs)
        return super().send(request, **kwargs)


def test_a_mounted_adapter_gets_the_sessions_verify_and_cert(
        httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override session.verify; leave them out of it.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    adapter = RecordingAdapter()
    session.mount(httpserver.url_for("/"), adapter)
    session.verify = "/etc/ssl/certs/internal-ca.pem"
    cert = (str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
    for name in cert:
        Path(name).write_text("unused over plain HTTP", encoding="utf-8")
    session.cert = cert
    with _backend(httpserver, session) as llm:
        llm.infer(HI)
    assert len(adapter.sent) == 1
    assert adapter.sent[0]["verify"] == "/etc/ssl/certs/internal-ca.pem"
    assert adapter.sent[0]["cert"] == cert


def test_the_sdks_headers_join_a_sessions_own(httpserver: HTTPServer) -> None:
    httpserver.expect_request(CHAT).respond_with_json(completion("ok"))
    session = requests.Session()
    session.headers["X-Team"] = "search"
    with new_backend({"type": "openai", "server_url": httpserver.url_for("/"),
                      "api_key": "k-123"}, session=session) as llm:
        llm.infer(HI)
    sent = httpserver.log[0][0].headers
    assert sent["X-Team"] == "search" and sent["Authorization"] == "Bearer k-123"
    assert sent["User-Agent"].startswith("pedrollm/")
    assert "Authorization" not in session.headers  # the caller's session is not changed

