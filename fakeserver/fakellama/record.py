"""Record mode: a proxy that forwards every request to a real server and writes fixtures."""

from __future__ import annotations

import base64
import http.client
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from werkzeug.wrappers import Request

from fakellama.fixtures import Fixture, SseEvent, check_name, write_fixture
from fakellama.wire import dumps

NAME_HEADER = "X-Fakellama-Name"
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})
KEPT_RESPONSE_HEADERS = ("Content-Type", "Retry-After")
_FRAMING = frozenset({"transfer-encoding", "content-length", "connection", "keep-alive",
                      "server"})
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding",
                          "transfer-encoding", "keep-alive", NAME_HEADER.lower()})
StartResponse = Callable[..., Any]


# Only the exact "Bearer " is caught by shape ("token 5" is ordinary prose); credentials
# under any other scheme or casing are caught because the client sent them (credentials_in).
_SCHEME_TOKEN = re.compile(r"(Bearer\s+)[^\s\"']+")
_API_KEY_FLAG = re.compile(r"(--api-key[ =])\S+")
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s\"']*@")
# A part of a credential (a token after its scheme, one cookie's value, a user name) is
# scrubbed on its own only when long enough that replacing it cannot garble the fixture.
_MIN_PART = 4


def strip_userinfo(url: str) -> str:
    """Return url without its user:password@ part."""
    return _USERINFO.sub(r"\1", url)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, its JSON- and URL-escaped forms, any scheme-prefixed token,
    --api-key value and URL userinfo in text with <redacted>."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}:
            if form:
                text = _replace_any_case(text, form)
    text = _SCHEME_TOKEN.sub(r"\1" + REDACTED, text)
    text = _API_KEY_FLAG.sub(r"\1" + REDACTED, text)
    return _USERINFO.sub(r"\1" + REDACTED + "@", text)


def _replace_any_case(text: str, secret: str) -> str:
    if secret.lower() not in text.lower():
        return text
    return re.sub(re.escape(secret), REDACTED, text, flags=re.IGNORECASE)


