"""Record fakellama's bundled fixtures from a real llama-server running the scripted model.

    python contracts/servers/record_fixtures.py [--out DIR] [--errors-out DIR] [--replace]

Starts llama-server three times (normal; a tiny --ctx-size for the overflow error;
--api-key for the 401) and drives fakellama's recorder through a fixed list of requests.
Replay fixtures go to --out (default: the bundled llamacpp directory); error exchanges,
which the fake generates itself and tests compare against, go to --errors-out.

Embeddings are recorded from SmolLM2-135M-Instruct (``contracts.servers.models``; a
model with real vectors), started three times: without ``--embeddings`` (the 501),
with ``--embeddings`` alone (a chat model pools nothing: OpenAI's route refuses it),
and with ``--embeddings --pooling mean --ubatch-size 64`` (the vectors, llama-server's
validation errors, and the 500 for an input longer than the batch). Vectors go to
--embeddings-out (``fixtures/llamacpp_embeddings``, replayed by a fake started with
``embeddings=True``), errors to ``<errors-out>/embeddings``.
``--only-embeddings`` records just these.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "fakeserver" / "fakellama" / "fixtures"
NORMAL_CTX = 2048
SMALL_CTX = 256
RECORDING_KEY = "recording-only-key"
# A stable model name in the fixtures instead of the temporary model path.
ALIAS = ("--alias", "scripted-tiny.gguf")

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL_RESULT = json.dumps({"temperature_c": 22, "conditions": "sunny"})
USAGE = {"include_usage": True}


def _servers() -> tuple[Any, Any, Any]:
    """Import contracts/servers' build, scripted_model and llama_server modules."""
    sys.path.insert(0, str(ROOT))
    try:
        modules = [importlib.import_module(f"contracts.servers.{name}")
                   for name in ("build", "scripted_model", "llama_server")]
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        modules = [importlib.import_module(name)
                   for name in ("build", "scripted_model", "llama_server")]
    build, scripted_model, llama_server = modules
    return build, scripted_model, llama_server


@contextmanager
def recording(upstream: str, out: Path, command: str,
              api_key: str | None = None) -> Iterator[str]:
    """Run fakellama's recorder in front of upstream; yields the recorder's URL."""
    from fakellama.record import Recorder
    from fakellama.server import BackgroundServer

    recorder = Recorder(upstream, out, secrets=[RECORDING_KEY], command=command,
                        api_key=api_key)
    with BackgroundServer(recorder) as proxy:
        yield proxy.url


def send(url: str, name: str, method: str, path: str, body: Any = None, *,
         raw: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """Send one request through the recorder, naming the fixture it writes."""
    all_headers = {"X-Fakellama-Name": name, **(headers or {})}
    if raw is not None:
        all_headers["Content-Type"] = "application/json"
        return requests.request(method, url + path, data=raw, headers=all_headers, timeout=300)
    return requests.request(method, url + path, json=body, headers=all_headers, timeout=300)


def record_normal(url: str, errors_url: str) -> None:
    """The replay fixtures, plus the 404 and 400 errors, from a normally started server."""
    send(url, "health", "GET", "/health")
    send(url, "models", "GET", "/v1/models")
    send(url, "props", "GET", "/props")
    ask = {"messages": ASK, "tools": [WEATHER_TOOL]}
    first = send(url, "chat-weather-tool-call", "POST", "/v1/chat/completions", ask).json()
    send(url, "chat-weather-tool-call-stream", "POST", "/v1/chat/completions",
         dict(ask, stream=True, stream_options=USAGE))
    calls = first["choices"][0]["message"].get("tool_calls") or []
    if not calls:
        raise SystemExit(f"the scripted model made no tool call: {first}")
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": calls},
               {"role": "tool", "tool_call_id": calls[0].get("id", ""), "content": TOOL_RESULT}]
    answer = dict(ask, messages=history)
    send(url, "chat-weather-answer", "POST", "/v1/chat/completions", answer)
    send(url, "chat-weather-answer-stream", "POST", "/v1/chat/completions",
         dict(answer, stream=True, stream_options=USAGE))
    hello = {"messages": [{"role": "user", "content": "Say hello."}]}
    send(url, "chat-hello", "POST", "/v1/chat/completions", hello)
    send(url, "chat-hello-stream", "POST", "/v1/chat/completions", dict(hello, stream=True))
    # The other generating APIs, so a client of each meets one real reply.
    once = {"prompt": "Say hello.", "n_predict": 8}
    send(url, "completion-hello", "POST", "/completion", once)
    send(url, "completion-hello-stream", "POST", "/completion", dict(once, stream=True))
    send(url, "v1-completion-hello", "POST", "/v1/completions",
         {"prompt": "Say hello.", "max_tokens": 8})
    record_other_apis(url, hello["messages"])
    send(errors_url, "error-unknown-route", "GET", "/no/such/route")
    send(errors_url, "error-bad-json", "POST", "/v1/chat/completions", raw="{not json")
    send(errors_url, "error-wrong-type", "POST", "/v1/chat/completions", {"messages": "hello"})


