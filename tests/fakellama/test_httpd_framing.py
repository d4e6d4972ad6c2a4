"""Request framing the fake refuses (RFC 9112 section 6) and bodies it will not hold (issue 18).

Each case is a request another parser (a proxy in front of the fake, or the client) could
read differently; the fake must answer 400 and close, never guess, never serve what
follows the body as a second request.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fakellama.httpd import KeepAliveServer
from fakellama.server import BackgroundServer

# What follows the first request on the connection: served only if the framing was guessed.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _echo_app(environ: dict, start_response):  # type: ignore[no-untyped-def]
    body = environ["wsgi.input"].read()
    payload = b"%s %d" % (environ["PATH_INFO"].encode(), len(body))
    start_response("200 OK", [("Content-Length", str(len(payload)))])
    return [payload]


def _exchange(server: BackgroundServer, data: bytes, *, half_close: bool = True) -> bytes:
    """Send raw bytes; return everything the server sent until it closed."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def echo() -> BackgroundServer:
    with BackgroundServer(_echo_app) as server:
        yield server


def _post(headers: bytes, body: bytes) -> bytes:
    return b"POST /first HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


@pytest.mark.parametrize(("headers", "body"), [
    pytest.param(b"Content-Length: 5\r\nContent-Length: 9\r\n", b"hello", id="two-lengths"),
    pytest.param(b"Content-Length: 5, 9\r\n", b"hello", id="length-list-disagrees"),
    pytest.param(b"Content-Length: +5\r\n", b"hello", id="plus-sign"),
    pytest.param(b"Content-Length: 0_5\r\n", b"hello", id="underscore"),
    pytest.param(b"Content-Length: 0x5\r\n", b"hello", id="hex-length"),
    pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                 b"0\r\n\r\n", id="length-and-chunked"),
    pytest.param(b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n",
                 id="chunk-0x"),
    pytest.param(b"Transfer-Encoding: chunked\r\n", b"+5\r\nhello\r\n0\r\n\r\n",
                 id="chunk-plus"),
    pytest.param(b"Transfer-Encoding: chunked\r\n", b"0_5\r\nhello\r\n0\r\n\r\n",
                 id="chunk-underscore"),
    pytest.param(b"Transfer-Encoding: chunked\r\n", b"-1\r\nhello\r\n0\r\n\r\n",
                 id="chunk-negative"),
    pytest.param(b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n",
                 id="chunk-without-crlf"),
    pytest.param(b"Content-Length : 5\r\n", b"hello", id="space-before-colon"),
    pytest.param(b"X-A: 1\r\n Content-Length: 5\r\n", b"hello", id="obs-fold"),
    pytest.param(b"not a header line\r\nContent-Length: 5\r\n", b"hello", id="no-colon"),
])
def test_ambiguous_framing_is_a_400_that_closes_the_connection(
        echo: BackgroundServer, headers: bytes, body: bytes) -> None:
    reply = _exchange(echo, _post(headers, body) + SMUGGLED)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b"Connection: close" in reply.split(b"\r\n\r\n")[0]
    assert b"/smuggled" not in reply
    assert reply.count(b"HTTP/1.1 ") == 1


def test_agreeing_repeated_content_lengths_are_one_length(echo: BackgroundServer) -> None:
    reply = _exchange(echo, _post(b"Content-Length: 5\r\nContent-Length: 5\r\n"
                                  b"Connection: close\r\n", b"hello"))
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"/first 5")


def test_a_chunk_extension_and_uppercase_hex_are_still_read(echo: BackgroundServer) -> None:
    body = b"A;name=value\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
    reply = _exchange(echo, _post(b"Transfer-Encoding: chunked\r\nConnection: close\r\n", body))
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"/first 10")


def test_a_negative_chunk_size_does_not_read_to_the_end_of_the_stream() -> None:
    # Before the fix int("-1", 16) made the server read everything until the client closed
    # (300 MB sent, 300 MB held); the client here keeps its side open and waits for the 400.
    with BackgroundServer(_echo_app) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(_post(b"Transfer-Encoding: chunked\r\n", b"-1\r\n") + b"x" * 100_000)
            started = time.monotonic()
            head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"bad chunk size" in head
        assert time.monotonic() - started < 3


def test_a_chunked_body_over_max_body_is_refused_before_it_is_read() -> None:
    with BackgroundServer(_echo_app, max_body=1000) as server:
        body = b"".join(b"200\r\n" + b"x" * 0x200 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        reply = _exchange(server, _post(b"Transfer-Encoding: chunked\r\n", body))
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_an_endless_trailer_section_is_refused(echo: BackgroundServer) -> None:
    trailers = b"".join(b"X-T%d: 1\r\n" % i for i in range(500))
    reply = _exchange(echo, _post(b"Transfer-Encoding: chunked\r\n",
                                  b"0\r\n" + trailers + b"\r\n"))
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"trailer" in reply



def test_connections_beyond_the_cap_get_a_503_and_are_closed() -> None:
    # Each connection costs a thread and up to max_body of buffer; idle ones (a slow or
    # hostile client) must not grow the server without end.
    server = KeepAliveServer(("127.0.0.1", 0), _echo_app, max_connections=3)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while server.open_connections < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
            extra.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = extra.recv(65536)
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert server.open_connections == 3
        held.pop().close()  # one leaves: a new client is served again
        deadline = time.monotonic() + 5
        while server.open_connections > 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as late:
            late.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert late.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()
        server.close_connections()
