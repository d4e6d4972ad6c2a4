"""A keep-alive HTTP/1.1 chat server that answers each prompt with ``echo: <prompt>``.

It answers any prompt without fixtures and counts the connections it accepts, so the
concurrency tests can check connection reuse on a server other than fakellama's.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def echo_text(prompt: str) -> str:
    """The reply text the server gives to ``prompt``."""
    return f"echo: {prompt}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EchoServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Log nothing."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer a chat completion, whole or as SSE, with a Content-Length."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        text = echo_text(body["messages"][-1]["content"])
        if body.get("stream"):
            chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"content": word},
                                    "finish_reason": None}]}
                      for word in re.findall(r"\s*\S+", text)]
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
            data = (payload + "data: [DONE]\n\n").encode()
            content_type = "text/event-stream"
        else:
            data = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant",
                                                        "content": text}}]}).encode()
            content_type = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class EchoServer(ThreadingHTTPServer):
    """The server; ``connections`` counts the TCP connections it accepted."""

    daemon_threads = True
    request_queue_size = 128  # all threads may connect at once

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def start(self) -> EchoServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()
