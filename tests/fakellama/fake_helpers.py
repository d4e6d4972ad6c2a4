"""Helpers shared by the fakellama tests."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from contracts.servers.record_fixtures import WEATHER_TOOL as WEATHER_TOOL
from fakellama.fixtures import bundled_dir


def bundled(name: str) -> dict[str, Any]:
    """Return a bundled fixture file's JSON by fixture name."""
    data: dict[str, Any] = json.loads((bundled_dir() / f"{name}.json").read_text())
    return data


def fixture_json(name: str, path: str, body: Any, response_body: Any, *,
                 method: str = "POST", status: int = 200, **extra: Any) -> dict[str, Any]:
    """Build a minimal hand-written fixture object."""
    out: dict[str, Any] = {
        "fakellama_fixture": 1,
        "name": name,
        "request": {"method": method, "path": path, "body": body},
        "response": {"status": status,
                     "headers": {"Content-Type": "application/json; charset=utf-8"},
                     "body": response_body},
        "metadata": {"authored": "by hand"},
    }
    out.update(extra)
    return out


def write_json(directory: Path, name: str, data: Any) -> Path:
    """Write data as JSON to directory/name."""
    path = directory / name
    path.write_text(json.dumps(data))
    return path


_IDS = re.compile(rb'"id":"(?:chatcmpl-|resp_|msg_)?[A-Za-z0-9]{32}"|"created":\d+')


def without_fresh_ids(data: bytes | str) -> bytes:
    """The bytes with every reply id, tool-call id and creation time blanked out.

    A replay gets fresh ones, as each llama-server reply does; everything else is the
    recording's bytes.
    """
    raw = data.encode() if isinstance(data, str) else data
    return _IDS.sub(b"<fresh>", raw)


def checkout_env() -> dict[str, str]:
    """The environment, with this checkout's packages first on an absolute PYTHONPATH.

    A test that runs Python in another directory would otherwise import whichever
    pedrollm/fakellama is installed, not the code under test.
    """
    import fakellama
    import pedrollm

    paths = [str(Path(module.__file__ or "").resolve().parents[1])
             for module in (fakellama, pedrollm)]
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [*paths, *(str(Path(p).resolve()) for p in inherited)]))
