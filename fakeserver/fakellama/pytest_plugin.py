"""pytest plugin: the `fake_llama_server` fixture, a FakeServer running for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakellama.server import FakeServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that passes FakeServer options to the fixture."""
    config.addinivalue_line(
        "markers",
        "fake_llama(**options): FakeServer options for the fake_llama_server fixture "
        "(fixtures_dir, api_key, ctx_size, strict, faults, personality, ...)",
    )


@pytest.fixture
def fake_llama_server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    """A fake llama-server on a free loopback port, with the bundled fixtures by default.

    Use `.url`, `.add_fixture(...)`, `.set_faults("...")` and `.requests`; configure it
    with `@pytest.mark.fake_llama(api_key="k", strict=True, ...)`.
    """
    marker = request.node.get_closest_marker("fake_llama")
    options = dict(marker.kwargs) if marker else {}
    fixtures_dir = options.pop("fixtures_dir", None)
    with FakeServer(fixtures_dir, **options) as server:
        yield server
