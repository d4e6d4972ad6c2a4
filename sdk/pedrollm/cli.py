"""The ``pedrollm`` command: chat, embed, tokens, health, models, info, config, demo, contract.

Expected failures (server down, bad config, HTTP errors) print one line saying
what failed, where, and what to try, and exit non-zero; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ._version import __version__
from .backend import Backend
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectionFailed,
    ModelLoading,
    PedroLLMError,
    ToolsNotEnabled,
    UnsupportedFeature,
)
from .types import InferenceRequest, InferenceResponse, Message, ToolDefinition

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pedrollm",
        description="Talk to a local LLM server (llama-server, Ollama, vLLM, LM Studio).",
    )
    parser.add_argument("--version", action="version", version=f"pedrollm {__version__}")
    parser.add_argument("--config", help="config file (default: .pedrocli.json here, then ~)")
    parser.add_argument("--server-url", help="server URL, overriding the config")
    parser.add_argument("--backend", help="llamacpp | ollama | vllm | lmstudio | openai")
    parser.add_argument("--model", help="model name, overriding the config")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="ask once (streamed), or a REPL when no prompt is given")
    chat.add_argument("prompt", nargs="?", help="the prompt; omit for an interactive session")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole reply")
    chat.add_argument("--json", action="store_true", help="print the reply as JSON")
    chat.add_argument("--max-tokens", type=int, help="most tokens to generate")
    chat.add_argument("--temperature", type=float, help="sampling temperature")

    embed = sub.add_parser(
        "embed", help="print each text's embedding, one vector a line",
        description="Print one embedding per TEXT (with no TEXT, per line of stdin), in "
                    "order, one vector a line as space-separated numbers.")
    embed.add_argument("texts", nargs="*", metavar="TEXT", help="the texts to embed")
    embed.add_argument("--normalize", action="store_true", help="scale each vector to unit length")
    embed.add_argument("--json", action="store_true",
                       help='print {"model", "dimensions", "embeddings": [[...], ...]} instead')
    embed.add_argument("--batch-size", type=int, help="most texts per request (default 32)")

    sub.add_parser("health", help="is the server ready?")
    sub.add_parser("models", help="list the server's models")
    info = sub.add_parser("info", help="context window, native tools, server version")
    info.add_argument("--no-probe", action="store_true",
                      help="send no request with tools; native tools then show as unknown")

    tokens = sub.add_parser(
        "tokens", help="count tokens with the server's tokenizer (estimated where it has none)")
    tokens.add_argument("text", nargs="?", help="the text to count")
    tokens.add_argument("--messages", metavar="FILE",
                        help="count a whole request as sent, chat template included: a JSON "
                             "list of messages, or an object with messages and tools "
                             "('-' reads stdin)")
    tokens.add_argument("--json", action="store_true",
                        help="print {\"n\", \"exact\", \"method\"} as JSON")

    config = sub.add_parser("config", help="show or migrate the config file")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    migrate = config_sub.add_parser("migrate", help="rewrite a llama-cli config for a server")
    migrate.add_argument("old", help="the old config file")
    migrate.add_argument("--out", help="write here instead of replacing OLD (kept as OLD.bak)")
    config_sub.add_parser("show", help="print the resolved config, API key redacted")

    demo = sub.add_parser(
        "demo", help="run a tool-calling agent against the bundled fake llama-server, "
                     "or against --server-url")
    demo.add_argument("--server-url", dest="demo_url",
                      help="run the demo against this server instead of the fake "
                           "(the same as pedrollm --server-url URL demo)")
    demo.add_argument("--json", action="store_true",
                      help="print only the transcript, as JSON, on stdout")
    contract = sub.add_parser(
        "contract", help="run the contract suite against a server (default: the bundled fake)",
        description="Run pedrollm's contract suite (pytest) against --server-url with "
                    "--backend, or the bundled fake when no URL is given; writes a JSON and "
                    "a Markdown report. Arguments after the options go to pytest.")
    contract.add_argument("--server-url", dest="contract_url",
                          help="the server to check (default: the bundled fake)")
    contract.add_argument("--backend", dest="contract_backend",
                          help="llamacpp | ollama | vllm | lmstudio | openai")
    contract.add_argument("--model", dest="contract_model", help="the model to ask for")
    contract.add_argument("--report-dir", default="reports",
                          help="where the reports go (default: ./reports)")
    contract.add_argument("--api-key", help="the server's API key, for the auth clause")
    contract.add_argument("pytest_args", nargs=argparse.REMAINDER,
                          help="more pytest arguments, e.g. -k c08")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields set on the command line."""
    out: dict[str, Any] = {}
    if args.server_url:
        out["server_url"] = args.server_url
    if args.backend:
        out["type"] = args.backend
    if args.model:
        out["model_name"] = args.model
    return out