def record_other_apis(url: str, hello: list[dict[str, Any]]) -> None:
    """The Anthropic Messages and OpenAI Responses APIs, whole and streamed.

    Each is asked once without tools (the scripted model's text) and once with the weather
    tool offered (its call, as each API carries it), so a client meets each event stream
    as llama-server sends it.
    """
    anthropic = {"model": "scripted-tiny.gguf", "max_tokens": 8, "messages": hello}
    send(url, "anthropic-hello", "POST", "/v1/messages", anthropic)
    send(url, "anthropic-hello-stream", "POST", "/v1/messages", dict(anthropic, stream=True))
    function = WEATHER_TOOL["function"]
    weather = {"model": "scripted-tiny.gguf", "max_tokens": 64, "messages": ASK,
               "tools": [{"name": function["name"], "description": function["description"],
                          "input_schema": function["parameters"]}]}
    send(url, "anthropic-weather-tool-call", "POST", "/v1/messages", weather)
    send(url, "anthropic-weather-tool-call-stream", "POST", "/v1/messages",
         dict(weather, stream=True))
    responses = {"input": "Say hello.", "max_output_tokens": 8}
    send(url, "responses-hello", "POST", "/v1/responses", responses)
    send(url, "responses-hello-stream", "POST", "/v1/responses", dict(responses, stream=True))
    weather = {"input": ASK[0]["content"], "max_output_tokens": 64,
               "tools": [{"type": "function", **function}]}
    send(url, "responses-weather-tool-call", "POST", "/v1/responses", weather)
    send(url, "responses-weather-tool-call-stream", "POST", "/v1/responses",
         dict(weather, stream=True))


def record_overflow(errors_url: str) -> None:
    """The exceed_context_size_error, from a server started with a tiny context."""
    long_ask = [{"role": "user", "content": "Tell me about Paris. " * 200}]
    send(errors_url, "error-context-overflow", "POST", "/v1/chat/completions",
         {"messages": long_ask})


def record_auth(errors_url: str) -> None:
    """The 401 (and /health staying public) from a server started with --api-key."""
    send(errors_url, "error-unauthorized", "POST", "/v1/chat/completions",
         {"messages": ASK}, headers={"Authorization": "Bearer wrong-key"})
    send(errors_url, "error-unauthorized-x-api-key", "GET", "/props",
         headers={"X-Api-Key": "wrong-key"})
    send(errors_url, "auth-health-public", "GET", "/health")


EMBED_ALIAS = ("--alias", "SmolLM2-135M-Instruct")
#: The physical batch the embeddings server runs with: small, so a short text passes it.
EMBED_UBATCH = 64
EMBED_TEXTS = ["The quick brown fox jumps over the lazy dog.", "hello",
               "Embeddings map text to vectors."]


