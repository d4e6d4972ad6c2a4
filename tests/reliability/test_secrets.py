"""The API key never shows: not in repr or str, logs at any level, error messages or fixtures."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from fakellama.record import Recorder
from fakellama.server import BackgroundServer, FakeServer
from pedrollm import errors
from pedrollm.client import RetryPolicy
from pedrollm.config import Config, ModelConfig
from pedrollm.factory import new_backend
from pedrollm.types import InferenceRequest
from tests.reliability.replies import reply_fixture
from tests.transport import backend_at

KEY = "sk-pedro-7c1e0f5b9a2d4e8f"
PROMPT = "Tell me a secret."
ANSWER = "I keep every secret."


pytestmark = pytest.mark.fake_llama(strict=True, api_key=KEY)


@pytest.fixture
def fake(fake_llama_server: FakeServer) -> FakeServer:
    """The plugin's strict, keyed fake with the one reply these tests ask for."""
    fake_llama_server.add_fixture(reply_fixture("secret", PROMPT, ANSWER))
    return fake_llama_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_repr_and_str_of_configs_backends_and_clients_hide_the_key(fake: FakeServer) -> None:
    model = ModelConfig(server_url=fake.url, api_key=KEY)
    config = Config(model=model, other={"database": {"password": KEY}})
    backend = new_backend(model)
    objects = [model, config, backend, backend.client, backend.server_info()]
    for obj in objects:
        assert KEY not in repr(obj) and KEY not in str(obj), type(obj).__name__
    assert KEY not in str(model.to_dict()) and KEY not in str(config.to_dict())
    backend.close()


def _exercise(url: str, key: str | None) -> list[BaseException]:
    """Successes and failures of every kind with ``key`` set; return the errors raised."""
    raised: list[BaseException] = []
    backend = new_backend({"type": "llamacpp", "server_url": url, "api_key": key,
                           "max_retries": 1, "retry_budget": 1.0, "read_timeout": 0.3})
    calls: list[Callable[[], object]] = [
        lambda: backend.infer(InferenceRequest(user_prompt=PROMPT)),
        lambda: list(backend.stream(InferenceRequest(user_prompt=PROMPT))),
        lambda: backend.health(),
        lambda: backend.list_models(),
        lambda: backend.server_info(),
    ]
    for call in calls:
        try:
            call()
        except errors.PedroLLMError as exc:
            raised.append(exc)
    backend.close()
    return raised


def _leaks(text: str) -> bool:
    return KEY in text or KEY[3:] in text


def test_logs_at_debug_and_errors_never_carry_the_key(
        fake: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("pedrollm", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    raised = _exercise(fake.url, KEY)  # the right key: everything works
    assert raised == []
    raised += _exercise(fake.url, KEY + "-wrong")  # refused: 401s
    raised += _exercise(f"http://127.0.0.1:{_free_port()}", KEY)  # refused connections
    for fault in ("status=500", "status=429,retry_after=0", "first_token_delay=1",
                  "disconnect_after=2", "malformed_json", "loading=1"):
        client = backend_at(fake.url, api_key=KEY, read_timeout=0.3,
                            retry=RetryPolicy(max_retries=1, base_delay=0.01),
                            headers={"X-Fake-Fault": fault})
        for stream in (False, True):
            try:
                if stream:
                    list(client.stream(InferenceRequest(user_prompt=PROMPT)))
                else:
                    client.infer(InferenceRequest(user_prompt=PROMPT))
            except errors.PedroLLMError as exc:
                raised.append(exc)
        client.close()

    assert any(isinstance(e, errors.AuthenticationError) for e in raised)
    assert any(isinstance(e, errors.ConnectionFailed) for e in raised)
    assert len(raised) >= 12
    for err in raised:
        seen: BaseException | None = err
        while seen is not None:  # the chained causes are shown in tracebacks too
            assert not _leaks(str(seen)) and not _leaks(repr(seen)), repr(seen)
            seen = seen.__cause__ or seen.__context__
    assert caplog.records, "nothing was logged: the capture is not working"
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for record in caplog.records:
        assert not _leaks(record.getMessage()), record.getMessage()


def test_recorded_fixtures_and_recorder_output_never_hold_the_key(
        fake: FakeServer, tmp_path: Path) -> None:
    out = tmp_path / "recorded"
    lines: list[str] = []
    recorder = Recorder(fake.url, out, secrets=[KEY], log=lines.append,
                        command=f"llama-server -m tiny.gguf --api-key {KEY} --port 8081")
    with BackgroundServer(recorder) as proxy:
        assert _exercise(proxy.url, KEY) == []
        for header in ({"Authorization": f"Bearer {KEY}"}, {"X-Api-Key": KEY}):
            requests.get(proxy.url + "/props", headers=header, timeout=5).raise_for_status()
    files = sorted(out.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        assert not _leaks(path.read_text(encoding="utf-8")), path.name
    assert lines and not any(_leaks(line) for line in lines)


def test_a_password_in_the_server_url_is_not_shown() -> None:
    url = f"http://pedro:{KEY}@127.0.0.1:{_free_port()}"
    backend = new_backend({"type": "llamacpp", "server_url": url, "max_retries": 0})
    with pytest.raises(errors.ConnectionFailed) as caught:
        backend.infer(InferenceRequest(user_prompt=PROMPT))
    backend.close()
    assert not _leaks(str(caught.value))
    assert not _leaks(repr(backend)) and not _leaks(repr(backend.client))


def test_config_show_hides_secrets_by_name_and_by_shape(tmp_path: Path) -> None:
    import json as _json
    import subprocess
    import sys

    secrets = ["sk-model-key", "hunter2", "tok-abc123", "ghp_personal", "cookie-v",
               "pk-----BEGIN", "s3cr3t-url"]
    config = {
        "model": {"type": "llamacpp", "server_url": "http://me:s3cr3t-url@127.0.0.1:8081",
                  "api_key": "sk-model-key"},
        "database": {"url": "postgres://app:hunter2@db/app", "credentials": "hunter2"},
        "http": {"headers": {"Authorization": "Bearer tok-abc123", "X-Session": "cookie-v",
                             "Content-Type": "application/json"}},
        "env": {"GITHUB_PAT": "ghp_personal", "private_key": "pk-----BEGIN",
                "note": "Token tok-abc123"},
    }
    path = tmp_path / ".pedrocli.json"
    path.write_text(_json.dumps(config), encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": f"{root / 'sdk'}:{root / 'fakeserver'}"}
    out = subprocess.run([sys.executable, "-m", "pedrollm", "--config", str(path), "config",
                          "show"], capture_output=True, text=True, env=env, cwd=tmp_path,
                         check=True).stdout
    for secret in secrets:
        assert secret not in out, secret
    redacted_line = next(line for line in out.splitlines() if line.startswith("# redacted: "))
    for where in ("model.api_key", "model.server_url", "database.url", "database.credentials",
                  "http.headers.Authorization", "http.headers.X-Session", "env.GITHUB_PAT",
                  "env.private_key", "env.note"):
        assert where in redacted_line, where
    shown = _json.loads("\n".join(line for line in out.splitlines()
                                  if not line.startswith("#")))
    assert shown["http"]["headers"]["Content-Type"] == "application/json"
    assert shown["database"]["url"] == "postgres://app:***@db/app"
