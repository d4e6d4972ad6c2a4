"""Fixture files: the on-disk format, loading with validation, and writing."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fakellama.faults import FaultSpecError, parse_faults

FORMAT_VERSION = 1
MAX_FIXTURE_BYTES = 2 * 1024 * 1024
# Deeper than any recorded exchange (a tool schema nests a dozen levels); matching and
# replay walk fixtures recursively, so a deeper file is refused when it is loaded.
MAX_DEPTH = 100
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
BY_HAND = "by hand"


class FixtureError(ValueError):
    """A fixture file or object that cannot be used; the message names the file."""


@dataclass(frozen=True)
class SseEvent:
    """One recorded server-sent event: its framed text and its time after the response began."""

    t: float
    raw: str


@dataclass(frozen=True)
class Fixture:
    """One recorded (or hand-written) exchange: a request and the response it got."""

    name: str
    method: str
    path: str
    body: Any
    status: int
    headers: dict[str, str]
    response_body: Any = None
    response_text: str | None = None
    events: tuple[SseEvent, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    faults: str = ""
    source: str = "<memory>"

    @property
    def streamed(self) -> bool:
        """True when the response is a list of SSE events rather than one body."""
        return self.events is not None

    @property
    def by_hand(self) -> bool:
        """True when the fixture was written by hand, not recorded from a server."""
        return self.metadata.get("authored") == BY_HAND

    def to_json(self) -> dict[str, Any]:
        """Return the fixture in its file format."""
        request: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.body is not None:
            request["body"] = self.body
        response: dict[str, Any] = {"status": self.status, "headers": dict(self.headers)}
        if self.events is not None:
            response["events"] = [{"t": e.t, "raw": e.raw} for e in self.events]
        elif self.response_text is not None:
            response["body_text"] = self.response_text
        else:
            response["body"] = self.response_body
        out: dict[str, Any] = {
            "fakellama_fixture": FORMAT_VERSION,
            "name": self.name,
            "request": request,
            "response": response,
            "metadata": dict(self.metadata),
        }
        if self.faults:
            out["faults"] = self.faults
        return out


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str, source: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise FixtureError(f"{source}: missing field {where}{key}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FixtureError(f"{source}: field {where}{key} has the wrong type")
    return value


def check_name(name: str, source: str = "<fixture>") -> str:
    """Return name if it is a safe fixture name (no path parts), else raise FixtureError."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise FixtureError(f"{source}: unsafe fixture name {name!r} (letters, digits, . _ - only)")
    return name


def fixture_from_json(data: Any, source: str = "<memory>") -> Fixture:
    """Validate a decoded fixture object and build a Fixture; errors name the source."""
    if not isinstance(data, dict):
        raise FixtureError(f"{source}: a fixture must be a JSON object")
    version = _need(data, "fakellama_fixture", int, "", source)
    if version != FORMAT_VERSION:
        raise FixtureError(f"{source}: unsupported fakellama_fixture version {version}")
    name = check_name(_need(data, "name", str, "", source), source)
    request = _need(data, "request", dict, "", source)
    method = _need(request, "method", str, "request.", source).upper()
    path = _need(request, "path", str, "request.", source)
    if not path.startswith("/"):
        raise FixtureError(f"{source}: request.path must start with '/'")
    response = _need(data, "response", dict, "", source)
    status = _need(response, "status", int, "response.", source)
    headers = response.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise FixtureError(f"{source}: response.headers must map strings to strings")
    metadata = _need(data, "metadata", dict, "", source)
    if metadata.get("authored") != BY_HAND:
        for key in ("server", "recorded_at", "command"):
            if key not in metadata:
                raise FixtureError(
                    f"{source}: metadata.{key} missing (a fixture is recorded, or says "
                    f'"authored": "{BY_HAND}")'
                )
    faults = data.get("faults", "")
    if not isinstance(faults, str):
        raise FixtureError(f"{source}: faults must be a string")
    try:
        parse_faults(faults)  # here, not at replay, where it would be a 500
    except FaultSpecError as exc:
        raise FixtureError(f"{source}: faults: {exc}") from None
    forms = [k for k in ("body", "body_text", "events") if k in response]
    if len(forms) != 1:
        raise FixtureError(f"{source}: response needs exactly one of body, body_text, events")
    events: tuple[SseEvent, ...] | None = None
    text: str | None = None
    if "events" in response:
        raw_events = _need(response, "events", list, "response.", source)
        built = []
        for i, event in enumerate(raw_events):
            t = _need(event, "t", (int, float), f"response.events[{i}].", source)
            raw = _need(event, "raw", str, f"response.events[{i}].", source)
            built.append(SseEvent(float(t), raw))
        events = tuple(built)
    elif "body_text" in response:
        text = _need(response, "body_text", str, "response.", source)
    return Fixture(
        name=name,
        method=method,
        path=path,
        body=request.get("body"),
        status=status,
        headers=dict(headers),
        response_body=response.get("body"),
        response_text=text,
        events=events,
        metadata=dict(metadata),
        faults=faults,
        source=source,
    )


def load_file(path: Path, root: Path | None = None) -> Fixture:
    """Load one fixture file, refusing symlinks out of root, oversized files and bad JSON."""
    source = str(path)
    if root is not None:
        real_root = root.resolve()
        real = path.resolve()
        if real != real_root and real_root not in real.parents:
            raise FixtureError(f"{source}: resolves outside the fixture directory {root}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FixtureError(f"{source}: cannot read ({exc.strerror})") from exc
    if size > MAX_FIXTURE_BYTES:
        raise FixtureError(f"{source}: {size} bytes is over the {MAX_FIXTURE_BYTES} byte limit")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FixtureError(f"{source}: invalid JSON ({exc})") from exc
    except RecursionError:
        # The decoder gives up past the interpreter's recursion limit with no file name.
        raise FixtureError(f"{source}: JSON nested deeper than {MAX_DEPTH} levels") from None
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise FixtureError(f"{source}: JSON nested {depth} levels deep; at most {MAX_DEPTH}")
    return fixture_from_json(data, source)


def _depth(value: Any) -> int:
    """How deeply value nests (a scalar is 0); iterative, so any depth is measured."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest


def load_dir(directory: Path | str) -> list[Fixture]:
    """Load every *.json fixture under directory (recursively), in a stable order."""
    root = Path(directory)
    if not root.is_dir():
        raise FixtureError(f"{root}: not a fixture directory")
    found: list[Fixture] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename.endswith(".json"):
                found.append(load_file(Path(dirpath) / filename, root))
    names: dict[str, str] = {}
    for fixture in found:
        if fixture.name in names:
            raise FixtureError(
                f"{fixture.source}: duplicate fixture name {fixture.name!r} "
                f"(also in {names[fixture.name]})"
            )
        names[fixture.name] = fixture.source
    return found


def bundled_dir(personality: str = "llamacpp") -> Path:
    """Return the directory of the fixtures shipped with fakellama for a personality."""
    return Path(str(resources.files("fakellama") / "fixtures" / personality))


def write_fixture(fixture: Fixture, directory: Path | str) -> Path:
    """Write a fixture as <name>.json in directory; refuses to replace an existing file."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{check_name(fixture.name)}.json"
    text = json.dumps(fixture.to_json(), indent=2, ensure_ascii=False) + "\n"
    with open(target, "x", encoding="utf-8") as handle:
        handle.write(text)
    return target
