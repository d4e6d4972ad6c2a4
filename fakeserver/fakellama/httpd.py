"""A small threaded HTTP/1.1 WSGI server that keeps connections open, as llama-server does.

llama-server answers ``Keep-Alive: timeout=5, max=100`` and keeps each connection for up
to 100 requests or 5 idle seconds; clients (requests' pool, httpx, the SDK) reuse it.
werkzeug's development server closes every connection instead, which both differs from
the real server and costs a new connection per request. This server:

- runs one thread per connection and serves requests on it until the client asks to
  close, the connection has served ``keep_alive_max`` requests, or it sits idle for
  ``keep_alive_timeout`` seconds;
- reads the whole request body before calling the app (``Content-Length`` or chunked,
  up to ``max_body`` bytes), so a body the app does not read never spills into the next
  request;
- refuses, with 400 and a closed connection, framing that two parsers could read two ways
  (RFC 9112 section 6): Content-Length together with Transfer-Encoding, Content-Length
  headers that disagree or are not plain digits, chunk sizes that are not plain hex
  digits (``-1`` would read to the end of the stream), chunk data not followed by CRLF,
  whitespace before a header's colon, obs-fold and lines that are not header lines;
- sends ``Content-Length`` replies as one write and other replies chunked, each piece
  the app yields written at once (SSE streams arrive as they are produced);
- passes the client socket to the app as ``environ["fakellama.socket"]`` so faults can
  cut the connection, and drops it quietly when the app raises ``ConnectionError``;
- answers 500 when the app raises anything else, logs it and hands it to ``on_error``
  (the pytest fixture re-raises it in the test whose request caused it);
- serves at most ``max_connections`` connections at once (512), answering 503 and
  closing any beyond, so idle or half-sent connections cannot grow it without end;
- on :meth:`KeepAliveServer.close_connections` shuts every open connection, so a stopped
  server does not go on answering over a client's pooled connection.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

SOCKET_KEY = "fakellama.socket"
SERVER_NAME = "llama.cpp"
MAX_BODY = 64 * 1024 * 1024
MAX_CONNECTIONS = 512
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Called with (exception, method, path) when the app raises while answering.
ErrorHook = Callable[[BaseException, str, str], None]

_NO_BODY_STATUSES = frozenset({204, 304})
_TOO_MANY = (b"HTTP/1.1 503 Service Unavailable\r\nServer: " + SERVER_NAME.encode()
             + b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n"
             b"Connection: close\r\n\r\ntoo many connections\n")
_DIGITS = re.compile(rb"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_CHUNK_LINE = 1024
_MAX_TRAILER_LINE = 8192
_MAX_TRAILERS = 100
_log = logging.getLogger("fakellama")


class _BadRequest(Exception):
    """A request this server refuses before the app sees it (status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _content_length(values: list[str]) -> int:
    """The one length that every Content-Length header (or list item) gives, else 400.

    RFC 9112 6.3: repeated headers that agree are one length; disagreeing ones, or a value
    that is not all digits (``+46``, ``4_6``, ``-1`` that Python's int() would take), are
    an unrecoverable framing error.
    """
    items = {item.strip() for value in values for item in value.split(",")}
    if len(items) != 1:
        raise _BadRequest(400, f"Content-Length headers disagree: {sorted(items)[:4]!r}")
    text = items.pop()
    if not _DIGITS.fullmatch(text.encode("latin-1", "replace")) or len(text) > 18:
        raise _BadRequest(400, f"bad Content-Length {text[:40]!r}")
    return int(text)


class KeepAliveServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Threaded TCP server for :class:`WSGIHandler`; one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: WSGIApp, *,
                 keep_alive_timeout: float = 5.0, keep_alive_max: int = 100,
                 max_body: int = MAX_BODY, on_error: ErrorHook | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        """Bind to address (port 0 picks one) and serve app; on_error hears the app's bugs."""
        self.app = app
        self.max_connections = max_connections
        self.on_error = on_error
        self.keep_alive_timeout = keep_alive_timeout
        self.keep_alive_max = keep_alive_max
        self.max_body = max_body
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, WSGIHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a new connection in its own thread, or refuse it with 503 when at the cap.

        One thread (and up to max_body of buffered body) per connection: without a cap,
        a client opening connections and never finishing a request grows the server
        without end.
        """
        with self._connections_lock:  # counted here, not in the thread, so a burst is too
            full = len(self._connections) >= self.max_connections
            if not full:
                self._connections.add(request)
        if not full:
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.track(request, False)
                raise
            return
        try:
            request.sendall(_TOO_MANY)
        except OSError:
            pass
        self.shutdown_request(request)

    def track(self, conn: socket.socket, is_open: bool) -> None:
        """Remember (or forget) an open connection."""
        with self._connections_lock:
            if is_open:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Shut every open client connection (their threads then end)."""
        with self._connections_lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        with self._connections_lock:
            return len(self._connections)


class WSGIHandler(BaseHTTPRequestHandler):
    """Serves the requests of one connection to the server's WSGI app."""

    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    server: KeepAliveServer

    def setup(self) -> None:
        """Set the idle timeout and TCP_NODELAY, and register the connection."""
        super().setup()
        self.connection.settimeout(self.server.keep_alive_timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.served = 0
        self.server.track(self.connection, True)

    def finish(self) -> None:
        """Forget the connection and close its files."""
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        """Serve requests until the connection is to close; a dropped client ends it."""
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def handle_one_request(self) -> None:
        """Read one request line and headers, then run the app."""
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = "HTTP/1.1"
            self.command = ""
            self._send_plain(414, "Request-URI Too Long")
            self.close_connection = True
            return
        if not self.parse_request():  # it has sent its own error reply
            return
        self.served += 1
        if self.served >= self.server.keep_alive_max:
            self.close_connection = True
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._send_plain(exc.status, str(exc))
            return
        self._run_app(body)

    # -- request --------------------------------------------------------------------------------

    def _check_header_lines(self) -> None:
        # RFC 9112 section 5: a field line with whitespace before its colon, or not a field
        # line at all, is a 400 (Python's parser drops it and every line after it, so a
        # "Content-Length : 5" would leave its body to be read as the next request); so is
        # obs-fold, a line continued on the next (a proxy may read it as a header of its own).
        if self.headers.defects:
            raise _BadRequest(400, "malformed header line")
        for name, value in self.headers.items():
            if "\n" in value or "\r" in value or not name or name != name.strip():
                raise _BadRequest(400, f"malformed header {name[:40]!r}")

    def _read_body(self) -> bytes:
        self._check_header_lines()
        # RFC 9112 section 6: framing a server and a proxy could read two ways is refused
        # with 400 and the connection closed, so no request can be smuggled behind a body.
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings and lengths:
            raise _BadRequest(400, "both Transfer-Encoding and Content-Length are set")
        if encodings:
            encoding = ",".join(encodings).strip().lower()
            if encoding != "chunked":
                raise _BadRequest(501, f"Transfer-Encoding {encoding!r} is not supported")
            return self._read_chunked()
        if not lengths:
            return b""
        length = _content_length(lengths)
        if length > self.server.max_body:
            raise _BadRequest(413, f"body of {length} bytes is over {self.server.max_body}")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionAbortedError("client closed the connection mid-body")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
            if not line:
                raise ConnectionAbortedError("client closed the connection mid-body")
            if not line.endswith(b"\n"):
                raise _BadRequest(400, f"chunk size line over {_MAX_CHUNK_LINE} bytes")
            size_text = line.split(b";", 1)[0].strip(b" \t\r\n")
            # Hex digits only: int(text, 16) would take "-1" (read to the end), "0x2e", "+2e"
            # and "2_e", which another parser reads differently or refuses.
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _BadRequest(400, f"bad chunk size {size_text[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                self._skip_trailers()
                return b"".join(parts)
            total += size
            if total > self.server.max_body:
                raise _BadRequest(413, f"chunked body is over {self.server.max_body} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionAbortedError("client closed the connection mid-body")
            parts.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequest(400, "chunk data not followed by CRLF")

    def _skip_trailers(self) -> None:
        # Trailers are read and dropped, but only up to as many as headers may be.
        for _ in range(_MAX_TRAILERS):
            line = self.rfile.readline(_MAX_TRAILER_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                return
            if not line.endswith(b"\n"):
                raise _BadRequest(400, f"trailer line over {_MAX_TRAILER_LINE} bytes")
        raise _BadRequest(400, f"over {_MAX_TRAILERS} trailer lines")

    def _environ(self, body: bytes) -> dict[str, Any]:
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute form, as a proxy would send
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        client = self.client_address
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": client[0] if client else "",
            "REMOTE_PORT": str(client[1]) if client else "",
            "CONTENT_LENGTH": str(len(body)) if body or "Content-Length" in self.headers
            else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            SOCKET_KEY: self.connection,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    # -- response -------------------------------------------------------------------------------

    def _run_app(self, body: bytes) -> None:
        environ = self._environ(body)
        state: dict[str, Any] = {"status": None, "headers": None, "sent": False,
                                 "chunked": False}
        is_head = self.command == "HEAD"

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info and state["sent"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def write(data: bytes) -> None:
            if not state["sent"]:
                data = self._head(state, is_head) + self._frame(state, data, is_head)
                state["sent"] = True
            else:
                data = self._frame(state, data, is_head)
            if data:
                self.connection.sendall(data)

        try:
            result = self.server.app(environ, start_response)
            try:
                for data in result:
                    if data:
                        write(data)
                if not state["sent"]:
                    write(b"")
                if state["chunked"]:
                    self.connection.sendall(b"0\r\n\r\n")
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ConnectionError:
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the app's bug must not kill the server
            _log.exception("fakellama: error answering %s %s", self.command, self.path)
            if self.server.on_error is not None:
                self.server.on_error(exc, self.command, self.path)
            self.close_connection = True
            if not state["sent"]:
                self._send_plain(500, "Internal Server Error")

    def _head(self, state: dict[str, Any], is_head: bool) -> bytes:
        status: str = state["status"]
        headers: list[tuple[str, str]] = state["headers"]
        code = int(status.split(None, 1)[0])
        names = {name.lower() for name, _ in headers}
        lines = [f"{self.protocol_version} {status}", f"Server: {SERVER_NAME}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        bodiless = is_head or code < 200 or code in _NO_BODY_STATUSES
        if "content-length" not in names and not bodiless:
            if self.request_version == "HTTP/1.1":
                state["chunked"] = True
                lines.append("Transfer-Encoding: chunked")
            else:
                self.close_connection = True  # the end of the body is the end of the connection
        if any(name.lower() == "connection" and value.strip().lower() == "close"
               for name, value in headers):
            self.close_connection = True  # the app's own Connection: close is already there
        elif self.close_connection:
            lines.append("Connection: close")
        else:
            timeout = f"{self.server.keep_alive_timeout:g}"
            lines.append(f"Keep-Alive: timeout={timeout}, max={self.server.keep_alive_max}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @staticmethod
    def _frame(state: dict[str, Any], data: bytes, is_head: bool) -> bytes:
        if is_head or not data:
            return b""
        if state["chunked"]:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def _send_plain(self, code: int, message: str) -> None:
        payload = message.encode("utf-8")
        reason = self.responses.get(code, ("Error",))[0]
        head = (f"HTTP/1.1 {code} {reason}\r\nServer: {SERVER_NAME}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
        try:
            self.connection.sendall(head.encode("latin-1") + payload)
        except OSError:
            pass
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Answer a request http.server could not parse with a plain-text error."""
        self._send_plain(code, message or self.responses.get(code, ("Error",))[0])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Log nothing (faults drop connections on purpose)."""
