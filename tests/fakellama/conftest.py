"""Shared fixtures for the fakellama tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the real_server marker."""
    config.addinivalue_line(
        "markers", "real_server: needs a built llama-server (contracts/servers); skipped if none"
    )


