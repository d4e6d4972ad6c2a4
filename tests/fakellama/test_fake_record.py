"""Record mode: proxy, write fixtures, scrub secrets, never overwrite; then replay them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from fake_helpers import WEATHER_TOOL, bundled, without_fresh_ids

from fakellama.fixtures import load_dir
from fakellama.record import NAME_HEADER, Recorder
from fakellama.server import BackgroundServer, FakeServer

KEY = "sk-very-secret-key"
ASK = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
       "tools": [WEATHER_TOOL]}


def _record(tmp_path: Path, logs: list[str]) -> tuple[dict[str, bytes], Path]:
    out = tmp_path / "recorded"
    seen: dict[str, bytes] = {}
    with FakeServer(api_key=KEY) as upstream:
        recorder = Recorder(upstream.url, out, secrets=[KEY], log=logs.append,
                            command=f"llama-server --api-key {KEY}")
        with BackgroundServer(recorder) as proxy:
            auth = {"Authorization": f"Bearer {KEY}"}
            for name, method, path, body in [
                ("health", "GET", "/health", None),
                ("chat", "POST", "/v1/chat/completions", ASK),
                ("chat-stream", "POST", "/v1/chat/completions", dict(ASK, stream=True)),
                ("unknown", "GET", "/nope", None),
            ]:
                reply = requests.request(method, proxy.url + path, json=body,
                                         headers={**auth, NAME_HEADER: name})
                seen[name] = reply.content
            denied = requests.get(proxy.url + "/props", headers={"X-Api-Key": "wrong-key"})
            seen["denied"] = denied.content
    return seen, out


def test_record_then_replay_gives_the_same_bytes(tmp_path: Path) -> None:
    logs: list[str] = []
    seen, out = _record(tmp_path, logs)
    names = {f.name for f in load_dir(out)}
    assert {"health", "chat", "chat-stream", "unknown"} <= names
    with FakeServer(out, strict=True) as replay:
        assert requests.get(replay.url + "/health").content == seen["health"]
        chat = requests.post(replay.url + "/v1/chat/completions", json=ASK).content
        assert without_fresh_ids(chat) == without_fresh_ids(seen["chat"])
        assert chat != seen["chat"]  # a new id and time, as a real reply has
        streamed = requests.post(replay.url + "/v1/chat/completions",
                                 json=dict(ASK, stream=True)).content
        assert without_fresh_ids(streamed) == without_fresh_ids(seen["chat-stream"])


def test_recorded_metadata_says_where_and_when(tmp_path: Path) -> None:
    _, out = _record(tmp_path, [])
    meta = json.loads((out / "chat.json").read_text())["metadata"]
    assert meta["server"] == "llama-server"
    assert meta["model"] == "scripted-tiny.gguf"
    assert meta["version"] == bundled("props")["response"]["body"]["build_info"]
    assert meta["recorded_at"] and meta["command"]
    assert "authored" not in meta


def test_secrets_never_reach_the_files(tmp_path: Path) -> None:
    _, out = _record(tmp_path, [])
    for path in out.iterdir():
        text = path.read_text()
        assert KEY not in text, path.name
        assert "wrong-key" not in text, path.name
    assert "<redacted>" in (out / "chat.json").read_text()


def test_the_recorder_never_overwrites_silently(tmp_path: Path) -> None:
    logs: list[str] = []
    _record(tmp_path, logs)
    first = (tmp_path / "recorded" / "chat.json").read_text()
    _record(tmp_path, logs)
    assert (tmp_path / "recorded" / "chat.json").read_text() == first
    assert (tmp_path / "recorded" / "chat-2.json").exists()
    assert any("chat.json exists; kept it and wrote chat-2.json" in line for line in logs)


def test_the_client_gets_the_upstream_reply_framed_as_the_upstream_framed_it(
        tmp_path: Path) -> None:
    with FakeServer() as upstream, BackgroundServer(Recorder(upstream.url, tmp_path)) as proxy:
        direct = requests.post(upstream.url + "/v1/chat/completions", json=ASK)
        relayed = requests.post(proxy.url + "/v1/chat/completions", json=ASK)
        assert relayed.headers["Content-Length"] == direct.headers["Content-Length"]
        assert "Transfer-Encoding" not in relayed.headers
        missing = requests.get(proxy.url + "/nope", headers={"Origin": "http://a.example"})
        assert missing.headers["Connection"] == "close"
        assert missing.headers["Access-Control-Allow-Origin"] == "http://a.example"
        streamed = requests.post(proxy.url + "/v1/chat/completions", json=dict(ASK, stream=True))
        assert streamed.headers["X-Accel-Buffering"] == "no"


def test_a_stream_the_client_left_early_is_not_recorded(tmp_path: Path) -> None:
    logs: list[str] = []
    long_story = {"messages": [{"role": "user", "content": "Tell me a long story."}],
                  "max_tokens": 2000, "ignore_eos": True, "stream": True}
    # Paced by the upstream, so the client leaves while it is still sending.
    with FakeServer(faults="tokens_per_second=200") as upstream, \
            BackgroundServer(Recorder(upstream.url, tmp_path, log=logs.append)) as proxy:
        with requests.post(proxy.url + "/v1/chat/completions", json=long_story,
                           stream=True) as left:
            next(left.iter_lines())
        whole = requests.post(proxy.url + "/v1/chat/completions",
                              json=dict(long_story, max_tokens=5))
        assert whole.ok
        for _ in range(100):  # the recorder notices at its next write
            if any("not recorded" in line for line in logs):
                break
            time.sleep(0.05)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 1, written  # only the stream that ran to its end
    assert json.loads((tmp_path / written[0]).read_text())["request"]["body"]["max_tokens"] == 5
    assert any("not recorded: the stream of POST /v1/chat/completions ended before the "
               "server finished it" in line for line in logs), logs
