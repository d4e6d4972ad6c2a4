"""The random-weight benchmark models: mixture-of-experts and quantized variants.

Each test reads the written GGUF back with gguf's reader and checks what llama.cpp's
``llama`` loader will look for: the expert metadata, the router and the stacked expert
tensors in the shapes it creates them with (ggml order, ``tensor.shape``), the weight
types, and the file size the caller asked for. The dense model must stay as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, LlamaFileType
from gguf.quants import dequantize

from contracts.servers.scripted_model import (
    WeightType,
    random_model_shape,
    weights_read_per_token,
    write_random_model,
)

EXPERTS, USED = 16, 2


class Gguf:
    """A GGUF read back: metadata by key, tensors by name."""

    def __init__(self, path: Path) -> None:
        """Read the file."""
        self.path = path
        self.reader = GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}

    def field(self, key: str) -> Any:
        """A metadata value."""
        return self.reader.fields[key].contents()

    def shape(self, name: str) -> list[int]:
        """A tensor's shape in ggml order (ne0 first), as llama.cpp's loader checks it."""
        return [int(n) for n in self.tensors[name].shape]

    def values(self, name: str) -> np.ndarray[Any, Any]:
        """A tensor's values as float32, dequantized where stored in blocks."""
        tensor = self.tensors[name]
        return np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)


@pytest.fixture(scope="module")
def moe(tmp_path_factory: pytest.TempPathFactory) -> Gguf:
    """A small F16 mixture of experts."""
    path = tmp_path_factory.mktemp("moe") / "moe.gguf"
    return Gguf(write_random_model(path, 8, experts=EXPERTS, experts_used=USED))


@pytest.fixture(scope="module")
def moe_q4(tmp_path_factory: pytest.TempPathFactory) -> Gguf:
    """A small Q4_0 mixture of experts."""
    path = tmp_path_factory.mktemp("moe") / "moe-q4_0.gguf"
    return Gguf(write_random_model(path, 4, experts=EXPERTS, experts_used=USED,
                                   weight_type="Q4_0"))


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> Gguf:
    """A small dense model, the default."""
    return Gguf(write_random_model(tmp_path_factory.mktemp("dense") / "d.gguf", 6))


def test_moe_metadata_names_the_experts(moe: Gguf) -> None:
    assert moe.field("general.architecture") == "llama"
    assert moe.field("llama.expert_count") == EXPERTS
    assert moe.field("llama.expert_used_count") == USED
    assert moe.field("general.file_type") == LlamaFileType.MOSTLY_F16


def test_moe_blocks_have_a_router_and_stacked_experts_in_llama_cpp_shapes(moe: Gguf) -> None:
    n_embd = moe.field("llama.embedding_length")
    n_ff = moe.field("llama.feed_forward_length")  # each expert's width
    for layer in range(moe.field("llama.block_count")):
        blk = f"blk.{layer}."
        assert moe.shape(blk + "ffn_gate_inp.weight") == [n_embd, EXPERTS]
        assert moe.shape(blk + "ffn_gate_exps.weight") == [n_embd, n_ff, EXPERTS]
        assert moe.shape(blk + "ffn_up_exps.weight") == [n_embd, n_ff, EXPERTS]
        assert moe.shape(blk + "ffn_down_exps.weight") == [n_ff, n_embd, EXPERTS]
        for dense_name in ("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"):
            assert blk + dense_name not in moe.tensors


def test_moe_experts_are_narrower_than_the_width(moe: Gguf) -> None:
    assert moe.field("llama.feed_forward_length") < moe.field("llama.embedding_length")


def test_moe_router_is_f32_and_experts_f16(moe: Gguf) -> None:
    types = {name.split(".", 2)[2]: t.tensor_type for name, t in moe.tensors.items()
             if name.startswith("blk.0.ffn_")}
    assert types["ffn_gate_inp.weight"] == GGMLQuantizationType.F32
    assert types["ffn_gate_exps.weight"] == GGMLQuantizationType.F16
    assert types["ffn_down_exps.weight"] == GGMLQuantizationType.F16


