"""A loopback HTTP server that answers whatever reply a test sets next."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    """Logs nothing: half the replies are broken on purpose."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        """Log nothing."""


class CannedServer:
    """Serve one settable reply (status, headers, body bytes) to every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reply: tuple[int, list[tuple[str, str]], bytes] = (200, [], b"")
        self.hits = 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def set_reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Answer every following request with this reply."""
        with self._lock:
            self._reply = (status, list(headers), body)

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one WSGI request with the current reply."""
        with self._lock:
            status, headers, body = self._reply
            self.hits += 1
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Whatever"
        start_response(f"{status} {reason}", headers)
        return [body]

    @property
    def url(self) -> str:
        """The base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> CannedServer:
        """Serve in a daemon thread on a free loopback port."""
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
