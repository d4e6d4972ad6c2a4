"""Record mode writes no credential, however the client sent it, and finds the upstream late.

Issue 18 item 13: the upstream URL's user:password reached ``metadata.upstream`` and
``command``; a token sent as ``bearer`` or ``Token`` and echoed by the upstream reached
``body_text``; an upstream down at the first request left version and model "unknown" for
the rest of the run.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from fakellama.fixtures import load_dir
from fakellama.record import NAME_HEADER, Recorder
from fakellama.server import BackgroundServer, FakeServer

USER, PASSWORD = "recorder-user", "pa55-w0rd-upstream"
TOKENS = {
    "lower-bearer": ("Authorization", "bearer lower-case-token-111"),
    "token-scheme": ("Authorization", "Token token-scheme-secret-222"),
    "basic": ("Authorization",
              "Basic " + base64.b64encode(b"basic-user:basic-pass-333").decode()),
    "api-key": ("X-Api-Key", "x-api-key-secret-444"),
    "cookie": ("Cookie", "session=cookie-secret-555; theme=dark"),
}
# What must appear in no written byte, in any casing.
NEVER = [PASSWORD, "lower-case-token-111", "token-scheme-secret-222", "basic-pass-333",
         "x-api-key-secret-444", "cookie-secret-555",
         base64.b64encode(b"basic-user:basic-pass-333").decode()]


def _echo_upstream(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """An upstream that repeats the client's credentials back, as some error pages do."""
    path = environ["PATH_INFO"]
    if path == "/props":
        body = json.dumps({"build_info": "b9999-test"}).encode()
    elif path == "/v1/models":
        body = json.dumps({"data": [{"id": "echo-model"}]}).encode()
    else:
        seen = [environ.get(k, "") for k in ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY",
                                             "HTTP_COOKIE")]
        said = " ".join(v for v in seen if v)
        if path == "/text":
            body = f"you sent {said} and {said.upper()} and {json.dumps(said)}".encode()
        elif path == "/stream":
            start_response("200 OK", [("Content-Type", "text/event-stream")])
            return [f"data: {json.dumps({'echo': said})}\n\n".encode(), b"data: [DONE]\n\n"]
        else:
            body = json.dumps({"echo": said, "nested": [{"again": said.lower()}]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("X-Echo", environ.get("HTTP_AUTHORIZATION", "none")),
                              ("Content-Length", str(len(body)))])
    return [body]


def _port(server: BackgroundServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_no_credential_the_client_or_the_url_carried_is_written(tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    logs: list[str] = []
    with BackgroundServer(_echo_upstream) as upstream:
        port = _port(upstream)
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
        recorder = Recorder(url, out, log=logs.append,
                            command=f"python -m fakellama record --upstream {url} --out x")
        with BackgroundServer(recorder) as proxy:
            for label, (header, value) in TOKENS.items():
                for path in ("/json", "/text", "/stream"):
                    reply = requests.post(proxy.url + path, json={"hi": 1}, timeout=5,
                                          headers={header: value,
                                                   NAME_HEADER: f"{label}{path.replace('/', '-')}"})
                    assert reply.status_code == 200
    files = sorted(out.glob("*.json"))
    assert len(files) == len(TOKENS) * 3
    written = "\n".join(f.read_text(encoding="utf-8") for f in files) + "\n".join(logs)
    for secret in NEVER:
        assert secret.lower() not in written.lower(), secret
    assert "<redacted>" in written  # the echoes were there, and were scrubbed
    meta = json.loads(files[0].read_text())["metadata"]
    assert meta["upstream"] == f"http://127.0.0.1:{port}"
    assert USER not in meta["command"] and PASSWORD not in meta["command"]
    assert (meta["version"], meta["model"]) == ("b9999-test", "echo-model")
    assert len(load_dir(out)) == len(files)  # the scrubbed files still load


def test_an_upstream_down_at_first_is_asked_again_for_version_and_model(
        tmp_path: Path) -> None:
    with BackgroundServer(_echo_upstream) as probe:
        port = _port(probe)  # a port just freed, for an upstream that starts late
    out = tmp_path / "recorded"
    recorder = Recorder(f"http://127.0.0.1:{port}", out, log=lambda line: None)
    with BackgroundServer(recorder) as proxy:
        down = requests.post(proxy.url + "/json", json={}, timeout=5)
        assert down.status_code == 502
        try:
            upstream = BackgroundServer(_echo_upstream, port=port).start()
        except OSError:  # pragma: no cover - another process took the port meanwhile
            pytest.skip(f"port {port} was taken before the upstream could start")
        with upstream:
            up = requests.post(proxy.url + "/json", json={},
                               headers={NAME_HEADER: "after"}, timeout=5)
    assert up.status_code == 200
    meta = json.loads((out / "after.json").read_text())["metadata"]
    assert (meta["version"], meta["model"]) == ("b9999-test", "echo-model")


def test_a_client_refused_by_the_upstream_does_not_fix_version_and_model_for_the_run(
        tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    with FakeServer(api_key="right-key-777") as upstream:
        recorder = Recorder(upstream.url, out, log=lambda line: None)
        with BackgroundServer(recorder) as proxy:
            for name, key in (("refused", "wrong-key-666"), ("allowed", "right-key-777")):
                requests.get(proxy.url + "/health", timeout=5,
                             headers={"Authorization": f"Bearer {key}", NAME_HEADER: name})
    refused = json.loads((out / "refused.json").read_text())["metadata"]
    allowed = json.loads((out / "allowed.json").read_text())["metadata"]
    assert (refused["version"], refused["model"]) == ("unknown", "unknown")
    assert "unknown" not in (allowed["version"], allowed["model"])
