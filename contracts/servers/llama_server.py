"""Start and stop a real llama-server on a loopback port, for tests, recording and the Makefile.

In Python::

    with LlamaServer(binary, model, jinja=True) as server:
        requests.get(server.url + "/health")

From a shell (the server keeps running; its pid is kept in a pid file)::

    python -m contracts.servers.llama_server start [--model M] [--port P] [--jinja] ...
    python -m contracts.servers.llama_server status
    python -m contracts.servers.llama_server stop
    python -m contracts.servers.llama_server health --port 8081   # any server

The server binds 127.0.0.1 only. Without a port it binds port 0 and the chosen port
is read from its log, so two servers never race for one port. Start waits on
``/health`` for a bounded time and fails with the server's last log lines when the
process exits or does not become ready. Stopping only ever signals the process this
code started, by its pid; ``stop`` checks that the pid in the pid file still runs
the recorded binary before signalling it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

DEFAULT_CTX_SIZE = 2048
DEFAULT_STARTUP_TIMEOUT = 120.0
STOP_GRACE_SECONDS = 10.0
_LISTENING = re.compile(r"listening on (https?://[^\s:/]+:(\d+))")


class LlamaServerError(RuntimeError):
    """llama-server could not be started, or exited while starting."""


class LlamaServer:
    """One llama-server process on 127.0.0.1; a context manager that always stops it."""

    def __init__(self, binary: str | os.PathLike[str], model: str | os.PathLike[str], *,
                 ctx_size: int = DEFAULT_CTX_SIZE, jinja: bool = True,
                 api_key: str | None = None, extra_args: Sequence[str] = (),
                 port: int | None = None, threads: int | None = None,
                 n_gpu_layers: int | None = None,
                 startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
                 log_path: str | os.PathLike[str] | None = None,
                 detach: bool = False) -> None:
        """Describe the server; nothing runs until ``start()`` or ``with``."""
        self.binary = _resolve_binary(binary)
        self.model = Path(model)
        self.ctx_size = ctx_size
        self.jinja = jinja
        self.api_key = api_key
        self.extra_args = tuple(extra_args)
        self.requested_port = port
        self.threads = threads
        self.n_gpu_layers = n_gpu_layers
        self.startup_timeout = startup_timeout
        self.detach = detach
        self._own_log_dir: tempfile.TemporaryDirectory[str] | None = None
        if log_path is None:
            self._own_log_dir = tempfile.TemporaryDirectory(prefix="pedrollm-llama-server-")
            log_path = Path(self._own_log_dir.name) / "llama-server.log"
        self.log_path = Path(log_path)
        self.port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what callers read --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:41234`` (once started)."""
        if self.port is None:
            raise LlamaServerError("the server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of the server this object started."""
        if self._proc is None:
            raise LlamaServerError("the server has not been started")
        return self._proc.pid

    def command(self) -> list[str]:
        """The llama-server command line this object runs."""
        cmd = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.requested_port or 0), "--ctx-size", str(self.ctx_size),
               "--jinja" if self.jinja else "--no-jinja"]
        if self.api_key:
            cmd += ["--api-key", self.api_key]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.n_gpu_layers is not None:
            cmd += ["--n-gpu-layers", str(self.n_gpu_layers)]
        return cmd + list(self.extra_args)

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def is_running(self) -> bool:
        """Whether the process this object started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, until: Literal["ready", "listening"] = "ready") -> LlamaServer:
        """Start the server and wait until /health answers 200; raise LlamaServerError if not.

        ``until="listening"`` returns as soon as /health answers at all, which is
        503 while the model loads: a test can then hold requests through the loading
        phase. It needs a ``port``: the log names the port only once loading is done.
        """
        if self._proc is not None:
            raise LlamaServerError("this LlamaServer was already started")
        if until == "listening" and self.requested_port is None:
            raise LlamaServerError("start(until='listening') needs a port (free_port() gives "
                                   "one): llama-server logs its port only after loading")
        for path, what in ((self.binary, "llama-server binary"), (self.model, "model")):
            if not path.is_file():
                raise LlamaServerError(f"{what} not found: {path}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Settings from the environment would silently change flags given here.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=self.detach,
                preexec_fn=None if self.detach else _die_with_parent(),
            )
        try:
            self._wait_ready(any_answer=until == "listening")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, any_answer: bool = False) -> None:
        """Learn the port from the log if needed, then poll /health within the bound."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._proc.poll() if self._proc else None
            if code is not None:
                raise LlamaServerError(
                    f"llama-server exited with code {code} while starting "
                    f"(log: {self.log_path}):\n{self.log_tail()}")
            if self.port is None:
                self.port = self._port_from_log()
            if self.port is not None:
                status = _health_status(self.url)
                if status == 200 or (any_answer and status is not None):
                    return
            if time.monotonic() > deadline:
                raise LlamaServerError(
                    f"llama-server was not ready after {self.startup_timeout:.0f} s "
                    f"(log: {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.1)

    def _port_from_log(self) -> int | None:
        """The port the server reports listening on, once it has logged it."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        match = _LISTENING.search(text)
        return int(match.group(2)) if match else None

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL); safe to repeat."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def close(self) -> None:
        """Stop the server and remove the log directory this object created."""
        self.stop()
        if self._own_log_dir is not None:
            self._own_log_dir.cleanup()
            self._own_log_dir = None

    def __enter__(self) -> LlamaServer:
        """Start the server."""
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the server, whatever happened inside the block."""
        self.stop()


#: Sizes of the model ``loading_llama_server`` writes, tried in turn: checking every
#: weight while loading (--check-tensors) keeps /health at 503 for about a second per
#: 150 MB on a small CPU; a faster machine, which loads the first size too soon, gets
#: the next one.
LOADING_MODEL_MB = (240.0, 960.0)
#: How long /health must have stayed 503 before the URL is handed over, so that the
#: caller's first look, a moment later, still finds the server loading.
LOADING_MIN_SECONDS = 0.25


@contextlib.contextmanager
def loading_llama_server(binary: str | os.PathLike[str], workdir: str | os.PathLike[str],
                         **options: Any) -> Iterator[str]:
    """Start llama-server on a model that takes seconds to load; yield its URL while loading.

    The model (random weights) is written into ``workdir`` on first use.
    ``--check-tensors`` makes the server read every weight before it is ready, so the
    503 phase lasts long enough for a client to see it and wait it out; the URL is only
    handed over once /health has answered 503 for ``LOADING_MIN_SECONDS``. The server
    is stopped when the block ends.
    """
    from .scripted_model import write_random_model

    extra = ["--check-tensors", *options.pop("extra_args", ())]
    for size_mb in LOADING_MODEL_MB:
        model = Path(workdir) / f"loading-{size_mb:g}mb.gguf"
        if not model.is_file():
            write_random_model(model, size_mb)
        server = LlamaServer(binary, model, port=free_port(), extra_args=extra, **options)
        try:
            server.start(until="listening")
            time.sleep(LOADING_MIN_SECONDS)
            if _health_status(server.url) == 503:
                yield server.url
                return
        finally:
            server.close()
    raise LlamaServerError(
        f"llama-server loaded a {LOADING_MODEL_MB[-1]:g} MB model with --check-tensors in "
        f"under {LOADING_MIN_SECONDS:g} s: no loading phase long enough to hold a request")


def free_port() -> int:
    """A free loopback port, for a server whose port must be known before it logs one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resolve_binary(binary: str | os.PathLike[str]) -> Path:
    """An absolute path for ``binary``, looked up on PATH when it is a bare name."""
    path = Path(binary)
    if path.is_file():
        return path.absolute()
    found = shutil.which(str(binary)) if path.name == str(binary) else None
    return Path(found).absolute() if found else path


def _die_with_parent() -> Any:
    """A preexec hook asking Linux to SIGTERM the server if this process dies first."""
    # The death signal fires when the *thread* that forked exits, so only arm it from
    # the main thread; elsewhere the normal stop paths are the only cleanup.
    if not sys.platform.startswith("linux") or threading.current_thread() is not \
            threading.main_thread():
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


def _health_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET {url}/health, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


# -- the pid-file command line ----------------------------------------------------------


def default_pid_file() -> Path:
    """Where ``start`` records the server it left running, unless told otherwise."""
    from .build import cache_root

    return cache_root() / "run" / "llama-server.json"


def _read_pid_file(path: Path) -> dict[str, Any] | None:
    """The recorded server, or None when there is no (readable) pid file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _runs_binary(pid: int, binary: str) -> bool:
    """Whether process ``pid`` is alive and runs ``binary`` (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    wanted = os.path.realpath(binary)
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        with contextlib.suppress(OSError):
            # argv[0] is the binary; a script run through its #! line shows up as
            # the interpreter followed by the script, so look at the first two.
            argv = cmdline.read_bytes().split(b"\0")[:2]
            return any(os.path.realpath(a.decode(errors="replace")) == wanted
                       for a in argv if a)
    out = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True,
                         text=True, check=False)
    return any(os.path.realpath(word) == wanted for word in out.stdout.split()[:2])


def _cmd_start(args: argparse.Namespace) -> int:
    """Start a detached server and record it in the pid file."""
    pid_file = Path(args.pid_file)
    running = _read_pid_file(pid_file)
    if running and _runs_binary(running["pid"], running["binary"]):
        print(f"already running: pid {running['pid']} at {running['url']} "
              f"(stop it with: stop --pid-file {pid_file})", file=sys.stderr)
        return 1
    binary = Path(args.binary) if args.binary else _default_binary()
    model = Path(args.model) if args.model else _default_model(pid_file.parent)
    log_path = Path(args.log_file) if args.log_file else pid_file.with_suffix(".log")
    server = LlamaServer(binary, model, ctx_size=args.ctx_size, jinja=args.jinja,
                         api_key=args.api_key, port=args.port or None, threads=args.threads,
                         n_gpu_layers=args.n_gpu_layers, extra_args=args.extra,
                         startup_timeout=args.timeout, log_path=log_path, detach=True)
    try:
        server.start()
    except LlamaServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(json.dumps({
        "pid": server.pid, "url": server.url, "binary": str(server.binary),
        "model": str(model), "log": str(log_path), "command": server.command(),
    }, indent=2) + "\n", encoding="utf-8")
    print(f"llama-server pid {server.pid} at {server.url} (log: {log_path})")
    return 0


def _default_binary() -> Path:
    """llama-server built by contracts.servers.build (built now if it is not yet)."""
    from .build import ensure_llama_server

    return ensure_llama_server(progress=lambda m: print(m, file=sys.stderr, flush=True))


def _default_model(directory: Path) -> Path:
    """The scripted model, written beside the pid file."""
    from .scripted_model import write_scripted_model

    return write_scripted_model(directory / "scripted.gguf")


def _cmd_stop(args: argparse.Namespace) -> int:
    """Stop the server recorded in the pid file, if it is still the one we started."""
    pid_file = Path(args.pid_file)
    running = _read_pid_file(pid_file)
    if running is None:
        print(f"no server recorded in {pid_file}")
        return 0
    pid = running["pid"]
    if not _runs_binary(pid, running["binary"]):
        print(f"pid {pid} is no longer the recorded llama-server; nothing to stop")
        pid_file.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _runs_binary(pid, running["binary"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _runs_binary(pid, running["binary"]):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"stopped llama-server pid {pid} ({running['url']})")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """Print whether the recorded server runs and answers /health; exit 0 only if healthy."""
    running = _read_pid_file(Path(args.pid_file))
    if running is None or not _runs_binary(running["pid"], running["binary"]):
        print("not running")
        return 1
    status = _health_status(running["url"])
    print(f"pid {running['pid']} at {running['url']}: /health {status or 'no answer'}")
    return 0 if status == 200 else 1


def _cmd_health(args: argparse.Namespace) -> int:
    """Ask a server on a loopback port (running or not started by us) for /health."""
    url = f"http://127.0.0.1:{args.port}"
    status = _health_status(url)
    if status is None:
        print(f"nothing answers at {url}/health")
        return 1
    print(f"{url}/health: {status} {'ok' if status == 200 else 'not ready'}")
    return 0 if status == 200 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: start | stop | status | health."""
    parser = argparse.ArgumentParser(prog="python -m contracts.servers.llama_server",
                                     description="Run llama-server in the background.")
    parser.add_argument("--pid-file", default=str(default_pid_file()),
                        help="where the running server is recorded (default: %(default)s)")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start a server and return once it is healthy")
    start.add_argument("--binary", help="llama-server to run (default: build or reuse ours)")
    start.add_argument("--model", help="GGUF model (default: the scripted model)")
    start.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    start.add_argument("--ctx-size", type=int, default=DEFAULT_CTX_SIZE)
    start.add_argument("--threads", type=int)
    start.add_argument("--n-gpu-layers", type=int)
    start.add_argument("--api-key")
    start.add_argument("--jinja", action=argparse.BooleanOptionalAction, default=True,
                       help="use the model's Jinja chat template (needed for tools)")
    start.add_argument("--log-file", help="server log (default: beside the pid file)")
    start.add_argument("--timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT,
                       help="seconds to wait for /health")
    start.add_argument("extra", nargs="*", help="more llama-server arguments, after --")
    stop = sub.add_parser("stop", help="stop the server recorded in the pid file")
    stop.add_argument("--timeout", type=float, default=STOP_GRACE_SECONDS)
    sub.add_parser("status", help="is the recorded server running and healthy?")
    health = sub.add_parser("health", help="ask any server on a loopback port for /health")
    health.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    handlers = {"start": _cmd_start, "stop": _cmd_stop, "status": _cmd_status,
                "health": _cmd_health}
    return handlers[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
