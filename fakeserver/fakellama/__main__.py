"""Command line: `python -m fakellama serve ...` and `python -m fakellama record ...`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from fakellama.faults import FaultSpecError
from fakellama.fixtures import FixtureError
from fakellama.personalities import all_versions
from fakellama.record import Recorder
from fakellama.server import BackgroundServer, FakeServer


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for both sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m fakellama",
                                     description="A fake llama-server that replays fixtures.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="replay fixtures")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    serve.add_argument("--fixtures", default=None, help="fixture directory (default: bundled)")
    serve.add_argument("--api-key", default=None)
    serve.add_argument("--ctx-size", type=int, default=None)
    serve.add_argument("--model", default=None)
    serve.add_argument("--personality", default="llamacpp", metavar="NAME[@VERSION]",
                       help="which server to be: " + ", ".join(all_versions())
                            + " (a bare name is its newest version; @current also works)")
    serve.add_argument("--personality-option", action="append", default=[],
                       metavar="NAME=VALUE",
                       help="a start-up option of that server (repeatable): vllm "
                            "tool_parser= (empty: started without --enable-auto-tool-choice "
                            "--tool-call-parser), ollama context_shift=off")
    serve.add_argument("--strict", action="store_true", help="refuse requests no fixture matches")
    serve.add_argument("--fault", default="", help='e.g. "status=429,retry_after=2"')
    serve.add_argument("--metrics", action="store_true", help="enable /metrics")
    serve.add_argument("--embeddings", action="store_true",
                       help="serve /v1/embeddings and /embedding, as llama-server --embeddings "
                            "(501 otherwise)")
    serve.add_argument("--ubatch-size", type=int, default=512, metavar="N",
                       help="the physical batch: a longer embedding input is refused (500), "
                            "as llama-server's --ubatch-size (default 512)")
    serve.add_argument("--realtime", action="store_true", help="replay recorded event timing")
    serve.add_argument("--keep-alive-timeout", type=float, default=5.0, metavar="SECONDS",
                       help="close a connection idle this long (llama-server: 5)")
    serve.add_argument("--keep-alive-max", type=int, default=100, metavar="N",
                       help="close a connection after N requests; 1 closes every one "
                            "(llama-server: 100)")
    serve.add_argument("--keep-requests", type=int, default=0, metavar="N",
                       help="keep the last N requests in memory (default 0: nothing reads "
                            "them outside tests)")
    serve.add_argument("--quiet", action="store_true",
                       help="no request log (by default one line per request on stderr: "
                            "method, path, status, answer tier, fixture)")
    record = sub.add_parser("record", help="proxy to a real server and write fixtures")
    record.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8080")
    record.add_argument("--out", required=True, help="directory for new fixtures")
    record.add_argument("--host", default="127.0.0.1")
    record.add_argument("--port", type=int, default=8081)
    record.add_argument("--secret", action="append", default=[],
                        help="a string to scrub from fixtures (repeatable)")
    record.add_argument("--server-name", default="llama-server")
    return parser


def _options(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` items as a dict; raises ValueError naming an item without "="."""
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--personality-option {item!r}: expected NAME=VALUE")
        options[name.strip()] = value.strip()
    return options


def _log_request(line: str) -> None:
    print(f"fakellama: {line}", file=sys.stderr, flush=True)


def _wait_for_signal(server: BackgroundServer) -> None:
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    with server:
        print(f"fakellama listening on {server.url}", flush=True)
        while not stop.wait(0.2):  # a timed wait lets the signal handler run promptly
            pass
    print("fakellama stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            server: BackgroundServer = FakeServer(
                args.fixtures, host=args.host, port=args.port, personality=args.personality,
                personality_options=_options(args.personality_option),
                api_key=args.api_key, ctx_size=args.ctx_size, model=args.model,
                strict=args.strict, faults=args.fault, metrics=args.metrics,
                embeddings=args.embeddings, ubatch_size=args.ubatch_size,
                realtime=args.realtime, keep_alive_timeout=args.keep_alive_timeout,
                keep_alive_max=args.keep_alive_max, keep_requests=args.keep_requests,
                request_log=None if args.quiet else _log_request)
        else:
            recorder = Recorder(args.upstream, args.out, secrets=args.secret,
                                server_name=args.server_name)
            server = BackgroundServer(recorder, args.host, args.port)
    except (FixtureError, FaultSpecError, ValueError) as exc:
        print(f"fakellama: {exc}", file=sys.stderr)
        return 2
    _wait_for_signal(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