def test_moe_experts_hold_distinct_random_weights(moe: Gguf) -> None:
    experts = moe.values("blk.0.ffn_up_exps.weight")
    assert experts.shape[0] == EXPERTS
    assert 0.01 < experts.std() < 0.03
    assert not np.array_equal(experts[0], experts[1])
    assert moe.values("blk.0.ffn_gate_inp.weight").std() > 0


def test_moe_file_is_about_the_requested_size(moe: Gguf, moe_q4: Gguf) -> None:
    assert moe.path.stat().st_size == pytest.approx(8e6, rel=0.2)
    assert moe_q4.path.stat().st_size == pytest.approx(4e6, rel=0.2)


def test_a_token_reads_the_router_and_only_the_used_experts(moe: Gguf) -> None:
    experts = sum(int(t.n_bytes) for n, t in moe.tensors.items() if n.endswith("_exps.weight"))
    rest = sum(int(t.n_bytes) for n, t in moe.tensors.items()
               if not n.endswith("_exps.weight") and n != "token_embd.weight")
    assert weights_read_per_token(moe.path) == rest + experts * USED // EXPERTS
    assert weights_read_per_token(moe.path) < moe.path.stat().st_size / 4


def test_q4_0_stores_every_matrix_in_blocks_and_keeps_norms_and_router_f32(
        moe_q4: Gguf) -> None:
    assert moe_q4.field("general.file_type") == LlamaFileType.MOSTLY_Q4_0
    for name, tensor in moe_q4.tensors.items():
        f32 = name.endswith("norm.weight") or name.endswith("ffn_gate_inp.weight")
        expected = GGMLQuantizationType.F32 if f32 else GGMLQuantizationType.Q4_0
        assert tensor.tensor_type == expected, name


def test_q4_0_holds_more_weights_than_f16_in_the_same_size(moe_q4: Gguf, tmp_path: Path
                                                           ) -> None:
    f16 = Gguf(write_random_model(tmp_path / "f16.gguf", 4, experts=EXPERTS,
                                  experts_used=USED))

    def weights(g: Gguf) -> int:
        return sum(int(t.n_elements) for t in g.tensors.values())

    assert weights(moe_q4) > 3 * weights(f16)
    assert moe_q4.shape("blk.0.ffn_down_exps.weight")[2] == EXPERTS
    assert 0.01 < moe_q4.values("blk.0.ffn_up_exps.weight").std() < 0.03


def test_dense_model_has_no_experts(dense: Gguf) -> None:
    assert "llama.expert_count" not in dense.reader.fields
    assert not any("exps" in name or "gate_inp" in name for name in dense.tensors)
    assert weights_read_per_token(dense.path) == sum(
        int(t.n_bytes) for n, t in dense.tensors.items() if n != "token_embd.weight")


def test_the_announced_shape_is_the_written_one(moe: Gguf, moe_q4: Gguf, dense: Gguf) -> None:
    cases: list[tuple[Gguf, float, int, WeightType]] = [
        (moe, 8, EXPERTS, "F16"), (moe_q4, 4, EXPERTS, "Q4_0"), (dense, 6, 0, "F16")]
    for model, size, experts, kind in cases:
        written = (model.field("llama.embedding_length"),
                   model.field("llama.feed_forward_length"), model.field("llama.block_count"))
        assert written == random_model_shape(size, experts=experts, weight_type=kind)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"experts": 1}, "experts must be"),
    ({"experts": 8, "experts_used": 9}, "experts_used must be"),
    ({"experts": 8, "experts_used": 0}, "experts_used must be"),
    ({"weight_type": "Q5_K"}, "weight_type must be"),
])
def test_bad_shapes_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_random_model(tmp_path / "bad.gguf", 1, **kwargs)
    assert not (tmp_path / "bad.gguf").exists()
