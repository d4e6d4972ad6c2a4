"""Tool-call parser throughput per format: whole-text parse and streaming parse, in MB/s.

Each format parses the same kind of reply (some content, then calls with nested
arguments), and its speed is printed next to ``json.loads`` decoding the calls'
JSON in the same run, as a ratio, so the numbers mean something on any machine.

    python -m bench.bench_toolcalls [--seconds 0.3] [--chunk 16] [format ...]

Prints a Markdown section (the convention of ``bench/run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from bench.machine import describe
from pedrollm.toolcalls import StreamingParser, ToolCallFormat, format_names, get_format
from pedrollm.types import ToolCall


def sample_calls() -> list[ToolCall]:
    """Three calls with nested arguments and strings full of quotes, braces and markers."""
    args = {
        "query": 'weather "today" in {Paris} \\ é中',
        "options": {"units": "metric", "days": [1, 2, 3], "nested": {"a": None, "b": True}},
        "limit": 10,
        "text": "line one\nline two\n" * 8,
    }
    return [ToolCall(id="", name=f"tool_{i}", args=args) for i in range(3)]


CONTENT = "Let me look that up for you. " * 8


def rate(fn: Callable[[], object], nbytes: int, seconds: float) -> float:
    """Run ``fn`` repeatedly for about ``seconds``; return MB/s over ``nbytes`` per run."""
    fn()
    runs = 0
    start = time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return runs * nbytes / elapsed / 1e6


def main() -> None:
    """Print a Markdown table: parse and stream MB/s per format and their ratio to json.loads."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("formats", nargs="*", default=format_names())
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--chunk", type=int, default=16, help="stream chunk size in characters")
    opts = ap.parse_args()

    calls = sample_calls()
    payload = json.dumps([{"name": c.name, "arguments": c.args} for c in calls], ensure_ascii=False)
    rows: list[tuple[str, int, float, float, float]] = []
    for name in opts.formats:
        fmt = get_format(name)
        n = min(len(calls), fmt.max_calls)
        text = fmt.render(calls[:n], CONTENT)
        nbytes = len(text.encode())
        chunks = [text[i : i + opts.chunk] for i in range(0, len(text), opts.chunk)]
        assert len(fmt.parse(text).calls) == n, name

        def streamed(chunks: list[str] = chunks, fmt: ToolCallFormat = fmt) -> object:
            p = StreamingParser(fmt)
            for c in chunks:
                p.feed(c)
            return p.finish()

        def parsed(text: str = text, fmt: ToolCallFormat = fmt) -> object:
            return fmt.parse(text)

        def peer(payload: str = payload) -> object:
            return json.loads(payload)

        # The peer is measured right before each format, so drift on a shared machine
        # touches both sides of every ratio alike.
        peer_rate = rate(peer, len(payload.encode()), opts.seconds)
        parse_rate = rate(parsed, nbytes, opts.seconds)
        stream_rate = rate(streamed, nbytes, opts.seconds)
        rows.append((name, nbytes, peer_rate, parse_rate, stream_rate))

    command = " ".join(["python -m bench.bench_toolcalls", *sys.argv[1:]])
    print("## Tool-call parsers: throughput per format\n")
    print(f"Command: `{command}`  \nMachine: {describe()}\n")
    print(
        "Each format parses a reply of some content and three calls with nested arguments; "
        f"streaming feeds it in {opts.chunk}-character chunks. The peer is `json.loads` on "
        "the same calls' JSON, measured in the same run right before each format.\n"
    )
    print("| format | reply bytes | parse MB/s | parse / json.loads | stream MB/s "
          "| stream / json.loads |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for name, nbytes, peer_rate, parse_rate, stream_rate in rows:
        print(
            f"| {name} | {nbytes} | {parse_rate:.2f} | {parse_rate / peer_rate:.2f} "
            f"| {stream_rate:.2f} | {stream_rate / peer_rate:.2f} |"
        )
    median_peer = statistics.median(r[2] for r in rows)
    print(f"\njson.loads on the calls' JSON: median {median_peer:.2f} MB/s.")


if __name__ == "__main__":
    main()
