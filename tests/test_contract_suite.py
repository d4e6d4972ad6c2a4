"""The contract suite as someone with their own server runs it: pytest contracts --server-url."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fakellama.personalities import all_versions
from fakellama.server import FakeServer

ROOT = Path(__file__).resolve().parents[1]


def suite(*args: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``pytest contracts ARGS`` from the checkout, reports into ``report_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "sdk"), str(ROOT / "fakeserver"), str(ROOT),
         *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "contracts", "-q", "-p", "no:cacheprovider",
         "--report-dir", str(report_dir), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_an_unreachable_server_stops_the_suite_in_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    out = suite("--server-url", "http://127.0.0.1:1", report_dir=tmp_path)
    assert time.monotonic() - started < 30  # was 178 s: C01 alone waited 120 s
    assert out.returncode == 4
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert lines == [
        "ERROR: pedrollm contract suite: could not reach http://127.0.0.1:1/health: "
        "connection refused; is the llamacpp server running? No clause was run."]
    assert not list(tmp_path.iterdir())  # no report of a run that did not happen


def test_reports_of_re_runs_on_other_ports_replace_each_other(tmp_path: Path) -> None:
    for _ in range(2):
        with FakeServer() as fake:
            out = suite("--server-url", fake.url, report_dir=tmp_path)
        assert out.returncode == 0, out.stdout[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conformance-llamacpp-127-0-0-1.json", "conformance-llamacpp-127-0-0-1.md"]
    # The fake-vs-real fidelity tests are not collected without a real server.
    # Only the clauses' own skips: C02 and C16, unsupported by a plain URL; C24, as this
    # fake, like llama-server, has embeddings off unless started with them; C25, images,
    # unsupported by llama-server without a projector; C26 inconclusive (no thinking
    # model); and C21 where the fake (not pacing this run) sent the whole stream before
    # it was left.
    last = out.stdout.splitlines()[-1]
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (passed|skipped|failed)", last))
    assert "failed" not in counts and counts["passed"] + counts["skipped"] == 26, last
    assert counts["skipped"] in (5, 6), last


def test_fidelity_tests_are_collected_only_for_a_real_server(tmp_path: Path) -> None:
    plain = suite("--collect-only", report_dir=tmp_path)
    assert "test_fidelity.py" not in plain.stdout
    assert "test_clauses.py::test_c01_ready" in plain.stdout
    real = suite("--collect-only", "--real-llama-server", report_dir=tmp_path)
    assert "test_fidelity.py::" in real.stdout


class CutStreamServer:
    """A server that is healthy but cuts every chat stream after its first event."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return
            data += got
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        if head.startswith(b"GET /health"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 15\r\nConnection: close\r\n\r\n"
                         b'{"status":"ok"}')
        elif head.startswith(b"POST /v1/chat/completions"):
            event = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         + f"{len(event):x}".encode() + b"\r\n" + event + b"\r\n")
            conn.shutdown(socket.SHUT_RDWR)  # cut: no last chunk
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


def test_a_clause_verdict_shows_the_sdk_s_typed_error(tmp_path: Path) -> None:
    # C07 reads a raw stream; cut, it must report the SDK's StreamInterrupted, not
    # the HTTP library's exception.
    server = CutStreamServer()
    try:
        suite("--server-url", server.url, "-k", "c07", report_dir=tmp_path)
    finally:
        server.close()
    report = json.loads((tmp_path / "conformance-llamacpp-127-0-0-1.json").read_text())
    (c07,) = report["results"]
    assert c07["outcome"] == "fail"
    assert c07["detail"].startswith("pedrollm.errors.StreamInterrupted: ")
    assert "requests.exceptions" not in c07["detail"]


def test_the_suite_targets_a_pool_of_servers(tmp_path: Path) -> None:
    with FakeServer() as one, FakeServer() as two:
        out = suite("--backend", "pool", "--server-url", f"{one.url},llamacpp={two.url}",
                    report_dir=tmp_path)
        served = [sum(1 for r in f.requests if r.path == "/v1/chat/completions")
                  for f in (one, two)]
    assert out.returncode == 0, out.stdout[-2000:]
    assert "conformance of pool at" in out.stdout and " 0 fail" in out.stdout
    assert all(n > 0 for n in served)  # both servers answered clauses


# Clauses each emulated server version cannot meet, and why (the real server's reason).
NO_SLOTS = "the server does not show whether it is still generating"
NOT_ON = {
    "ollama": {"C10": "tool_choice='required' is not supported by ollama",
               "C13": "Ollama has no GBNF grammars", "C14": "Ollama has no GBNF grammars",
               "C15": "Ollama truncates an overlong prompt",
               "C16": "Ollama has no API key setting: it has no authentication of its own",
               "C21": NO_SLOTS, "C22": "ollama has no tokenizer endpoint",
               "C26": "does not support thinking"},
    "vllm": {"C02": "does not listen until its model is loaded", "C21": NO_SLOTS},
    "lmstudio": {"C13": "LM Studio has no GBNF grammars", "C14": "LM Studio has no GBNF",
                 "C21": NO_SLOTS, "C22": "lmstudio has no tokenizer endpoint",
                 "C26": "think is not supported by lmstudio"},
}


@pytest.mark.parametrize("spec", all_versions()[1:])
def test_the_suite_against_each_emulated_server_version(spec: str, tmp_path: Path) -> None:
    out = suite("--personality", spec, report_dir=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    verdicts = {r["clause"]: (r["outcome"], r["detail"]) for r in report["results"]}
    expected = dict(NOT_ON[spec.partition("@")[0]])
    if spec == "lmstudio@0.3":
        expected["C16"] = "LM Studio has API tokens only from 0.4.0"
    for clause, (outcome, detail) in verdicts.items():
        if clause in expected:
            assert outcome == "unsupported" and expected[clause] in detail, (clause, detail)
        elif clause == "C10" and spec.startswith("lmstudio"):
            # No grammar to make the fake's synthesized reply a call written as text.
            assert outcome == "inconclusive", (clause, outcome, detail)
        elif clause == "C26" and spec.startswith("vllm"):
            # The control is accepted; the fake's model does not think.
            assert outcome == "inconclusive" and "gave no reasoning" in detail, (clause, detail)
        else:
            assert outcome == "pass", (clause, outcome, detail)


def test_tox_runs_the_suite_against_every_emulated_version() -> None:
    section = (ROOT / "tox.ini").read_text().split("[testenv:contract-fake]")[1].split("\n[")[0]
    for spec in all_versions()[1:]:
        assert f"--personality {spec} " in section, spec