def credentials_in(name: str, value: str) -> list[str]:
    """Every string in one secret header's value worth scrubbing (the value and its parts)."""
    found = [value, value.strip()]
    scheme, _, token = value.strip().partition(" ")
    if token.strip():
        found.append(token.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            found.extend([decoded, user, password])
    if name.lower() == "cookie":
        for cookie in value.split(";"):
            found.extend(cookie.strip().partition("=")[::2])
    return [part for part in found if part == value or len(part) >= _MIN_PART]


def _scrub_value(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [_scrub_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v, secrets) for k, v in value.items()}
    return value


def _slug(method: str, path: str) -> str:
    return (method.lower() + "-" + re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-"))[:80] or "root"


class Recorder:
    """A WSGI app that proxies to upstream and writes one fixture per exchange into out_dir."""

    def __init__(
        self,
        upstream: str,
        out_dir: str | Path,
        *,
        secrets: Iterable[str] = (),
        server_name: str = "llama-server",
        command: str | None = None,
        timeout: float = 600.0,
        log: Callable[[str], None] | None = None,
        api_key: str | None = None,
    ) -> None:
        """Configure the proxy; secrets (and api_key) are scrubbed from everything written.

        api_key, when given, is used only to read the upstream's version and model.
        """
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        # What is written names the upstream without its user:password, and both are
        # scrubbed wherever else they appear (the command line that started the recorder).
        self.upstream = strip_userinfo(upstream).rstrip("/")
        self._parts = parts
        self.out_dir = Path(out_dir)
        userinfo = [parts.username, parts.password]
        userinfo += [unquote(part) for part in userinfo if part]
        self.secrets = [s for s in [*secrets, api_key] if s]
        self.secrets += [s for s in userinfo if s and len(s) >= _MIN_PART]
        self.api_key = api_key
        self.server_name = server_name
        self.command = scrub(command if command is not None else " ".join(sys.argv), self.secrets)
        self.timeout = timeout
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._counter = 0
        self._about: dict[str, Any] | None = None
        self.written: list[Path] = []

    def _connect(self) -> http.client.HTTPConnection:
        host = self._parts.hostname or "127.0.0.1"
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, self._parts.port, timeout=self.timeout)
        return http.client.HTTPConnection(host, self._parts.port, timeout=self.timeout)

    def _fetch_json(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        """(the upstream's status, 0 when it did not answer; its JSON when it answered 200)."""
        conn = self._connect()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            return 0, None
        finally:
            conn.close()
        try:
            return response.status, json.loads(data) if response.status == 200 else None
        except ValueError:
            return response.status, None

    def about(self, headers: dict[str, str]) -> dict[str, Any]:
        """Return (once) the upstream's version and model, for fixture metadata."""
        with self._lock:
            if self._about is not None:
                return self._about
        auth = {k: v for k, v in headers.items() if k.lower() in SECRET_HEADERS}
        if self.api_key:
            auth = {"Authorization": f"Bearer {self.api_key}"}
        props_status, props = self._fetch_json("/props", auth)
        models_status, models = self._fetch_json("/v1/models", auth)
        version = props.get("build_info") if isinstance(props, dict) else None
        model = None
        data = models.get("data") if isinstance(models, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            model = data[0].get("id")
        about = {"version": version or "unknown", "model": model or "unknown"}
        # An upstream that did not answer (down), is still loading (503), or refused this
        # client's key (401) is asked again on the next request; one that has no such
        # route (404) is not.
        if {props_status, models_status} <= {200, 404, 405}:
            with self._lock:
                self._about = about
        return about

    def _name(self, request: Request) -> str:
        wanted = request.headers.get(NAME_HEADER)
        with self._lock:
            self._counter += 1
            counter = self._counter
        if wanted:
            return check_name(wanted, NAME_HEADER)
        return f"{_slug(request.method, request.path)}-{counter:03d}"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Forward one request upstream, stream the answer back, and write the fixture."""
        request = Request(environ)
        raw = request.get_data(cache=True)
        name = self._name(request)
        secrets = list(self.secrets)
        for key, value in request.headers.items():
            if key.lower() in SECRET_HEADERS:
                secrets.extend(credentials_in(key, value))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        headers["Accept-Encoding"] = "identity"
        about = self.about(headers)
        target = request.full_path if request.query_string else request.path
        conn = self._connect()
        started = time.monotonic()
        try:
            conn.request(request.method, target, body=raw or None, headers=headers)
            upstream = conn.getresponse()
        except OSError as exc:
            conn.close()
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [f"fakellama record: upstream {self.upstream} unreachable: {exc}".encode()]
        kept = [(k, upstream.getheader(k)) for k in KEPT_RESPONSE_HEADERS if upstream.getheader(k)]
        response_headers = [(k, str(v)) for k, v in kept]
        # The client gets the upstream's headers unchanged but for framing, which this
        # server redoes: Content-Length for a whole body, and Connection: close if the
        # upstream closed (llama-server closes after every error).
        relayed = [(k, v) for k, v in upstream.getheaders() if k.lower() not in _FRAMING]
        if "close" in (upstream.getheader("Connection") or "").lower():
            relayed.append(("Connection", "close"))
        status = f"{upstream.status} {upstream.reason}"
        content_type = upstream.getheader("Content-Type", "") or ""

        def finish(body: Any, text: str | None, events: tuple[SseEvent, ...] | None) -> None:
            fixture = Fixture(
                name=name,
                method=request.method,
                path=request.path,
                body=_scrub_value(_request_body(raw), secrets),
                status=upstream.status,
                headers={k: scrub(v, secrets) for k, v in response_headers},
                response_body=_scrub_value(body, secrets),
                response_text=scrub(text, secrets) if text is not None else None,
                events=events,
                metadata={
                    "server": self.server_name,
                    "version": about["version"],
                    "model": about["model"],
                    "upstream": self.upstream,
                    "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": scrub(self.command, secrets),
                },
            )
            self._write(fixture)

        if content_type.startswith("text/event-stream"):
            start_response(status, relayed)
            return self._relay_stream(upstream, conn, started, finish, secrets,
                                      f"{request.method} {request.path}")
        data = upstream.read()
        conn.close()
        start_response(status, [*relayed, ("Content-Length", str(len(data)))])
        text = data.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None and dumps(parsed) == text:
            finish(parsed, None, None)
        else:
            finish(None, text, None)
        return [data]

    def _relay_stream(self, upstream: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                      started: float,
                      finish: Callable[[Any, str | None, tuple[SseEvent, ...] | None], None],
                      secrets: list[str], what: str = "the request") -> Iterator[bytes]:
        events: list[SseEvent] = []
        buffer = b""
        ended = False
        try:
            while True:
                chunk = upstream.read1(65536)
                if not chunk:
                    ended = True
                    break
                yield chunk
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    t = round(time.monotonic() - started, 4)
                    events.append(SseEvent(t, block.decode("utf-8", errors="replace") + "\n\n"))
        finally:
            conn.close()
            if not ended:
                # The client left (or the upstream broke) before the stream's end: what was
                # relayed is not the server's reply, and replaying it would answer wrongly.
                self.log(f"fakellama record: not recorded: the stream of {what} ended "
                         f"before the server finished it ({len(events)} events relayed)")
            else:
                if buffer.strip():
                    t = round(time.monotonic() - started, 4)
                    events.append(SseEvent(t, buffer.decode("utf-8", errors="replace")))
                scrubbed = tuple(SseEvent(e.t, scrub(e.raw, secrets)) for e in events)
                finish(None, None, scrubbed)

    def _write(self, fixture: Fixture) -> None:
        base = fixture.name
        for attempt in range(1, 1000):
            candidate = base if attempt == 1 else f"{base}-{attempt}"
            try:
                path = write_fixture(_renamed(fixture, candidate), self.out_dir)
            except FileExistsError:
                continue
            if attempt > 1:
                self.log(f"fakellama record: {base}.json exists; kept it and wrote {path.name}")
            else:
                self.log(f"fakellama record: wrote {path}")
            with self._lock:
                self.written.append(path)
            return
        raise RuntimeError(f"fakellama record: too many fixtures named {base}")


def _renamed(fixture: Fixture, name: str) -> Fixture:
    from dataclasses import replace

    return replace(fixture, name=name)


def _request_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
