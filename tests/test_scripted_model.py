"""The scripted GGUF: readable metadata, the vocabulary, and the replies its weights encode.

The replies are checked by running the model's own arithmetic on the tensors read
back from the file (embedding row, RMS norm, output matrix, argmax), so what is
tested is the file llama-server loads, not the generator's intentions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFReader, TokenType

from contracts.servers.scripted_model import (
    ANSWER,
    BYTE_TO_UNICODE,
    CHAT_TEMPLATE,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    tool_call_text,
    write_random_model,
    write_scripted_model,
)

UNICODE_TO_BYTE = {c: b for b, c in BYTE_TO_UNICODE.items()}


class LoadedModel:
    """A scripted GGUF read back with gguf's reader, with a tiny reference forward pass."""

    def __init__(self, path: Path) -> None:
        """Read the file."""
        self.reader = GGUFReader(path)
        self.tokens: list[str] = self.field("tokenizer.ggml.tokens")
        self.types: list[int] = self.field("tokenizer.ggml.token_type")
        self.tensors = {t.name: np.asarray(t.data, dtype=np.float32)
                        for t in self.reader.tensors}

    def field(self, key: str) -> Any:
        """A metadata value."""
        return self.reader.fields[key].contents()

    def id_of(self, text: str) -> int:
        """The id of the token with this exact stored text."""
        return self.tokens.index(text)

    def logits(self, token: int) -> np.ndarray[Any, Any]:
        """The next-token logits given the current token (attention and FFN add zero)."""
        x = self.tensors["token_embd.weight"][token]
        eps = float(self.field("llama.attention.layer_norm_rms_epsilon"))
        x = x / np.sqrt(np.mean(x * x) + eps) * self.tensors["output_norm.weight"]
        result: np.ndarray[Any, Any] = self.tensors["output.weight"] @ x
        return result

    def successor(self, token: int) -> int:
        """The greedy next token."""
        return int(np.argmax(self.logits(token)))

    def text(self, token: int) -> str:
        """What a token prints as: byte-decoded for normal tokens, raw for user-defined."""
        if self.types[token] == TokenType.USER_DEFINED:
            return self.tokens[token]
        if self.types[token] == TokenType.CONTROL:
            return ""
        return bytes(UNICODE_TO_BYTE[c] for c in self.tokens[token]).decode("utf-8")

    def generate(self, start: int, limit: int = 50) -> tuple[str, int]:
        """Greedy generation from ``start`` until an end token: (text, end token id)."""
        eos = int(self.field("tokenizer.ggml.eos_token_id"))
        out: list[str] = []
        token = start
        for _ in range(limit):
            token = self.successor(token)
            if token == eos:
                return "".join(out), token
            out.append(self.text(token))
        raise AssertionError(f"no end of turn within {limit} tokens: {''.join(out)!r}")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """The default scripted model, written and read back."""
    return LoadedModel(write_scripted_model(tmp_path_factory.mktemp("m") / "scripted.gguf"))


def test_metadata_describes_a_llama_model_with_a_gpt2_tokenizer(model: LoadedModel) -> None:
    assert model.field("general.architecture") == "llama"
    assert model.field("tokenizer.ggml.model") == "gpt2"
    assert model.field("llama.block_count") == 1
    assert model.field("tokenizer.chat_template") == CHAT_TEMPLATE
    assert model.field("tokenizer.ggml.add_bos_token") is False


def test_embedding_width_is_a_multiple_of_64_covering_the_vocabulary(model: LoadedModel) -> None:
    width = model.field("llama.embedding_length")
    assert width % 64 == 0
    assert width >= len(model.tokens) == model.field("llama.vocab_size")
    assert model.field("llama.rope.dimension_count") % 2 == 0


def test_the_file_is_under_a_megabyte(tmp_path: Path) -> None:
    assert write_scripted_model(tmp_path / "m.gguf").stat().st_size < 1_000_000


def test_vocabulary_has_all_256_byte_tokens_first(model: LoadedModel) -> None:
    assert [UNICODE_TO_BYTE[t] for t in model.tokens[:256]] == list(range(256))
    assert all(model.types[i] == TokenType.NORMAL for i in range(256))


def test_vocabulary_has_at_least_one_merge_whose_result_is_a_token(model: LoadedModel) -> None:
    merges = model.field("tokenizer.ggml.merges")
    assert merges
    for merge in merges:
        left, right = merge.split(" ")
        assert left + right in model.tokens


