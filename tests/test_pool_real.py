"""A pool over two real llama-servers (the scripted model), one stopped mid-run.

Marked ``real_server`` (the ``contract-real`` tox env runs it); see
tests/test_llama_server_build_real.py for how the binary is found.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from contracts.servers.llama_server import LlamaServer
from pedrollm import InferenceRequest, StreamInterrupted, new_backend
from pedrollm.backends.pool import PoolBackend

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]

StartServer = Callable[..., LlamaServer]
ASK = InferenceRequest(user_prompt="What is the weather in Paris?", max_tokens=64)


def test_no_request_is_lost_or_repeated_when_a_server_stops_mid_run(
        start_llama_server: StartServer) -> None:
    keep = start_llama_server(jinja=True)
    doomed = start_llama_server(jinja=True)
    # Both servers answer once first: a server's first request is slow (warm-up), and
    # least_busy would leave a cold one idle while the warm one keeps up.
    with new_backend({"server_url": keep.url}) as direct:
        expected = direct.infer(ASK).text
    with new_backend({"server_url": doomed.url}) as direct:
        assert direct.infer(ASK).text == expected
    assert expected
    doomed_url = doomed.url
    pool = new_backend({"type": "pool", "servers": [{"server_url": keep.url},
                                                    {"server_url": doomed.url}]})
    assert isinstance(pool, PoolBackend)
    done = threading.Semaphore(0)
    outcomes: list[tuple[str, str, str]] = []  # (kind, text the caller saw, final text)
    lock = threading.Lock()

    def ask(n: int) -> None:
        seen = ""
        try:
            if n % 2:
                final = ""
                for delta in pool.stream(ASK):
                    if delta.response is not None:
                        final = delta.response.text
                    else:
                        seen += delta.content or ""
                outcome = ("streamed", seen, final)
            else:
                text = pool.infer(ASK).text
                outcome = ("answered", text, text)
        except StreamInterrupted as exc:
            outcome = ("interrupted", seen, exc.partial.text)
        with lock:
            outcomes.append(outcome)
        done.release()

    with pool, ThreadPoolExecutor(6) as workers:
        futures = [workers.submit(ask, n) for n in range(60)]
        finished = 0
        while finished < 15 or (pool.endpoints_info()[1]["served"] == 0 and finished < 45):
            done.acquire()
            finished += 1
        served_before = [row["served"] for row in pool.endpoints_info()]
        doomed.stop()
        for future in futures:
            future.result()  # anything but a cut stream would be raised here
        rows = pool.endpoints_info()
        probed = dict(pool.endpoint_health())
    assert len(outcomes) == 60
    assert served_before[1] > 0, "the second server took no request before it stopped"
    # Cut mid-request ("error") or refused afterwards ("unreachable"); a probe says which.
    assert rows[1]["state"] in ("error", "unreachable")
    assert probed[doomed_url].state == "unreachable" and probed[keep.url].ready
    for kind, seen, final in outcomes:
        if kind == "interrupted":
            # Cut after data reached the caller: what it saw, once, and never resent.
            assert expected.startswith(seen) and final == seen
        else:
            assert seen == final == expected
    interrupted = sum(1 for kind, _, _ in outcomes if kind == "interrupted")
    assert interrupted <= 6  # at most the streams in flight on the stopped server
    assert sum(row["served"] for row in rows) == 60 - interrupted
