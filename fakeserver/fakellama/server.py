"""FakeServer: run the fake on a loopback port in a background thread (a context manager)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from fakellama.app import FakeLlamaApp, ReceivedRequest
from fakellama.faults import Faults
from fakellama.fixtures import Fixture, bundled_dir, fixture_from_json, load_dir
from fakellama.httpd import MAX_BODY, KeepAliveServer


def load_fixtures(fixtures_dir: str | Path | None = None, *,
                  embeddings: bool = False) -> list[Fixture]:
    """Load fixtures from a directory, or the bundled ones when none is given.

    With ``embeddings`` the bundled ones include the exchanges recorded from a
    llama-server started with ``--embeddings`` (``fixtures/llamacpp_embeddings``).
    """
    if fixtures_dir is None:
        found: list[Fixture] = []
        for name in ("llamacpp", "llamacpp_embeddings") if embeddings else ("llamacpp",):
            directory = bundled_dir(name)
            found.extend(load_dir(directory) if directory.is_dir() else [])
        return found
    return load_dir(fixtures_dir)


class BackgroundServer:
    """Serve any WSGI app on a loopback port in a daemon thread; a context manager.

    Connections are kept open between requests as llama-server keeps them
    (``Keep-Alive: timeout=5, max=100``); see :mod:`fakellama.httpd`.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 keep_alive_timeout: float = 5.0, keep_alive_max: int = 100,
                 max_body: int = MAX_BODY) -> None:
        """Configure the server; port 0 picks a free port; a body over max_body is a 413."""
        if keep_alive_max < 1:
            raise ValueError(f"keep_alive_max must be at least 1, not {keep_alive_max}")
        if not 0 < keep_alive_timeout < math.inf:
            raise ValueError(f"keep_alive_timeout must be a number of seconds above 0, not "
                             f"{keep_alive_timeout}")
        self.wsgi_app = app
        self.host = host
        self.port = port
        self.keep_alive_timeout = keep_alive_timeout
        self.keep_alive_max = keep_alive_max
        self.max_body = max_body
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:41234."""
        if self._server is None:
            raise RuntimeError("server is not running; use start() or a with block")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def open_connections(self) -> int:
        """How many client connections are open now (0 when not running)."""
        return self._server.open_connections if self._server is not None else 0

    def start(self) -> Self:
        """Start serving in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = KeepAliveServer((self.host, self.port), self.wsgi_app,
                                 keep_alive_timeout=self.keep_alive_timeout,
                                 keep_alive_max=self.keep_alive_max,
                                 max_body=self.max_body, on_error=self._record_error)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name="fakellama", daemon=True)
        self._thread.start()
        return self

    def _record_error(self, exc: BaseException, method: str, path: str) -> None:
        where = f"{self.host}:{self.port}" if self._server is None else self.url
        exc.add_note(f"raised by the app served at {where} while answering {method} {path}")
        with self._errors_lock:
            self._errors.append(exc)

    @property
    def errors(self) -> list[BaseException]:
        """Return the exceptions the app raised while answering (the client got a 500)."""
        with self._errors_lock:
            return list(self._errors)

    def check(self) -> None:
        """Raise the first exception the app raised since the last check, then forget them all.

        The server answers an app's exception with a 500 and goes on serving; a test calls
        this (the pytest fixture calls it after every test) so the bug fails the test that
        caused it instead of surfacing as a puzzling 500 or a log line.
        """
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the server."""
        self.stop()


class FakeServer(BackgroundServer):
    """A fake llama-server on 127.0.0.1; `with FakeServer() as fake: fake.url`."""

    def __init__(
        self,
        fixtures_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive_timeout: float = 5.0,
        keep_alive_max: int = 100,
        max_body: int = MAX_BODY,
        **app_options: Any,
    ) -> None:
        """Serve a FakeLlamaApp (bundled fixtures unless fixtures_dir); port 0 = free port.

        Every other keyword (personality such as ``"vllm@0.10"``, personality_options,
        api_key, ctx_size, model, strict, faults, metrics, realtime, embeddings,
        ubatch_size) goes to :class:`~fakellama.app.FakeLlamaApp`, which documents them.
        Connections stay open for keep_alive_max requests or keep_alive_timeout idle
        seconds, llama-server's defaults; a request body over max_body bytes is a 413.
        """
        self.app = FakeLlamaApp(
            load_fixtures(fixtures_dir, embeddings=bool(app_options.get("embeddings"))),
            **app_options)
        super().__init__(self.app, host, port, keep_alive_timeout=keep_alive_timeout,
                         keep_alive_max=keep_alive_max, max_body=max_body)

    # -- conveniences for tests -------------------------------------------------------------

    def add_fixture(self, data: dict[str, Any] | Fixture, replace: bool = False) -> None:
        """Add one fixture (a Fixture or its JSON object) to the running server."""
        fixture = data if isinstance(data, Fixture) else fixture_from_json(data, "<added>")
        self.app.add_fixtures([fixture], replace=replace)

    def add_fixtures_dir(self, directory: str | Path) -> None:
        """Add every fixture in a directory."""
        self.app.add_fixtures(load_dir(directory))

    def set_faults(self, faults: str | Faults) -> None:
        """Set the faults every request gets ("" clears them)."""
        self.app.set_faults(faults)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Return the requests received so far, oldest first."""
        return self.app.requests

    def reset(self) -> None:
        """Return to the state it started in: its own fixtures and faults, no requests, no errors.

        The pytest fixture calls this between tests, so one running server serves a whole
        session without one test's added fixtures, faults or requests reaching the next.
        """
        self.app.reset()
        with self._errors_lock:
            self._errors.clear()
