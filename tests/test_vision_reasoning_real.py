"""Images and thinking control on a real llama-server serving SmolLM2-135M-Instruct.

Marked ``real_server`` (``tox -e contract-real`` runs it). SmolLM2 has no projector and
does not think, so this checks what the SDK owes, not what a vision or thinking model
says: llama-server refuses an image with its own words and the SDK raises
MediaNotSupported naming --mmproj, in infer and in stream; every setting of ``think``
is accepted (200) and the fake answers the same bodies the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from contracts.sample_requests import red_square_png
from contracts.servers.llama_server import LlamaServer
from contracts.servers.models import ensure_model
from fakellama.server import FakeServer
from pedrollm import InferenceRequest, MediaNotSupported, Message, image, new_backend

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]


@pytest.fixture(scope="module")
def smollm2(start_llama_server: Callable[..., LlamaServer]) -> Iterator[LlamaServer]:
    yield start_llama_server(model=ensure_model("smollm2"), jinja=True, ctx_size=4096)


def test_an_image_is_refused_with_the_servers_words_and_the_mmproj_hint(
        smollm2: LlamaServer) -> None:
    req = InferenceRequest(messages=[Message.user("What colour is this?",
                                                  [image(red_square_png())])], max_tokens=8)
    with new_backend({"type": "llamacpp", "server_url": smollm2.url}) as llm:
        for call in (llm.infer, lambda r: list(llm.stream(r))):
            with pytest.raises(MediaNotSupported) as info:
                call(req)
            assert info.value.status == 500
            assert info.value.message.startswith(
                "image input is not supported - hint: if this is unexpected, you may need "
                "to provide the mmproj; ")
            assert "--mmproj" in info.value.message


@pytest.mark.parametrize("think", [True, False, "low", "medium", "high"])
def test_every_thinking_setting_is_accepted_and_the_reply_keeps_its_shape(
        smollm2: LlamaServer, think: Any) -> None:
    req = InferenceRequest(user_prompt="Say hi.", think=think, max_tokens=8, temperature=0)
    with new_backend({"type": "llamacpp", "server_url": smollm2.url}) as llm:
        whole = llm.infer(req)
        deltas = list(llm.stream(req))
    final = deltas[-1].response
    assert final is not None
    assert whole.finish_reason in ("stop", "length") and whole.text
    assert (final.text, final.reasoning) == (whole.text, whole.reasoning)
    assert "".join(d.content for d in deltas[:-1]) == final.text


@pytest.mark.parametrize("fields", [
    {"chat_template_kwargs": {"enable_thinking": "yes"}},
    {"reasoning_format": "bogus"},
    {"reasoning_format": 5},
    {"reasoning_budget_tokens": "x"},
    {"reasoning_effort": "none", "reasoning_format": "deepseek"},
])
def test_the_fake_answers_thinking_fields_as_llama_server_does(
        smollm2: LlamaServer, fields: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}
    answers = []
    with FakeServer() as fake:
        for url in (smollm2.url, fake.url):
            reply = requests.post(url + "/v1/chat/completions", json=body, timeout=60)
            error = reply.json().get("error", {}) if reply.status_code != 200 else {}
            answers.append((reply.status_code, error.get("type"), error.get("message")))
    assert answers[0] == answers[1]
