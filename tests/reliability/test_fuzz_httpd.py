"""A bounded fuzz of fakellama's HTTP parser: request lines, headers and body framing.

Hypothesis builds requests from pieces a hostile or broken client might send (odd
methods and targets, versions, repeated or malformed Content-Length and
Transfer-Encoding, chunk sizes with signs, prefixes and underscores, truncated bodies,
pipelined requests, raw bytes) and sends each on a fresh connection to one running fake.
Whatever arrives, the fake must answer or close within seconds, never with a 500 (an
exception in the parser or the app), and keep nothing without bound: the kept request
log stays within its limit and every connection is closed afterwards. The default
profile runs 100 examples (a few seconds); ``--hypothesis-profile=fuzz`` runs 10,000.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakellama.server import FakeServer

KEEP = 20
MAX_BODY = 4096
ANSWER_WITHIN = 5.0

methods = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "get", "",
                           "P OST", "\x00", "GET\t"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
targets = st.sampled_from(["/health", "/v1/chat/completions", "/completion", "/props",
                           "/v1/models", "*", "", "http://x/v1/models", "/%zz", "/a?b=%00",
                           "/" + "a" * 3000, "/v1/chat/completions?x=1#f"])
# one_of picks each branch about equally often: valid versions and framing headers come
# up often enough that the framing checks see hundreds of cases under the fuzz profile.
versions = st.just("HTTP/1.1") | st.just("HTTP/1.0") | st.sampled_from(
    ["HTTP/0.9", "HTTP/2.0", "HTTP/1.1 x", "HTTP/1.12", "HTTP/01.1", "http/1.1", ""])
numbers = st.sampled_from(["0", "5", "46", "+46", "4_6", "-1", "0x2e", " 46 ", "46, 46",
                           "46,47", "1e3", "99999999999999999999", "", "٤٦", "4096",
                           "4097"]) | st.integers(0, 5000).map(str)
chunk_sizes = st.sampled_from(["0", "5", "-1", "0x5", "+5", "5_0", "ffffffffffffffff",
                               "5;ext=1", " 5 ", "", "g", "FFF"]) | st.integers(
    0, 300).map(lambda n: f"{n:x}")
header_values = numbers | st.sampled_from(
    ["chunked", "Chunked", "gzip, chunked", "chunked, chunked", "identity", "close",
     "keep-alive", "application/json", "100-continue", "Bearer x"]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=255), max_size=20)
header_names = st.sampled_from(["Content-Length", "Transfer-Encoding"]) | st.sampled_from(
    ["Connection", "Host", "Content-Type", "Expect", "Authorization", "Origin",
     "content-length", "Content-Length ", " Transfer-Encoding", "X-Junk"])
headers = st.lists(st.tuples(header_names, header_values), max_size=6)
json_bodies = st.sampled_from([b"", b"{}", b'{"messages":[{"role":"user","content":"Say hello."}]}',
                               b'{"prompt":"x","n_predict":2}', b"[", b"\xff\xfe", b"null",
                               b'{"messages":' * 50]) | st.binary(max_size=200)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    pieces = draw(st.lists(st.tuples(chunk_sizes, st.binary(max_size=40)), max_size=4))
    out = b"".join(size.encode() + b"\r\n" + data + draw(st.sampled_from([b"\r\n", b"", b"X"]))
                   for size, data in pieces)
    return out + draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n", b"", b"0\r\n"]))


def _ambiguous(version: str, fields: list[tuple[str, str]]) -> bool:
    """Whether RFC 9112 says this framing must be refused: Content-Length with
    Transfer-Encoding, or Content-Length values that are not one plain number."""
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        return False  # refused or read as HTTP/0.9 (no headers at all) before framing
    lengths = [v for n, v in fields if n.lower() == "content-length"]
    if not lengths:
        return False
    if any(n == "Transfer-Encoding" for n, _ in fields):
        return True
    items = {item.strip() for value in lengths for item in value.split(",")}
    return len(items) != 1 or not all(c in "0123456789" for c in next(iter(items))) or (
        next(iter(items)) == "")


@st.composite
def requests_(draw: st.DrawFn) -> tuple[bytes, bool]:
    version = draw(versions)
    line = f"{draw(methods)} {draw(targets)} {version}".rstrip(" ")
    fields = draw(headers)
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    body = draw(json_bodies | chunked_bodies())
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    data = (line + ending + head + ending).encode("utf-8") + body
    data += draw(st.sampled_from([b"", b"GET /health HTTP/1.1\r\n\r\n"]))
    return data, _ambiguous(version, fields)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer(keep_requests=KEEP, keep_request_bytes=16 * MAX_BODY,
                    max_body=MAX_BODY, keep_alive_timeout=2.0) as server:
        yield server


def _exchange(fake: FakeServer, data: bytes) -> bytes:
    port = int(fake.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + ANSWER_WITHIN
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the fake may close on a bad request line before reading all of it
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                pytest.fail(f"no answer and no close within {ANSWER_WITHIN} s for {data!r}")
            if not chunk:
                break
            chunks.append(chunk)
            assert time.monotonic() < deadline, f"still sending after {ANSWER_WITHIN} s"
    return b"".join(chunks)


@given(case=requests_() | st.binary(max_size=300).map(lambda raw: (raw, False)))
def test_any_request_is_answered_or_closed_promptly_and_never_with_a_500(
        fake: FakeServer, case: tuple[bytes, bool]) -> None:
    data, ambiguous = case
    reply = _exchange(fake, data)
    assert b"HTTP/1.1 500 " not in reply, (data, reply[:300])
    fake.check()  # re-raises what the app raised (its 500), with the request that caused it
    statuses = [line[9:12] for line in reply.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert all(status.isdigit() for status in statuses), statuses
    final = [status for status in statuses if not status.startswith(b"1")]
    if ambiguous:  # refused, and nothing after it served (no request smuggled behind it)
        assert final[:1] == [b"400"] and len(final) == 1, (data, reply[:300])
    assert len(fake.requests) <= KEEP


def test_after_the_fuzz_nothing_is_left_behind(fake: FakeServer) -> None:
    # Runs after the fuzz in this module (same server): connections and threads all end.
    deadline = time.monotonic() + 10
    while fake.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.open_connections == 0
    assert len(fake.requests) <= KEEP
    assert sum(len(r.raw) for r in fake.requests) <= 16 * MAX_BODY
    assert threading.active_count() < 50