def record_embeddings(url: str, errors_url: str) -> None:
    """Vectors and llama-server's own refusals, from a server started with --embeddings."""
    send(url, "embeddings-one", "POST", "/v1/embeddings", {"input": ["hello"]})
    send(url, "embeddings-batch", "POST", "/v1/embeddings", {"input": EMBED_TEXTS})
    send(url, "embeddings-string", "POST", "/v1/embeddings", {"input": EMBED_TEXTS[0]})
    send(url, "embeddings-float", "POST", "/v1/embeddings",
         {"input": EMBED_TEXTS, "encoding_format": "float"})
    send(url, "embedding-native", "POST", "/embedding", {"content": "hello"})
    send(errors_url, "error-embeddings-empty-list", "POST", "/v1/embeddings", {"input": []})
    send(errors_url, "error-embeddings-empty-text", "POST", "/v1/embeddings", {"input": [""]})
    send(errors_url, "error-embeddings-no-input", "POST", "/v1/embeddings", {"text": "hello"})
    send(errors_url, "error-embeddings-bad-format", "POST", "/v1/embeddings",
         {"input": "hello", "encoding_format": "hex"})
    send(errors_url, "error-embeddings-bad-element", "POST", "/v1/embeddings",
         {"input": [{"text": "hello"}]})
    send(errors_url, "error-embeddings-too-large", "POST", "/v1/embeddings",
         {"input": ["hello", "word " * (2 * EMBED_UBATCH)]})


def record_embeddings_all(out: Path, errors_out: Path) -> None:
    """Start SmolLM2 three ways and record the embeddings exchanges."""
    build, _, llama_server = _servers()
    from contracts.servers.models import REAL_MODEL_CTX_SIZE, ensure_model

    binary = build.ensure_llama_server()
    model = ensure_model("smollm2")
    ubatch = ("--ubatch-size", str(EMBED_UBATCH), "--batch-size", str(EMBED_UBATCH))
    runs: list[tuple[tuple[str, ...], str]] = [
        ((), "off"),
        (("--embeddings",), "no-pooling"),
        (("--embeddings", "--pooling", "mean", *ubatch), "on"),
    ]
    for extra, kind in runs:
        with llama_server.LlamaServer(binary, model, jinja=True, ctx_size=REAL_MODEL_CTX_SIZE,
                                      extra_args=(*EMBED_ALIAS, *extra)) as server:
            argv = [Path(server.command()[0]).name, "-m", model.name,
                    *server.command()[3:]]
            command = "contracts/servers/record_fixtures.py; upstream: " + shlex.join(argv)
            with recording(server.url, errors_out, command) as errors_url:
                if kind == "off":
                    send(errors_url, "error-embeddings-not-supported", "POST",
                         "/v1/embeddings", {"input": ["hello"]})
                    send(errors_url, "error-embedding-not-supported", "POST", "/embedding",
                         {"content": "hello"})
                elif kind == "no-pooling":
                    send(errors_url, "error-embeddings-pooling-none", "POST",
                         "/v1/embeddings", {"input": ["hello"]})
                else:
                    with recording(server.url, out, command) as url:
                        record_embeddings(url, errors_url)


def record_all(out: Path, errors_out: Path) -> None:
    """Start the real servers and record every fixture into out and errors_out."""
    build, scripted_model, llama_server = _servers()
    binary = build.ensure_llama_server()
    with tempfile.TemporaryDirectory() as tmp:
        model = scripted_model.write_scripted_model(Path(tmp) / "scripted.gguf")
        runs: list[tuple[dict[str, Any], str]] = [
            ({"ctx_size": NORMAL_CTX}, "normal"),
            ({"ctx_size": SMALL_CTX}, "overflow"),
            ({"ctx_size": NORMAL_CTX, "api_key": RECORDING_KEY}, "auth"),
        ]
        for options, kind in runs:
            with llama_server.LlamaServer(binary, model, jinja=True, extra_args=ALIAS,
                                          **options) as server:
                argv = [Path(server.command()[0]).name, *server.command()[1:]]
                command = ("contracts/servers/record_fixtures.py; upstream: "
                           + shlex.join(argv))
                key = options.get("api_key")
                with recording(server.url, errors_out, command, key) as errors_url:
                    if kind == "normal":
                        with recording(server.url, out, command) as url:
                            record_normal(url, errors_url)
                    elif kind == "overflow":
                        record_overflow(errors_url)
                    else:
                        record_auth(errors_url)


