"""fakellama's HTTP server: connections kept open as llama-server keeps them, framing, stop."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests

from fakellama.server import BackgroundServer, FakeServer

HELLO = {"messages": [{"role": "user", "content": "Say hello."}]}


def _conn(server: BackgroundServer) -> http.client.HTTPConnection:
    port = int(server.url.rsplit(":", 1)[1])
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def _post(conn: http.client.HTTPConnection, body: Any,
          headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json", **(headers or {})})
    return conn.getresponse()


def _raw(server: BackgroundServer, data: bytes) -> bytes:
    """Send raw bytes on a new connection; return everything until the server closes."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_one_connection_serves_many_requests_with_llama_servers_keep_alive_header() -> None:
    with FakeServer() as fake:
        conn = _conn(fake)
        for _ in range(5):
            reply = _post(conn, HELLO)
            body = json.loads(reply.read())
            assert reply.status == 200
            assert body["object"] == "chat.completion"
            assert reply.getheader("Keep-Alive") == "timeout=5, max=100"
            assert reply.getheader("Server") == "llama.cpp"
            assert not reply.will_close
        local_port = conn.sock.getsockname()[1]
        _post(conn, HELLO).read()
        assert conn.sock.getsockname()[1] == local_port  # still the same connection
        conn.close()


def test_a_requests_session_reuses_its_connection() -> None:
    with FakeServer() as fake, requests.Session() as session:
        ports = set()
        for _ in range(3):
            reply = session.post(fake.url + "/v1/chat/completions", json=HELLO, stream=True)
            ports.add(reply.raw.connection.sock.getsockname()[1])
            assert reply.json()["object"] == "chat.completion"
        assert len(ports) == 1


def test_client_asking_to_close_gets_connection_close() -> None:
    with FakeServer() as fake:
        conn = _conn(fake)
        reply = _post(conn, HELLO, {"Connection": "close"})
        reply.read()
        assert reply.getheader("Connection") == "close"
        assert reply.will_close


def test_the_last_request_allowed_on_a_connection_says_close() -> None:
    with FakeServer(keep_alive_max=3) as fake:
        conn = _conn(fake)
        closes = []
        for _ in range(3):
            reply = _post(conn, HELLO)
            reply.read()
            closes.append(reply.getheader("Connection"))
        assert closes == [None, None, "close"]


def test_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    with FakeServer(keep_alive_timeout=0.2) as fake:
        conn = _conn(fake)
        _post(conn, HELLO).read()
        assert conn.sock is not None
        conn.sock.settimeout(3)
        started = time.monotonic()
        assert conn.sock.recv(1) == b""  # the server closed it
        assert time.monotonic() - started < 2.5


def test_stopping_the_server_closes_kept_connections() -> None:
    fake = FakeServer().start()
    conn = _conn(fake)
    _post(conn, HELLO).read()
    fake.stop()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        _post(conn, HELLO).read()


def test_stream_is_chunked_and_the_connection_stays_usable() -> None:
    with FakeServer() as fake:
        conn = _conn(fake)
        reply = _post(conn, {**HELLO, "stream": True})
        assert reply.getheader("Transfer-Encoding") == "chunked"
        text = reply.read().decode()
        assert text.startswith("data: ") and text.endswith("data: [DONE]\n\n")
        again = _post(conn, HELLO)
        assert json.loads(again.read())["object"] == "chat.completion"


def test_body_the_app_never_reads_does_not_spill_into_the_next_request() -> None:
    with FakeServer() as fake:
        conn = _conn(fake)
        conn.request("GET", "/health", body=b"x" * 10000)  # /health ignores its body
        first = conn.getresponse()
        assert json.loads(first.read()) == {"status": "ok"}
        second = _post(conn, HELLO)
        assert second.status == 200
        assert json.loads(second.read())["object"] == "chat.completion"


def test_chunked_request_body_is_read() -> None:
    with FakeServer() as fake:
        payload = json.dumps(HELLO).encode()
        chunks = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (payload[:10], payload[10:]))
        reply = _raw(fake, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                           b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body)["object"] == "chat.completion"


@pytest.mark.parametrize(("length", "status"), [(b"abc", b"400"), (b"-5", b"400")])
def test_bad_content_length_is_refused(length: bytes, status: bytes) -> None:
    with FakeServer() as fake:
        reply = _raw(fake, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: " + length + b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 " + status)
        assert b"Content-Length" in reply.split(b"\r\n\r\n")[1]


def test_http_1_0_client_gets_its_reply_and_the_connection_closed() -> None:
    with FakeServer() as fake:
        reply = _raw(fake, b"GET /health HTTP/1.0\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" in head
        assert json.loads(body) == {"status": "ok"}


def test_app_error_becomes_a_500_is_logged_and_the_server_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with BackgroundServer(app) as server:
        assert requests.get(server.url + "/boom").status_code == 500
        assert requests.get(server.url + "/fine").text == "ok"
    assert calls == ["/boom", "/fine"]
    assert "error answering GET /boom" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_environ_carries_path_query_and_headers() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        yield b"streamed "
        yield b"reply"

    with BackgroundServer(app) as server:
        reply = requests.post(server.url + "/a%20b?x=1", data=b"body",
                              headers={"X-Api-Key": "k", "Content-Type": "text/plain"})
    assert reply.text == "streamed reply"
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert seen["PATH_INFO"] == "/a b"
    assert seen["QUERY_STRING"] == "x=1"
    assert seen["HTTP_X_API_KEY"] == "k"
    assert seen["CONTENT_TYPE"] == "text/plain"
    assert seen["CONTENT_LENGTH"] == "4"
    assert seen["wsgi.input"].read() == b"body"


def test_keep_alive_max_1_closes_every_connection_from_the_command_line() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fakellama", "serve", "--port", "0",
                             "--keep-alive-max", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("listening on ", 1)[1].strip()
        reply = requests.get(url + "/health")
        assert reply.headers["Connection"] == "close"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--keep-alive-max", "0", "keep_alive_max must be at least 1, not 0"),
    ("--keep-alive-timeout", "-1", "keep_alive_timeout must be a number of seconds above 0"),
    ("--keep-alive-timeout", "inf", "keep_alive_timeout must be a number of seconds above 0"),
])
def test_bad_keep_alive_settings_are_refused_naming_the_setting(option: str, value: str,
                                                                message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "fakellama", "serve", "--port", "0",
                           option, value], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
