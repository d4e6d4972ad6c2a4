"""infer_many: many requests at once over one backend, each answered or failed in place."""

from __future__ import annotations

import threading

import pytest

from fakellama.server import FakeServer
from pedrollm import InferenceRequest, InferenceResponse, RequestValidationError, new_backend


def test_results_come_back_in_input_order_with_failures_in_place(
        fake_llama_server: FakeServer) -> None:
    requests = [InferenceRequest(user_prompt="Say hello."),
                InferenceRequest(user_prompt="x", max_tokens=-5),  # refused before sending
                InferenceRequest(user_prompt="What is the weather in Paris?"),
                InferenceRequest(user_prompt="Say hello.")]
    seen: list[tuple[int, int]] = []
    with new_backend({"type": "llamacpp", "server_url": fake_llama_server.url}) as llm:
        results = llm.infer_many(requests, progress=lambda done, total: seen.append((done,
                                                                                       total)))
    assert len(results) == 4
    assert isinstance(results[1], RequestValidationError) and results[1].field == "max_tokens"
    for i in (0, 2, 3):
        assert isinstance(results[i], InferenceResponse)
    first, last = results[0], results[3]
    assert isinstance(first, InferenceResponse) and isinstance(last, InferenceResponse)
    assert first.text == last.text  # the same question, the same recorded answer
    assert sorted(seen) == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_max_workers_defaults_to_the_servers_slots(fake_llama_server: FakeServer) -> None:
    with new_backend({"type": "llamacpp", "server_url": fake_llama_server.url}) as llm:
        slots = llm.parallel_slots()
        assert slots == llm.server_info().extra["total_slots"] > 1
        threads: set[str] = set()
        original = llm.infer

        def infer(req: InferenceRequest) -> InferenceResponse:
            threads.add(threading.current_thread().name)
            return original(req)

        llm.infer = infer  # type: ignore[method-assign]
        llm.infer_many([InferenceRequest(user_prompt="Say hello.")] * (slots * 3))
    assert 1 <= len(threads) <= slots


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_max_workers_must_be_a_positive_integer(workers: object) -> None:
    with new_backend({"type": "llamacpp", "server_url": "http://127.0.0.1:9"}) as llm, \
            pytest.raises(ValueError, match="max_workers"):
        llm.infer_many([InferenceRequest(user_prompt="x")], max_workers=workers)  # type: ignore[arg-type]


def test_no_requests_no_work() -> None:
    with new_backend({"type": "llamacpp", "server_url": "http://127.0.0.1:9"}) as llm:
        assert llm.infer_many([], max_workers=2) == []
