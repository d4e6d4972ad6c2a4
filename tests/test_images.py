"""Images in user messages: building them, checking them, sending them, and refusals."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fakellama.server import FakeServer
from pedrollm import Image, InferenceRequest, MediaNotSupported, Message, image, new_backend
from pedrollm.errors import RequestValidationError, ServerError, UnsupportedFeature
from pedrollm.images import MAX_IMAGE_BYTES, image_from_bytes, image_from_path, image_from_url

# A real 1x1 PNG, and the first bytes of each other recognised format.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
                       "GAhKmMIQAAAABJRU5ErkJggg==")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 16
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L" + b"\x00" * 16
PROMPT = "What is in this picture?"


@pytest.mark.parametrize(("data", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"),
                                            (GIF, "image/gif"), (WEBP, "image/webp")])
def test_bytes_become_a_data_url_typed_from_their_first_bytes(data: bytes, mime: str) -> None:
    img = image(data)
    assert img.mime_type == mime
    assert img.url == f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_unknown_bytes_are_refused_naming_the_formats_unless_a_type_is_given() -> None:
    with pytest.raises(RequestValidationError, match="PNG, JPEG, GIF and WEBP") as info:
        image(b"BM\x00\x00 a bitmap")
    assert info.value.field == "image" and "42 4d 00 00" in str(info.value)
    assert image(b"BM\x00\x00", mime_type="image/bmp").mime_type == "image/bmp"
    with pytest.raises(RequestValidationError, match="mime_type"):
        image(b"BM\x00\x00", mime_type="bitmap")


def test_a_file_is_read_and_typed_by_its_content_not_its_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"  # a PNG under a JPEG name
    path.write_bytes(PNG)
    assert image(path).mime_type == "image/png"
    assert image(str(path)) == image_from_path(path) == image_from_bytes(PNG)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RequestValidationError, match="cannot read") as info:
        image(tmp_path / "nope.png")
    assert "nope.png" in str(info.value)


def test_a_file_over_the_limit_is_refused_before_it_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:  # sparse: the size without the disk space
        handle.truncate(MAX_IMAGE_BYTES + 1)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_reading)
    with pytest.raises(RequestValidationError, match="over the limit") as info:
        image(path)
    assert str(MAX_IMAGE_BYTES) in str(info.value) and "huge.png" in str(info.value)


def test_the_limit_can_be_chosen_and_applies_to_bytes_too(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(PNG)
    with pytest.raises(RequestValidationError, match=f"{len(PNG)} bytes, over the limit of 10"):
        image(path, max_bytes=10)
    with pytest.raises(RequestValidationError, match="over the limit"):
        image(PNG, max_bytes=10)
    with pytest.raises(RequestValidationError, match="empty"):
        image(b"")


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://localhost/x.gif", "http://x",
                                 "data:image/png;base64,iVBORw0KGgo="])
def test_http_and_data_urls_are_kept_as_given(url: str) -> None:
    assert image(url).url == image_from_url(url).url == url


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/cat.png", "http"),
    ("data:text/plain;base64,aGk=", "data:image/"),
    ("data:image/png,rawbytes", "data:image/"),
    ("data:image/png;base64,not base64!", "not valid base64"),
    ("https://exa mple.com/x.png", "not a valid"),
    ("https:///x.png", "not a valid"),
    ("http://", "not a valid"),
])
def test_other_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(RequestValidationError, match=why):
        image_from_url(url)


def test_a_message_with_images_round_trips_through_json() -> None:
    msg = Message.user(PROMPT, [image(PNG), image("https://example.com/cat.png")])
    assert Message.from_json(msg.to_json()) == msg
    req = InferenceRequest(messages=[msg])
    assert InferenceRequest.from_json(req.to_json()) == req
    # A message saved before images existed still loads.
    assert Message.from_dict({"role": "user", "content": "hi"}).images == []


def _user_body(kind: str, msg: Message) -> dict[str, Any]:
    backend = new_backend({"type": kind, "server_url": "http://127.0.0.1:9"})
    return backend.chat_body(InferenceRequest(messages=[msg]))["messages"][0]


@pytest.mark.parametrize("kind", ["llamacpp", "ollama", "vllm", "lmstudio", "openai"])
def test_images_go_as_openai_content_parts_after_the_text(kind: str) -> None:
    first, second = image(PNG), image("https://example.com/cat.png")
    assert _user_body(kind, Message.user(PROMPT, [first, second])) == {
        "role": "user",
        "content": [{"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": first.url}},
                    {"type": "image_url", "image_url": {"url": second.url}}]}


def test_an_image_without_text_is_one_part_and_text_alone_stays_a_string() -> None:
    img = image(PNG)
    assert _user_body("llamacpp", Message(role="user", images=[img]))["content"] == [
        {"type": "image_url", "image_url": {"url": img.url}}]
    assert _user_body("llamacpp", Message.user(PROMPT))["content"] == PROMPT


@pytest.mark.parametrize(("msg", "field", "why"), [
    (Message(role="assistant", content="x", images=[Image("https://e.com/a.png")]),
     "messages[0].images", "only user messages"),
    (Message(role="user", content="x", images=["cat.png"]),  # type: ignore[list-item]
     "messages[0].images[0]", "pedrollm.image"),
    (Message(role="user", content="x", images=[Image("file:///cat.png")]),
     "messages[0].images[0].url", "http"),
])
def test_misplaced_or_unchecked_images_are_refused_before_sending(msg: Message, field: str,
                                                                  why: str) -> None:
    backend = new_backend({"type": "llamacpp", "server_url": "http://127.0.0.1:9"})
    with pytest.raises(RequestValidationError, match=why) as info:
        backend.chat_body(InferenceRequest(messages=[msg]))
    assert info.value.field == field


def test_llama_server_without_a_projector_refuses_images_naming_mmproj() -> None:
    req = InferenceRequest(messages=[Message.user(PROMPT, [image(PNG)])])
    with FakeServer() as fake, new_backend({"type": "llamacpp", "server_url": fake.url}) as llm:
        for call in (llm.infer, lambda r: list(llm.stream(r))):
            with pytest.raises(MediaNotSupported) as info:
                call(req)
            err = info.value
            assert isinstance(err, UnsupportedFeature) and isinstance(err, ServerError)
            assert err.status == 500
            assert err.message.startswith("image input is not supported - hint: if this is "
                                          "unexpected, you may need to provide the mmproj; ")
            assert "--mmproj" in err.message
        # Refused, not retried: one request each.
        assert len(fake.requests) == 2


@pytest.mark.parametrize("kind", ["ollama", "vllm", "lmstudio"])
def test_other_servers_receive_the_parts_and_answer(kind: str) -> None:
    img = image(PNG)
    with FakeServer(personality=kind) as fake, \
            new_backend({"type": kind, "server_url": fake.url}) as llm:
        reply = llm.infer(InferenceRequest(messages=[Message.user(PROMPT, [img])],
                                           max_tokens=4))
        assert reply.text
        content = fake.requests[-1].body["messages"][0]["content"]
        assert content[1] == {"type": "image_url", "image_url": {"url": img.url}}


def test_a_pool_passes_the_refusal_on_instead_of_failing_over() -> None:
    req = InferenceRequest(messages=[Message.user(PROMPT, [image(PNG)])])
    with FakeServer() as one, FakeServer() as two, new_backend({"type": "pool", "servers": [
            {"type": "llamacpp", "server_url": one.url},
            {"type": "llamacpp", "server_url": two.url}]}) as pool:
        with pytest.raises(MediaNotSupported, match="--mmproj"):
            pool.infer(req)
        chats = [r for f in (one, two) for r in f.requests if r.path == "/v1/chat/completions"]
        assert len(chats) == 1  # the same model behind every server would refuse it too
        assert pool.infer(InferenceRequest(user_prompt="Say hello.", max_tokens=4)).text