def _backend(args: argparse.Namespace) -> Backend:
    """Build the backend from the config file, environment and flags."""
    from .config import load_config
    from .factory import new_backend

    return new_backend(load_config(args.config, overrides=_overrides(args)))


def _print_reply(resp: InferenceResponse, out: TextIO) -> None:
    """Print a reply's text, and any tool calls it asks for."""
    if resp.text:
        out.write(resp.text.rstrip("\n") + "\n")
    for call in resp.tool_calls:
        out.write(f"[tool call] {call.name}({json.dumps(call.args, ensure_ascii=False)})\n")
    for bad in resp.invalid_tool_calls:
        out.write(f"[invalid tool call] {bad.error}: {bad.raw}\n")


def _ask(backend: Backend, req: InferenceRequest, *, stream: bool, as_json: bool,
         out: TextIO) -> InferenceResponse:
    """Send one request, printing as it streams unless JSON or no-stream was asked."""
    if as_json or not stream:
        resp = backend.infer(req)
        if as_json:
            out.write(json.dumps(resp.to_dict(), ensure_ascii=False, indent=2) + "\n")
        else:
            _print_reply(resp, out)
        return resp
    final: InferenceResponse | None = None
    for delta in backend.stream(req):
        if delta.content:
            out.write(delta.content)
            out.flush()
        if delta.response is not None:
            final = delta.response
    assert final is not None  # the stream's last delta always carries the reply
    out.write("\n")
    for call in final.tool_calls:
        out.write(f"[tool call] {call.name}({json.dumps(call.args, ensure_ascii=False)})\n")
    return final


def cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm chat``: one prompt, or a REPL reading stdin."""
    with _backend(args) as backend:
        base = InferenceRequest(max_tokens=args.max_tokens, temperature=args.temperature,
                                system_prompt=args.system)
        if args.prompt is not None:
            req = InferenceRequest(**{**base.__dict__, "user_prompt": args.prompt})
            _ask(backend, req, stream=not args.no_stream, as_json=args.json, out=out)
            return EXIT_OK
        history: list[Message] = []
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                out.write("you> ")
                out.flush()
            line = sys.stdin.readline()
            if not line or line.strip() in ("/exit", "/quit"):
                return EXIT_OK
            if not line.strip():
                continue
            history.append(Message.user(line.strip()))
            req = InferenceRequest(**{**base.__dict__, "messages": list(history)})
            resp = _ask(backend, req, stream=not args.no_stream, as_json=args.json, out=out)
            history.append(resp.to_message())


def cmd_embed(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm embed``: one vector a line (or JSON), in the order the texts were given."""
    texts = list(args.texts) if args.texts else [
        line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        sys.stderr.write("pedrollm embed: give at least one TEXT (or lines on stdin)\n")
        return EXIT_USAGE
    if args.batch_size is not None and args.batch_size < 1:
        sys.stderr.write(f"pedrollm embed: --batch-size must be at least 1, "
                         f"got {args.batch_size}\n")
        return EXIT_USAGE
    with _backend(args) as backend:
        vectors = backend.embed(texts, normalize=args.normalize, batch_size=args.batch_size)
        if args.json:
            out.write(json.dumps({"model": args.model or getattr(backend, "model", None),
                                  "dimensions": len(vectors[0]) if vectors else 0,
                                  "embeddings": vectors}) + "\n")
        else:
            for vector in vectors:
                out.write(" ".join(repr(v) for v in vector) + "\n")
    return EXIT_OK


def cmd_health(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm health``: exit 0 when ready."""
    with _backend(args) as backend:
        status = backend.health()
        out.write(f"{status.state}: {status.detail}\n")
        return EXIT_OK if status.ready else EXIT_ERROR


def cmd_models(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm models``: one model a line, with its context window when known."""
    with _backend(args) as backend:
        for model in backend.list_models():
            ctx = f"\tcontext {model.context_window}" if model.context_window else ""
            out.write(f"{model.id}{ctx}\n")
    return EXIT_OK


def _require_reachable(backend: Backend) -> None:
    """Probe the server once, without retries; raise ConnectionFailed when it is not there.

    Discovery swallows errors (a server without /props is still a server), so an
    absent server would otherwise look like one that answers nothing, after retries.
    """
    status = backend.health()
    if status.state == "unreachable":
        raise ConnectionFailed(status.detail)


# Offered in the one request ``info`` sends to see whether tools go natively.
PROBE_TOOL = ToolDefinition(
    name="probe", description="Does nothing; offered to see whether the server takes tools.",
    parameters={"type": "object", "properties": {}})


def _native_tools_seen(backend: Backend) -> str:
    """Send one 1-token request with a tool; say what the server did with it.

    Nothing short of a request shows it: llama-server's /props describes the model's
    template (which supports tools) also when the server was started without --jinja
    and refuses every request with tools.
    """
    if not backend.supports_native_tools():
        return "no (tools are described in the prompt; calls read from the text)"
    req = InferenceRequest(user_prompt="Say OK.", tools=[PROBE_TOOL], max_tokens=1)
    with warnings.catch_warnings():
        # The backend's warning about falling back is said below, in the row itself.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            backend.infer(req)
        except (ToolsNotEnabled, UnsupportedFeature) as exc:
            return f"no (the server refused a request with tools: {exc})"
        except PedroLLMError as exc:
            return f"unknown (a request with tools failed: {exc})"
    if backend.supports_native_tools():
        return "yes (a request with tools was accepted)"
    return ("no (the server refused a request with tools; they are now described in the "
            "prompt; llama-server needs --jinja for native tool calls)")


def cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm info``: what discovery learned about the server, and what a request showed."""
    with _backend(args) as backend:
        _require_reachable(backend)
        tools = ("unknown (not probed: --no-probe)" if args.no_probe
                 else _native_tools_seen(backend))
        info = backend.server_info()
        rows = [
            ("backend", info.backend),
            ("server", info.server_url),
            ("model", info.model or "unknown (the server's default)"),
            ("context window", info.context_window or "unknown (set model.context_size)"),
            ("native tools", tools),
            ("tool-call text format", info.tool_call_format or "none"),
            ("version", info.version or "unknown"),
        ]
        for name, value in rows:
            out.write(f"{name + ':':<23}{value}\n")
        # A pool lists its servers, each as the pool last saw it.
        for index, server in enumerate(info.extra.get("endpoints", [])):
            window = server.get("context_window") or "unknown"
            out.write(f"{f'server {index}:':<23}{server['server_url']} ({server['backend']}) "
                      f"{server['state']}, model {server.get('model') or 'unknown'}, "
                      f"context {window}, served {server['served']}\n")
    return EXIT_OK


def _request_from_file(path: str) -> InferenceRequest:
    """Read ``--messages``: a JSON list of messages, or an object of request fields."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--messages {path}: not JSON ({exc})") from None
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict) or not isinstance(data.get("messages", []), list):
        raise ConfigError(f"--messages {path}: expected a list of messages or an object "
                          "with a \"messages\" list")
    try:
        return InferenceRequest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"--messages {path}: not a request ({exc!r})") from None


