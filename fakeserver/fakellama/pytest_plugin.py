"""pytest plugin: the `fake_llama_server` fixture, one running FakeServer reset for each test.

Starting a server per test costs a thread, a socket and the fixture loading; like
pytest-httpserver's ``httpserver``, the fixture instead takes a server started once per
session (one per distinct set of ``fake_llama`` marker options) and resets it before each
test: the test sees only the fixtures and faults the server was created with, and no
earlier test's requests. After the test, any exception the fake's app raised while
answering (which the client saw as a 500) is raised again as the test's own failure, so
the test that sent the request fails with the real traceback.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from fakellama.server import FakeServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that passes FakeServer options to the fixture."""
    config.addinivalue_line(
        "markers",
        "fake_llama(**options): FakeServer options for the fake_llama_server fixture "
        "(fixtures_dir, api_key, ctx_size, strict, faults, personality, ...)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail the test itself (not its teardown) when the fake raised while answering it."""
    outcome = yield
    server = getattr(item, "funcargs", {}).get("fake_llama_server")
    if isinstance(server, FakeServer):
        server.check()
    return outcome


class FakeServerPool:
    """Running FakeServers, one per set of options, stopped when the session ends."""

    def __init__(self) -> None:
        """Start with no servers; each is started the first time a test asks for it."""
        self._servers: dict[str, FakeServer] = {}

    def get(self, options: dict[str, Any]) -> FakeServer:
        """Return the running server made with these options, starting it if need be."""
        # repr, not hash: options may hold lists or Paths; sorted so order does not matter.
        key = repr(sorted(options.items()))
        server = self._servers.get(key)
        if server is None:
            settings = dict(options)
            fixtures_dir = settings.pop("fixtures_dir", None)
            server = FakeServer(fixtures_dir, **settings).start()
            self._servers[key] = server
        return server

    def stop_all(self) -> None:
        """Stop every server the pool started."""
        for server in self._servers.values():
            server.stop()
        self._servers.clear()


@pytest.fixture(scope="session")
def fake_llama_server_pool() -> Iterator[FakeServerPool]:
    """The session's running fake servers (use `fake_llama_server` in a test)."""
    pool = FakeServerPool()
    yield pool
    pool.stop_all()


@pytest.fixture
def fake_llama_server(request: pytest.FixtureRequest,
                      fake_llama_server_pool: FakeServerPool) -> Iterator[FakeServer]:
    """A fake llama-server on a loopback port, with the bundled fixtures by default.

    Use `.url`, `.add_fixture(...)`, `.set_faults("...")` and `.requests`; configure it
    with `@pytest.mark.fake_llama(api_key="k", strict=True, ...)` on the test, its class or
    its module (`pytestmark`). What a test adds or sets is undone before the next test;
    an exception the fake raised while answering this test's requests fails this test.
    """
    marker = request.node.get_closest_marker("fake_llama")
    server = fake_llama_server_pool.get(dict(marker.kwargs) if marker else {})
    server.reset()
    try:
        yield server
        server.check()  # what the app raised after the test body (a test's own teardown)
    finally:
        server.reset()
