"""One backend shared by 16 threads: every reply answers its own request, nothing leaks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fakellama.server import FakeServer
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.factory import new_backend
from pedrollm.types import InferenceRequest
from tests.reliability.echo import EchoServer, echo_text
from tests.reliability.replies import CHAT_PATH, reply_fixture
from tests.reliability.sockets import client_sockets_to, open_sockets, proc_available

THREADS = 16
PER_THREAD = 100

pytestmark = [pytest.mark.skipif(not proc_available(), reason="counts sockets through /proc"),
              pytest.mark.fake_llama(strict=True)]


def _prompt(thread: int, n: int) -> str:
    return f"Thread {thread}, request {n}: which token is yours?"


def _answer(thread: int, n: int) -> str:
    return f"Your token is t{thread}-r{n}."


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    """Poll until condition() holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def hammer(backend: OpenAIBackend, per_thread: int,
           answer: Callable[[int, int], str]) -> tuple[list[BaseException], list[str]]:
    """Run THREADS threads of ``per_thread`` requests (odd ones streamed) on one backend.

    Returns every exception raised, whatever its type, and every reply that was not the
    answer to its own prompt.
    """
    wrong: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        start.wait(timeout=10)
        for n in range(per_thread):
            req = InferenceRequest(user_prompt=_prompt(thread, n))
            try:
                if n % 2:
                    final = [d for d in backend.stream(req) if d.done][0].response
                    text = final.text if final is not None else None
                else:
                    text = backend.infer(req).text
            except BaseException as exc:  # every failure is reported, whatever its type
                failures.append(exc)
                continue
            if text != answer(thread, n):
                wrong.append(f"t{thread}-r{n} got {text!r}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a worker is still running after 120 s"
    return failures, wrong


@pytest.fixture
def fake(fake_llama_server: FakeServer) -> FakeServer:
    """The plugin's fake with one reply fixture per thread and request."""
    for t in range(THREADS):
        for n in range(PER_THREAD):
            fake_llama_server.add_fixture(reply_fixture(f"t{t}-r{n}", _prompt(t, n),
                                                        _answer(t, n)))
    return fake_llama_server


def test_sixteen_threads_get_their_own_replies_and_leak_no_socket(fake: FakeServer) -> None:
    port = int(fake.url.rsplit(":", 1)[1])
    sockets_before = open_sockets()
    backend = new_backend({"type": "llamacpp", "server_url": fake.url, "max_retries": 0})

    failures, wrong = hammer(backend, PER_THREAD, _answer)

    assert failures == []
    assert wrong == []
    chats = [r for r in fake.requests if r.path == CHAT_PATH]
    assert len(chats) == THREADS * PER_THREAD  # each request sent once, none retried
    assert client_sockets_to(port) <= THREADS
    backend.close()
    assert client_sockets_to(port) == 0
    # The fake's handler threads close their ends once the client has gone.
    _wait_for(lambda: open_sockets() <= sockets_before, 10.0)
    assert open_sockets() <= sockets_before


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer().start()
    yield server
    server.stop()


def test_kept_alive_connections_are_shared_safely_and_closed(echo: EchoServer) -> None:
    per_thread = 50
    sockets_before = open_sockets()
    backend = new_backend({"type": "llamacpp", "server_url": echo.url, "max_retries": 0})

    failures, wrong = hammer(backend, per_thread,
                             lambda t, n: echo_text(_prompt(t, n)))

    assert failures == []
    assert wrong == []
    # Pooled connections were reused: on average each carried at least two requests.
    assert echo.connections <= THREADS * per_thread // 2
    assert client_sockets_to(echo.port) <= THREADS
    backend.close()
    assert client_sockets_to(echo.port) == 0
    _wait_for(lambda: open_sockets() <= sockets_before, 10.0)
    assert open_sockets() <= sockets_before