def record_contract_suite(out: Path) -> None:
    """Record the contract clauses' own exchanges (json_schema, grammar, max_tokens, ...).

    Only the open server's exchanges are kept: the suite's `auth/` recordings are 401s
    that would otherwise be replayed to requests without a key. Only the clauses run:
    the fidelity and differential tests hold the fake's validation and synthesis to
    the real server, which recordings of their requests would stand in for.
    """
    with tempfile.TemporaryDirectory() as tmp:
        recorded = Path(tmp) / "recorded"
        command = [sys.executable, "-m", "pytest", "contracts/test_clauses.py", "-q", "-p",
                   "no:cacheprovider",
                   "--real-llama-server", "--record", str(recorded),
                   "--report-dir", str(Path(tmp) / "reports")]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"contract suite failed while recording:\n{result.stdout[-3000:]}")
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(recorded.glob("*.json")):
            if not path.name.startswith("get-slots-"):  # live state the fake answers itself
                shutil.copy2(path, out / path.name)


def main(argv: list[str] | None = None) -> int:
    """Record into fresh directories, then move them into place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=BUNDLED / "llamacpp")
    parser.add_argument("--errors-out", type=Path, default=BUNDLED / "llamacpp_errors")
    parser.add_argument("--replace", action="store_true",
                        help="replace fixtures already in --out/--errors-out")
    parser.add_argument("--embeddings-out", type=Path, default=BUNDLED / "llamacpp_embeddings")
    parser.add_argument("--only-embeddings", action="store_true",
                        help="record only the embeddings exchanges (SmolLM2, --embeddings)")
    parser.add_argument("--no-contract-suite", action="store_true",
                        help="skip recording the contract suite's exchanges into "
                             "OUT/contract-suite")
    args = parser.parse_args(argv)
    embeddings_errors = args.errors_out / "embeddings"
    if args.only_embeddings:
        return _record_embeddings_into(args.embeddings_out, embeddings_errors, args.replace)
    if _holds_fixtures((args.out, args.errors_out), args.replace):
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        fresh, fresh_errors = Path(tmp) / "out", Path(tmp) / "errors"
        record_all(fresh, fresh_errors)
        pairs = [(fresh, args.out), (fresh_errors, args.errors_out)]
        if not args.no_contract_suite:
            record_contract_suite(Path(tmp) / "contract-suite")
            pairs.append((Path(tmp) / "contract-suite", args.out / "contract-suite"))
        _move_into_place(pairs)
    return _record_embeddings_into(args.embeddings_out, embeddings_errors, True)


def _holds_fixtures(targets: tuple[Path, ...], replace: bool) -> bool:
    """Say so and return True if a target already holds fixtures and --replace was not given."""
    for target in targets:
        if target.exists() and any(target.glob("*.json")) and not replace:
            print(f"{target} already holds fixtures; pass --replace to re-record them",
                  file=sys.stderr)
            return True
    return False


def _move_into_place(pairs: list[tuple[Path, Path]]) -> None:
    """Replace each target's fixtures with the freshly recorded ones from its source."""
    for source, target in pairs:
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.json"):
            old.unlink()
        for path in sorted(source.glob("*.json")):
            shutil.copy2(path, target / path.name)
            print(f"recorded {target / path.name}")


def _record_embeddings_into(out: Path, errors_out: Path, replace: bool) -> int:
    """Record the embeddings exchanges into fresh directories, then move them into place."""
    if _holds_fixtures((out, errors_out), replace):
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        fresh, fresh_errors = Path(tmp) / "out", Path(tmp) / "errors"
        record_embeddings_all(fresh, fresh_errors)
        _move_into_place([(fresh, out), (fresh_errors, errors_out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