def cmd_tokens(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm tokens``: a text's or a request's token count, and whether it is exact."""
    if (args.text is None) == (args.messages is None):
        raise ConfigError("tokens: give either TEXT or --messages FILE")
    req = _request_from_file(args.messages) if args.messages is not None else None
    with _backend(args) as backend:
        count = (backend.count_tokens(req) if req is not None
                 else backend.count_text_tokens(args.text))
    if args.json:
        out.write(count.to_json() + "\n")
    else:
        how = "exact" if count.exact else "estimated"
        out.write(f"{count.n} tokens, {how} ({count.method})\n")
    return EXIT_OK


def cmd_config(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm config show|migrate``."""
    from .config import load_config
    from .config_migrate import write_migrated

    if args.config_command == "show":
        cfg = load_config(args.config, overrides=_overrides(args))
        where = str(cfg.path) if cfg.path else "(no file: defaults)"
        shown, hidden = cfg.redacted()
        out.write(f"# from {where}\n")
        if hidden:
            out.write(f"# redacted: {', '.join(hidden)}\n")
        out.write(json.dumps(shown, indent=2) + "\n")
        return EXIT_OK
    if args.config_command == "migrate":
        migration = write_migrated(args.old, args.out)
        if migration.written_to is None:
            reason = migration.notes[0] if migration.notes else "nothing to migrate"
            out.write(f"{args.old}: {reason}; nothing written\n")
            return EXIT_OK
        out.write(f"wrote {migration.written_to}\n")
        if migration.backup_path:
            out.write(f"the old file is kept as {migration.backup_path}\n")
        for note in migration.notes:
            out.write(f"  - {note}\n")
        if migration.server_command:
            out.write("start the server with:\n  " + migration.command_line + "\n")
        return EXIT_OK
    out.write("usage: pedrollm config {show,migrate OLD.json}\n")
    return EXIT_USAGE


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm demo``: a tool-calling agent round trip, printed step by step.

    A URL given either before or after ``demo`` is the server to run against; the
    config's backend type and API key apply to it. Without one, the bundled fake.
    """
    from .demo import run_demo

    url = args.demo_url or args.server_url
    if url is None:
        return run_demo(out, as_json=args.json, note=sys.stderr if args.json else None)
    args.server_url = url
    with _backend(args) as backend:
        _require_reachable(backend)
        return run_demo(out, as_json=args.json, backend=backend)


def suite_dir() -> Path:
    """Where the contract suite is: the installed ``pedrollm_contracts``, else a checkout's."""
    import importlib.util

    for name in ("pedrollm_contracts", "contracts"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            folder = Path(spec.origin).parent
            if (folder / "test_clauses.py").is_file():
                return folder
    raise PedroLLMError("the contract suite is not installed: reinstall pedrollm "
                        "(pip install 'pedrollm[test]')")


def cmd_contract(args: argparse.Namespace, out: TextIO) -> int:
    """``pedrollm contract``: the contract suite, as pytest, against one server."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("pytest") is None:
        raise PedroLLMError("pedrollm contract runs on pytest, which is not installed: "
                            "pip install 'pedrollm[test]'")
    folder = suite_dir()
    command = [sys.executable, "-m", "pytest", str(folder), "-q", "-rs", "-p", "no:cacheprovider",
               "--rootdir", str(folder), "--report-dir", str(Path(args.report_dir).resolve())]
    # The command's own options, else the global ones (pedrollm --server-url URL contract).
    url = args.contract_url or args.server_url
    backend = args.contract_backend or args.backend
    model = args.contract_model or args.model
    if url:
        command += ["--server-url", url]
    if backend:
        command += ["--backend", backend]
    if model:
        command += ["--model", model]
    if args.api_key:
        command += ["--api-key", args.api_key]
    command += [a for a in args.pytest_args if a != "--"]
    out.flush()
    return subprocess.run(command, check=False).returncode


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "chat": cmd_chat,
    "embed": cmd_embed,
    "health": cmd_health,
    "models": cmd_models,
    "info": cmd_info,
    "tokens": cmd_tokens,
    "config": cmd_config,
    "demo": cmd_demo,
    "contract": cmd_contract,
}


def _hint(exc: PedroLLMError) -> str:
    """What to try next for an expected failure."""
    if isinstance(exc, ConnectionFailed):
        return "is the server running? check --server-url or model.server_url"
    if isinstance(exc, ModelLoading):
        return "the model is still loading; try again shortly"
    if isinstance(exc, AuthenticationError):
        return "set PEDROLLM_API_KEY or model.api_key to the server's --api-key"
    if isinstance(exc, ConfigError):
        return "fix the config file or the flag named above"
    return "run with --verbose for details"


@contextmanager
def _reporting(verbose: bool, err: TextIO) -> Iterator[list[int]]:
    """Turn expected failures into one line on stderr and an exit code."""
    code = [EXIT_OK]
    try:
        yield code
    except PedroLLMError as exc:
        if verbose:
            traceback.print_exc(file=err)
        err.write(f"pedrollm: error: {exc}\n  hint: {_hint(exc)}\n")
        code[0] = EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR
    except OSError as exc:
        if verbose:
            traceback.print_exc(file=err)
        err.write(f"pedrollm: error: {exc}\n")
        code[0] = EXIT_ERROR
    except KeyboardInterrupt:
        err.write("\npedrollm: interrupted\n")
        code[0] = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    # Deprecated config fields warn once each, on the terminal, not silently.
    warnings.simplefilter("default", DeprecationWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    with _reporting(args.verbose, sys.stderr) as code:
        code[0] = COMMANDS[args.command](args, sys.stdout)
    return code[0]


if __name__ == "__main__":
    raise SystemExit(main())
