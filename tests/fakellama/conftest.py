"""Shared fixtures for the fakellama tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakellama.server import FakeServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the real_server marker."""
    config.addinivalue_line(
        "markers", "real_server: needs a built llama-server (contracts/servers); skipped if none"
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """A fake with the bundled fixtures, shared by a module's read-only tests."""
    with FakeServer() as server:
        yield server


