"""A tiny GGUF whose next token depends on the current token alone, so its replies are scripted.

    python -m contracts.servers.scripted_model OUT.gguf            # the scripted model
    python -m contracts.servers.scripted_model OUT.gguf --random-mb 50   # random weights
    python -m contracts.servers.scripted_model OUT.gguf --random-mb 500 --experts 128
    python -m contracts.servers.scripted_model OUT.gguf --random-mb 500 --weight-type Q4_0

How it works. The file is a one-block ``llama`` model. Token embeddings are the
identity (embedding width = the vocabulary size rounded up to a multiple of 64),
every attention and feed-forward weight is zero, so the residual stream leaving the
block is still the current token's one-hot vector; after the final RMS norm, the
output matrix, which holds a single large weight per column, picks that token's
successor. Generation therefore walks a fixed chain of tokens from wherever the
prompt ends, deterministically at any temperature, on a CPU, in well under a MB.

The vocabulary is a GPT-2 style byte-level BPE: the 256 byte tokens, one merge
("\\n\\n", see below; llama.cpp refuses a BPE vocabulary without merges), the chat
control tokens ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>`` (end of
generation), ``<tool_call>`` and ``</tool_call>`` as user-defined tokens (so they
come out as text, which llama-server's tool-call parser reads), and one token per
piece of each script. Every script piece is its own token, because a token can
have only one successor.

Two scripts share the model, and which one runs is decided by the prompt's last
token, which the embedded chat template (ChatML/Qwen2.5 style, with tools and
``<tool_call>`` blocks) controls:

- After a user message the generation prompt ends ``<|im_start|>assistant\\n``; its
  last token is the newline byte, whose chain is the tool call
  ``<tool_call>\\n{"name": "get_weather", "arguments": {"city": "Paris"}}\\n</tool_call>``
  and then ``<|im_end|>``.
- After a tool result the template adds one more newline, so the prompt ends
  ``assistant\\n\\n``. The byte-level tokenizer merges the two newlines into the
  single "\\n\\n" token, and that token's chain is the plain answer
  ``It is sunny in Paris.`` and then ``<|im_end|>``.

So one running server plays a whole agent round trip: ask (tools offered) -> tool
call -> tool result -> plain answer. With ``--jinja`` and tools in the request,
llama-server returns the call as native ``tool_calls``; without tools (or without
``--jinja``) the same ``<tool_call>`` text arrives as message content, which is what
a text fallback parser sees from a real model. Without ``--jinja`` llama-server
uses its own ChatML rendering, which knows nothing of the extra newline, so there
every turn gets the tool-call text. Any token outside a script is followed by
``<|im_end|>``, so every reply ends.

``write_random_model`` writes a bigger model with the same vocabulary and random
weights, sized to a target file size, for throughput benchmarks: dense, or with
``experts=N`` a mixture of experts (``llama`` architecture, Mixtral style) whose
tokens each run through ``experts_used`` of the N experts of every block, so a token's
compute reads a small part of what loading prepares, as in large real models; and with
``weight_type="Q8_0"`` or ``"Q4_0"`` quantized, more weights in the same file size.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter, LlamaFileType, TokenType
from gguf.quants import quantize

ARCH = "llama"
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS: dict[str, Any] = {"city": "Paris"}
ANSWER = "It is sunny in Paris."

BOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
CONTROL_TOKENS = (BOS, IM_START, IM_END)
USER_DEFINED_TOKENS = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE)

# The logit the successor gets (times sqrt(width), from the RMS norm). Large enough
# that sampling at any sane temperature, top-k or top-p still picks it.
SUCCESSOR_WEIGHT = 16.0

# The chat template, written for this project in the ChatML/Qwen2.5 shape: tools
# listed as JSON lines inside <tools>, calls as <tool_call> JSON blocks, tool results
# as <tool_response> blocks inside a user turn. The generation prompt gets one extra
# newline after a tool result: that is what starts the plain-answer script.
CHAT_TEMPLATE = r"""
{%- set sys_text = messages[0].content if messages and messages[0].role == 'system' else '' -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{{- sys_text if sys_text else 'You are a scripted test model.' -}}
{{- '\n\n# Tools\n\nThe functions you can call, one JSON signature per line:\n<tools>' -}}
{%- for tool in tools -%}
{{- '\n' -}}{{- tool | tojson -}}
{%- endfor -%}
{{- '\n</tools>\n\nTo call a function, reply with its name and arguments' -}}
{{- ' as JSON between tags:\n' -}}
{{- '<tool_call>\n{"name": <function name>, "arguments": <arguments object>}\n</tool_call>' -}}
{{- '<|im_end|>\n' -}}
{%- elif sys_text -%}
{{- '<|im_start|>system\n' + sys_text + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}
{%- if message.content -%}{{- message.content -}}{%- endif -%}
{%- if message.tool_calls -%}
{%- for call in message.tool_calls -%}
{%- set fn = call.function if call.function is defined else call -%}
{%- if message.content or not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n{"name": "' + fn.name + '", "arguments": ' -}}
{%- if fn.arguments is string -%}{{- fn.arguments -}}
{%- else -%}{{- fn.arguments | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- elif message.role == 'tool' -%}
{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + message.content + '\n</tool_response>' -}}
{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- if messages and messages[-1].role == 'tool' -%}{{- '\n' -}}{%- endif -%}
{%- endif -%}
""".strip()


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE text)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1),
                 *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_TO_UNICODE = _byte_to_unicode()
NEWLINE = BYTE_TO_UNICODE[ord("\n")]
DOUBLE_NEWLINE = NEWLINE * 2


def byte_level(text: str) -> str:
    """The byte-level BPE spelling of ``text`` (how a normal token stores it)."""
    return "".join(BYTE_TO_UNICODE[b] for b in text.encode("utf-8"))


def tool_call_text(name: str = TOOL_NAME, arguments: Mapping[str, Any] | None = None) -> str:
    """The exact text the model emits for a tool call (what a text parser receives)."""
    args = TOOL_ARGUMENTS if arguments is None else arguments
    return (f"{TOOL_CALL_OPEN}\n" + json.dumps({"name": name, "arguments": dict(args)})
            + f"\n{TOOL_CALL_CLOSE}")


def _tool_call_pieces(name: str, arguments: Mapping[str, Any]) -> list[str]:
    """The call's JSON body in several pieces, so a stream carries several deltas."""
    return [
        "\n" + '{"name": ' + json.dumps(name) + ", ",
        '"arguments": ',
        json.dumps(dict(arguments)),
        "}\n",
    ]


def _answer_pieces(answer: str) -> list[str]:
    """The answer split into words (each with its leading space)."""
    pieces = re.findall(r"\s*\S+|\s+$", answer)
    return pieces or [answer]


@dataclass
class Vocabulary:
    """Token texts and types, plus the successor of each token."""

    tokens: list[str] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    successor: dict[int, int] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, text: str, kind: TokenType) -> int:
        """Add a token (or return the existing one with this text); return its id."""
        if text in self.index:
            return self.index[text]
        self.index[text] = len(self.tokens)
        self.tokens.append(text)
        self.types.append(int(kind))
        return self.index[text]

    def chain(self, start: int, pieces: Sequence[str], end: int) -> None:
        """Make generation from ``start`` walk through ``pieces`` and then ``end``."""
        current = start
        for piece in _unique_pieces(self, pieces):
            nxt = self.add(byte_level(piece), TokenType.NORMAL)
            self._link(current, nxt)
            current = nxt
        self._link(current, end)

    def link(self, token: int, nxt: int) -> None:
        """Make ``nxt`` the successor of ``token``."""
        self._link(token, nxt)

    def _link(self, token: int, nxt: int) -> None:
        """Set one successor; a token with two different successors is a script bug."""
        if self.successor.get(token, nxt) != nxt:
            raise ValueError(f"token {self.tokens[token]!r} already continues another script")
        self.successor[token] = nxt


def _unique_pieces(vocab: Vocabulary, pieces: Sequence[str]) -> list[str]:
    """Glue a piece onto the one before when its text is already a token of the vocab."""
    glued: list[str] = []
    for piece in pieces:
        if glued and (byte_level(piece) in vocab.index or piece in glued):
            glued[-1] += piece
        else:
            glued.append(piece)
    return glued


@dataclass(frozen=True)
class ScriptedVocab:
    """The built vocabulary and the ids the tests and the model need."""

    vocab: Vocabulary
    merges: list[str]
    bos: int
    eos: int
    start_after_user: int
    start_after_tool: int


def build_vocab(tool_name: str = TOOL_NAME, arguments: Mapping[str, Any] | None = None,
                answer: str = ANSWER) -> ScriptedVocab:
    """The scripted vocabulary: bytes, the merge, control tokens, tags and script pieces."""
    vocab = Vocabulary()
    for b in range(256):
        vocab.add(BYTE_TO_UNICODE[b], TokenType.NORMAL)
    double_newline = vocab.add(DOUBLE_NEWLINE, TokenType.NORMAL)
    bos = vocab.add(BOS, TokenType.CONTROL)
    vocab.add(IM_START, TokenType.CONTROL)
    eos = vocab.add(IM_END, TokenType.CONTROL)
    open_tag = vocab.add(TOOL_CALL_OPEN, TokenType.USER_DEFINED)
    close_tag = vocab.add(TOOL_CALL_CLOSE, TokenType.USER_DEFINED)
    newline = vocab.index[NEWLINE]

    args = TOOL_ARGUMENTS if arguments is None else arguments
    vocab.link(newline, open_tag)
    vocab.chain(open_tag, _tool_call_pieces(tool_name, args), close_tag)
    vocab.link(close_tag, eos)
    vocab.chain(double_newline, _answer_pieces(answer), eos)
    return ScriptedVocab(vocab=vocab, merges=[f"{NEWLINE} {NEWLINE}"], bos=bos, eos=eos,
                         start_after_user=newline, start_after_tool=double_newline)


def successor_map(scripted: ScriptedVocab) -> list[int]:
    """The successor of every token id; tokens outside a script end the turn."""
    return [scripted.vocab.successor.get(t, scripted.eos)
            for t in range(len(scripted.vocab.tokens))]


def _round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``."""
    return -(-value // multiple) * multiple


def _add_metadata(writer: GGUFWriter, scripted: ScriptedVocab, *, name: str, n_embd: int,
                  n_layers: int, n_ff: int, n_head: int, n_head_kv: int, head_dim: int,
                  context_length: int, n_expert: int = 0, n_expert_used: int = 0,
                  file_type: LlamaFileType = LlamaFileType.MOSTLY_F16) -> None:
    """Write the llama hyperparameters, the tokenizer and the chat template.

    With ``n_expert`` > 0 the feed-forward is a mixture of experts (Mixtral style):
    ``n_ff`` is then each expert's width, which is what llama.cpp's ``llama``
    architecture reads ``feed_forward_length`` as when ``expert_count`` is set.
    """
    vocab = scripted.vocab
    writer.add_name(name)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    if n_expert:
        writer.add_expert_count(n_expert)
        writer.add_expert_used_count(n_expert_used)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(len(vocab.tokens))
    writer.add_file_type(int(file_type))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(scripted.merges)
    writer.add_bos_token_id(scripted.bos)
    writer.add_eos_token_id(scripted.eos)
    writer.add_pad_token_id(scripted.bos)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def write_scripted_model(path: str | Path, *, tool_name: str = TOOL_NAME,
                         arguments: Mapping[str, Any] | None = None, answer: str = ANSWER,
                         context_length: int = 4096) -> Path:
    """Write the scripted model (tool call after a user turn, ``answer`` after a tool result)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted = build_vocab(tool_name, arguments, answer)
    n_vocab = len(scripted.vocab.tokens)
    n_embd = _round_up(n_vocab, 64)
    # One narrow head and a narrow feed-forward: their weights are zero anyway, and
    # this keeps the file small.
    head_dim, n_head, n_ff = 64, 1, 64

    embeddings = np.zeros((n_vocab, n_embd), dtype=np.float16)
    embeddings[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float16)
    output[successor_map(scripted), np.arange(n_vocab)] = SUCCESSOR_WEIGHT

    writer = GGUFWriter(str(out), ARCH)
    _add_metadata(writer, scripted, name="pedrollm scripted tiny model", n_embd=n_embd,
                  n_layers=1, n_ff=n_ff, n_head=n_head, n_head_kv=n_head,
                  head_dim=head_dim, context_length=context_length)
    writer.add_tensor("token_embd.weight", embeddings)
    for name, shape in _block_shapes(0, n_embd, n_ff, n_head, n_head, head_dim).items():
        if name.endswith("norm.weight"):
            writer.add_tensor(name, np.ones(shape, dtype=np.float32))
        else:
            writer.add_tensor(name, np.zeros(shape, dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    _finish(writer)
    return out


def _block_shapes(layer: int, n_embd: int, n_ff: int, n_head: int, n_head_kv: int,
                  head_dim: int, n_expert: int = 0) -> dict[str, tuple[int, ...]]:
    """Tensor names and numpy shapes (rows = ggml's second dimension) of one block.

    With ``n_expert`` > 0 the feed-forward is llama.cpp's ``llama`` mixture of experts:
    a router ``ffn_gate_inp`` (ggml ``{n_embd, n_expert}``) and the experts stacked in
    3-D tensors ``ffn_{gate,up}_exps`` (ggml ``{n_embd, n_ff, n_expert}``) and
    ``ffn_down_exps`` (ggml ``{n_ff, n_embd, n_expert}``); numpy shapes are reversed.
    """
    prefix = f"blk.{layer}."
    shapes = {
        prefix + "attn_norm.weight": (n_embd,),
        prefix + "attn_q.weight": (n_head * head_dim, n_embd),
        prefix + "attn_k.weight": (n_head_kv * head_dim, n_embd),
        prefix + "attn_v.weight": (n_head_kv * head_dim, n_embd),
        prefix + "attn_output.weight": (n_embd, n_head * head_dim),
        prefix + "ffn_norm.weight": (n_embd,),
    }
    if n_expert:
        shapes.update({
            prefix + "ffn_gate_inp.weight": (n_expert, n_embd),
            prefix + "ffn_gate_exps.weight": (n_expert, n_ff, n_embd),
            prefix + "ffn_up_exps.weight": (n_expert, n_ff, n_embd),
            prefix + "ffn_down_exps.weight": (n_expert, n_embd, n_ff),
        })
    else:
        shapes.update({
            prefix + "ffn_gate.weight": (n_ff, n_embd),
            prefix + "ffn_up.weight": (n_ff, n_embd),
            prefix + "ffn_down.weight": (n_embd, n_ff),
        })
    return shapes


def _is_f32(name: str) -> bool:
    """Whether a tensor is stored as F32: the norms, and the MoE router (as converters do)."""
    return name.endswith("norm.weight") or name.endswith("ffn_gate_inp.weight")


def _finish(writer: GGUFWriter) -> None:
    """Write header, metadata and tensors, then close the file."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# Widths for the benchmark models (feed-forward = 2.75 x width, 64-wide heads, 4 query
# heads per KV head, as in common small models); the widest that still gets a few
# layers into the requested size, and lands within 5 % of it, is used. A mixture-of-
# experts model uses the same attention and narrower experts (half the width, as in
# fine-grained mixtures such as OLMoE), so most of its file is experts and each
# token runs through only ``experts_used`` of them.
RANDOM_WIDTHS = (256, 512, 1024, 2048)
RANDOM_HEAD_DIM = 64
RANDOM_MIN_LAYERS = 4


def _random_shape(target_bytes: float, n_vocab: int, n_expert: int = 0,
                  weight_type: str = "F16") -> tuple[int, int, int]:
    """(width, feed-forward or expert width, layers) for a random model of ``target_bytes``."""
    best: tuple[float, int, int] | None = None
    for width in RANDOM_WIDTHS:
        fixed = 2 * _matrix_bytes(n_vocab * width, weight_type) + width * 4
        per_layer = _layer_bytes(width, n_expert, weight_type)
        layers = max(1, round((target_bytes - fixed) / per_layer))
        error = abs(fixed + layers * per_layer - target_bytes) / target_bytes
        if layers < RANDOM_MIN_LAYERS and best is not None:
            continue
        # The widest shape within 5 % of the target wins; otherwise the closest one.
        if best is None or error <= 0.05 or error < best[0]:
            best = (error, width, layers)
    assert best is not None
    _, width, layers = best
    return width, _ff_width(width, n_expert), layers


def _ff_width(width: int, n_expert: int = 0) -> int:
    """The feed-forward width (or, with experts, each expert's width) for ``width``."""
    if n_expert:
        return _round_up(width // 2, 64)
    return _round_up(width * 11 // 4, 64)


# The matrix types a random model can be written in: gguf's own quantizer writes the
# two block types, as ``llama-quantize --pure`` would (every matrix in that type; the
# norms and the MoE router stay F32, which llama-quantize never quantizes either).
WeightType = Literal["F16", "Q8_0", "Q4_0"]
WEIGHT_TYPES: dict[str, tuple[GGMLQuantizationType, LlamaFileType]] = {
    "F16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "Q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
}


def _matrix_bytes(n_values: int, weight_type: str) -> int:
    """Bytes of ``n_values`` weights stored as ``weight_type`` (a whole number of blocks)."""
    from gguf.constants import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[WEIGHT_TYPES[weight_type][0]]
    return n_values // block * size


def _tensor_bytes(name: str, shape: tuple[int, ...], weight_type: str = "F16") -> int:
    """Bytes of one tensor of a random model: F32 norms and router, other matrices typed."""
    n_values = int(np.prod(shape))
    return n_values * 4 if _is_f32(name) else _matrix_bytes(n_values, weight_type)


def _layer_bytes(width: int, n_expert: int = 0, weight_type: str = "F16") -> int:
    """Bytes of one block of a random model."""
    shapes = _block_shapes(0, width, _ff_width(width, n_expert), width // RANDOM_HEAD_DIM,
                           max(1, width // RANDOM_HEAD_DIM // 4), RANDOM_HEAD_DIM, n_expert)
    return sum(_tensor_bytes(name, shape, weight_type) for name, shape in shapes.items())


def random_model_shape(target_mb: float, *, experts: int = 0, weight_type: WeightType = "F16"
                       ) -> tuple[int, int, int]:
    """(width, feed-forward or expert width, blocks) ``write_random_model`` uses for these."""
    n_vocab = len(build_vocab().vocab.tokens)
    return _random_shape(target_mb * 1e6, n_vocab, experts, weight_type)


def write_random_model(path: str | Path, target_mb: float, *, seed: int = 0,
                       context_length: int = 4096, experts: int = 0,
                       experts_used: int = 2, weight_type: WeightType = "F16") -> Path:
    """Write a random-weight llama GGUF of about ``target_mb`` MB, for speed benchmarks.

    ``experts`` > 0 makes it a mixture-of-experts model (Mixtral-style ``llama``
    architecture: ``llama.expert_count`` experts per block, ``llama.expert_used_count``
    = ``experts_used`` of them run per token), so a token's compute reads only a small
    part of the file while loading maps all of it. ``experts`` = 0 (the default) writes
    the dense model, unchanged.

    ``weight_type`` "Q8_0" or "Q4_0" stores every matrix in that block type (gguf's
    quantizer, applied to the same F16 random draws), so the same file size holds about
    2x or 3.5x the weights of F16; norms and the router stay F32.
    """
    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"weight_type must be one of {sorted(WEIGHT_TYPES)}, not {weight_type}")
    if experts < 0 or experts == 1:
        raise ValueError(f"experts must be 0 (dense) or at least 2, not {experts}")
    if experts and not 1 <= experts_used <= experts:
        raise ValueError(f"experts_used must be 1..{experts}, not {experts_used}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted = build_vocab()
    n_vocab = len(scripted.vocab.tokens)
    n_embd, n_ff, n_layers = random_model_shape(target_mb, experts=experts,
                                                weight_type=weight_type)
    ggml_type, file_type = WEIGHT_TYPES[weight_type]
    head_dim = RANDOM_HEAD_DIM
    n_head = n_embd // head_dim
    n_head_kv = max(1, n_head // 4)

    rng = np.random.default_rng(seed)

    def weights(shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.float16]]:
        """Random F16 weights with a small spread, as in a freshly initialised model."""
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def add_matrix(name: str, shape: tuple[int, ...]) -> None:
        """Add random weights in ``weight_type``."""
        values = weights(shape)
        if ggml_type == GGMLQuantizationType.F16:
            writer.add_tensor(name, values)
        else:
            writer.add_tensor(name, quantize(values.astype(np.float32), ggml_type),
                              raw_dtype=ggml_type)

    kind = f"MoE model ({experts} experts, {experts_used} used)" if experts else "model"
    typed = "" if weight_type == "F16" else f" {weight_type}"
    writer = GGUFWriter(str(out), ARCH)
    _add_metadata(writer, scripted, name=f"pedrollm random {target_mb:g} MB{typed} {kind}",
                  n_embd=n_embd, n_layers=n_layers, n_ff=n_ff, n_head=n_head,
                  n_head_kv=n_head_kv, head_dim=head_dim, context_length=context_length,
                  n_expert=experts, n_expert_used=experts_used if experts else 0,
                  file_type=file_type)
    add_matrix("token_embd.weight", (n_vocab, n_embd))
    for layer in range(n_layers):
        for name, shape in _block_shapes(layer, n_embd, n_ff, n_head, n_head_kv,
                                         head_dim, experts).items():
            if name.endswith("norm.weight"):
                writer.add_tensor(name, np.ones(shape, dtype=np.float32))
            elif _is_f32(name):
                writer.add_tensor(name, weights(shape).astype(np.float32))
            else:
                add_matrix(name, shape)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    add_matrix("output.weight", (n_vocab, n_embd))
    _finish(writer)
    return out


def weights_read_per_token(path: str | Path) -> int:
    """Bytes of weights one generated token multiplies by, for a ``llama`` GGUF.

    Every matrix counts whole except the token embeddings (one row is looked up) and
    the stacked experts, of which only ``expert_used_count`` of ``expert_count`` run.
    Loading maps the whole file; this is what a token's compute reads from it.
    """
    reader = GGUFReader(path)

    def field(key: str) -> int:
        return int(reader.fields[key].contents()) if key in reader.fields else 0

    arch = str(reader.fields["general.architecture"].contents())
    n_expert = field(f"{arch}.expert_count")
    n_used = field(f"{arch}.expert_used_count")
    names = {t.name for t in reader.tensors}
    total = 0
    for tensor in reader.tensors:
        size = int(tensor.n_bytes)
        if tensor.name == "token_embd.weight" and "output.weight" in names:
            continue
        if tensor.name.endswith("_exps.weight") and n_expert:
            size = size * n_used // n_expert
        total += size
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the scripted model (or a random one) to the given path."""
    parser = argparse.ArgumentParser(prog="python -m contracts.servers.scripted_model",
                                     description="Write the scripted tiny GGUF model.")
    parser.add_argument("out", type=Path, help="where to write the .gguf file")
    parser.add_argument("--random-mb", type=float, metavar="MB",
                        help="write a random-weight model of about MB megabytes instead")
    parser.add_argument("--experts", type=int, default=0, metavar="N",
                        help="with --random-mb: a mixture of N experts per block (0: dense)")
    parser.add_argument("--experts-used", type=int, default=2, metavar="K",
                        help="with --experts: experts run per token")
    parser.add_argument("--weight-type", choices=sorted(WEIGHT_TYPES), default="F16",
                        help="with --random-mb: how the weight matrices are stored")
    parser.add_argument("--answer", default=ANSWER, help="the reply after a tool result")
    args = parser.parse_args(argv)
    if args.random_mb:
        path = write_random_model(args.out, args.random_mb, experts=args.experts,
                                  experts_used=args.experts_used,
                                  weight_type=args.weight_type)
    else:
        path = write_scripted_model(args.out, answer=args.answer)
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