def test_chat_tokens_are_control_and_tool_tags_user_defined(model: LoadedModel) -> None:
    kinds = {text: model.types[model.id_of(text)] for text in
             ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>")}
    assert kinds == {"<|im_start|>": TokenType.CONTROL, "<|im_end|>": TokenType.CONTROL,
                     "<|endoftext|>": TokenType.CONTROL,
                     "<tool_call>": TokenType.USER_DEFINED,
                     "</tool_call>": TokenType.USER_DEFINED}
    assert model.field("tokenizer.ggml.eos_token_id") == model.id_of("<|im_end|>")


def test_token_texts_are_unique(model: LoadedModel) -> None:
    assert len(set(model.tokens)) == len(model.tokens)


def test_after_a_user_turn_the_newline_starts_the_tool_call(model: LoadedModel) -> None:
    text, _ = model.generate(model.id_of(BYTE_TO_UNICODE[ord("\n")]))
    assert text == tool_call_text()
    assert text == ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
                    "</tool_call>")
    body = json.loads(text.removeprefix("<tool_call>").removesuffix("</tool_call>"))
    assert body == {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}


def test_after_a_tool_result_the_double_newline_starts_the_answer(model: LoadedModel) -> None:
    text, _ = model.generate(model.id_of(BYTE_TO_UNICODE[ord("\n")] * 2))
    assert text == ANSWER == "It is sunny in Paris."


def test_the_tool_call_streams_in_several_tokens(model: LoadedModel) -> None:
    token, steps = model.id_of("<tool_call>"), 0
    while token != model.id_of("</tool_call>"):
        token, steps = model.successor(token), steps + 1
    assert steps >= 4


@pytest.mark.parametrize("token", [0, ord("a"), ord("{"), 256 + 1])
def test_a_token_outside_the_scripts_ends_the_turn(model: LoadedModel, token: int) -> None:
    assert model.generate(token) == ("", model.id_of("<|im_end|>"))


def test_the_successor_wins_by_a_wide_margin_for_every_token(model: LoadedModel) -> None:
    for token in range(len(model.tokens)):
        logits = np.sort(model.logits(token))
        # At temperature 1 the successor keeps all but ~1e-60 of the probability.
        assert logits[-1] - logits[-2] > 100


def test_attention_and_feed_forward_weights_are_zero(model: LoadedModel) -> None:
    blocks = {n: t for n, t in model.tensors.items()
              if n.startswith("blk.") and not n.endswith("norm.weight")}
    assert len(blocks) == 7
    assert all(not t.any() for t in blocks.values())


def test_embeddings_are_the_identity(model: LoadedModel) -> None:
    embd = model.tensors["token_embd.weight"]
    n = len(model.tokens)
    assert np.array_equal(embd[:, :n], np.eye(n)) and not embd[:, n:].any()


def test_a_custom_answer_with_repeated_words_is_scripted_exactly(tmp_path: Path) -> None:
    answer = "It is what it is, and it is 22 C."
    model = LoadedModel(write_scripted_model(tmp_path / "m.gguf", answer=answer))
    assert model.generate(model.id_of(BYTE_TO_UNICODE[ord("\n")] * 2))[0] == answer


def test_a_custom_tool_call_is_scripted_exactly(tmp_path: Path) -> None:
    path = write_scripted_model(tmp_path / "m.gguf", tool_name="lookup",
                                arguments={"query": "weather", "days": 3})
    model = LoadedModel(path)
    text, _ = model.generate(model.id_of(BYTE_TO_UNICODE[ord("\n")]))
    assert text == ('<tool_call>\n{"name": "lookup", "arguments": {"query": "weather", '
                    '"days": 3}}\n</tool_call>')


@pytest.mark.parametrize("target_mb", [3, 12])
def test_random_model_is_about_the_requested_size(tmp_path: Path, target_mb: int) -> None:
    path = write_random_model(tmp_path / "r.gguf", target_mb)
    assert path.stat().st_size == pytest.approx(target_mb * 1e6, rel=0.2)
    reader = GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == "llama"
    weights = next(t for t in reader.tensors if t.name == "blk.0.ffn_up.weight")
    assert np.asarray(weights.data).std() > 0
