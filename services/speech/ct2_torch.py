"""Read a CTranslate2 Whisper ``model.bin`` into an openai-whisper PyTorch model.

The embedded weights ship only in CTranslate2 form; this lets the openai-whisper engine run on
exactly the same weights (float16 values widened to float32), so the two engines can be compared
on one model, offline. CTranslate2 stores the attention projections fused (q|k|v for self
attention, k|v for cross attention, with a zero key bias that Whisper does not have); they are
split back here.

Binary layout written by ``ctranslate2.specs.model_spec.ModelSpec._serialize`` (version 6):
u32 version, str spec name, u32 revision, u32 n_variables, then per variable: str name,
u8 rank, u32 dims[rank], u8 dtype id, u32 n_bytes, raw bytes; then u32 n_aliases and
(str alias, str target) pairs. ``str`` is a u16 length (including a NUL) + bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from whisper.model import ModelDimensions, Whisper

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_VERSIONS = (5, 6)


class ConversionError(ValueError):
    """A model.bin that is not a CTranslate2 Whisper model this module can read."""


def _read(fmt: str, handle: BinaryIO) -> int:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ConversionError("model.bin ends early")
    return struct.unpack("<" + fmt, data)[0]


def _read_str(handle: BinaryIO) -> str:
    length = _read("H", handle)
    return handle.read(length)[:-1].decode("utf-8")


def read_ct2(model_bin: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 model file, aliases resolved, float16 kept as is."""
    variables: dict[str, np.ndarray] = {}
    with model_bin.open("rb") as handle:
        version = _read("I", handle)
        if version not in _SUPPORTED_VERSIONS:
            raise ConversionError(f"{model_bin}: CTranslate2 binary version {version} is not supported")
        spec = _read_str(handle)
        if spec != "WhisperSpec":
            raise ConversionError(f"{model_bin} holds a {spec}, not a Whisper model")
        _read("I", handle)  # spec revision
        for _ in range(_read("I", handle)):
            name = _read_str(handle)
            shape = [_read("I", handle) for _ in range(_read("B", handle))]
            dtype_id = _read("B", handle)
            n_bytes = _read("I", handle)
            raw = handle.read(n_bytes)
            if dtype_id >= len(_DTYPES) or _DTYPES[dtype_id] == "bfloat16":
                raise ConversionError(f"{model_bin}: variable {name} has an unsupported dtype id {dtype_id}")
            if _DTYPES[dtype_id] == "int8" and len(shape) == 2:
                raise ConversionError(f"{model_bin} is int8-quantised; convert it from a float model instead")
            variables[name] = np.frombuffer(raw, dtype=_DTYPES[dtype_id]).reshape(shape)
        for _ in range(_read("I", handle)):
            alias, target = _read_str(handle), _read_str(handle)
            variables[alias] = variables[target]
    return variables


class _StateDict:
    def __init__(self, ct2: dict[str, np.ndarray]) -> None:
        self.ct2 = ct2
        self.out: dict[str, torch.Tensor] = {}

    def tensor(self, name: str) -> torch.Tensor:
        return torch.from_numpy(self.ct2[name].astype(np.float32))

    def layer_norm(self, dst: str, src: str) -> None:
        self.out[f"{dst}.weight"] = self.tensor(f"{src}/gamma")
        self.out[f"{dst}.bias"] = self.tensor(f"{src}/beta")

    def linear(self, dst: str, src: str) -> None:
        self.out[f"{dst}.weight"] = self.tensor(f"{src}/weight")
        self.out[f"{dst}.bias"] = self.tensor(f"{src}/bias")

    def fused(self, dsts: list[str], src: str) -> None:
        weights = torch.chunk(self.tensor(f"{src}/weight"), len(dsts))
        biases = torch.chunk(self.tensor(f"{src}/bias"), len(dsts))
        for dst, weight, bias in zip(dsts, weights, biases, strict=True):
            self.out[f"{dst}.weight"] = weight.contiguous()
            if dst.endswith(".key"):
                continue  # Whisper's key projection has no bias; CTranslate2 stores zeros
            self.out[f"{dst}.bias"] = bias.contiguous()

    def attention(self, dst: str, src: str, *, cross: bool) -> None:
        self.layer_norm(f"{dst}_ln", f"{src}/layer_norm")
        if cross:
            self.linear(f"{dst}.query", f"{src}/linear_0")
            self.fused([f"{dst}.key", f"{dst}.value"], f"{src}/linear_1")
            self.linear(f"{dst}.out", f"{src}/linear_2")
        else:
            self.fused([f"{dst}.query", f"{dst}.key", f"{dst}.value"], f"{src}/linear_0")
            self.linear(f"{dst}.out", f"{src}/linear_1")

    def mlp(self, dst: str, src: str) -> None:
        self.layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        self.linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        self.linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")


def _count_layers(ct2: dict[str, np.ndarray], stack: str) -> int:
    prefix, suffix = f"{stack}/layer_", "/ffn/linear_0/weight"
    return sum(1 for name in ct2 if name.startswith(prefix) and name.endswith(suffix))


def convert(ct2: dict[str, np.ndarray]) -> tuple[ModelDimensions, dict[str, torch.Tensor]]:
    """openai-whisper dimensions and state dict for CTranslate2 Whisper variables."""
    try:
        n_enc, n_dec = _count_layers(ct2, "encoder"), _count_layers(ct2, "decoder")
        conv1 = ct2["encoder/conv1/weight"]
        embeddings = ct2["decoder/embeddings/weight"]
        dims = ModelDimensions(
            n_mels=conv1.shape[1],
            n_audio_ctx=ct2["encoder/position_encodings/encodings"].shape[0],
            n_audio_state=conv1.shape[0],
            n_audio_head=int(ct2["encoder/num_heads"]),
            n_audio_layer=n_enc,
            n_vocab=embeddings.shape[0],
            n_text_ctx=ct2["decoder/position_encodings/encodings"].shape[0],
            n_text_state=embeddings.shape[1],
            n_text_head=int(ct2["decoder/num_heads"]),
            n_text_layer=n_dec,
        )
        state = _StateDict(ct2)
        state.linear("encoder.conv1", "encoder/conv1")
        state.linear("encoder.conv2", "encoder/conv2")
        state.out["encoder.positional_embedding"] = state.tensor("encoder/position_encodings/encodings")
        for i in range(n_enc):
            state.attention(f"encoder.blocks.{i}.attn", f"encoder/layer_{i}/self_attention", cross=False)
            state.mlp(f"encoder.blocks.{i}", f"encoder/layer_{i}")
        state.layer_norm("encoder.ln_post", "encoder/layer_norm")
        state.out["decoder.token_embedding.weight"] = state.tensor("decoder/embeddings/weight")
        state.out["decoder.positional_embedding"] = state.tensor("decoder/position_encodings/encodings")
        for i in range(n_dec):
            state.attention(f"decoder.blocks.{i}.attn", f"decoder/layer_{i}/self_attention", cross=False)
            state.attention(f"decoder.blocks.{i}.cross_attn", f"decoder/layer_{i}/attention", cross=True)
            state.mlp(f"decoder.blocks.{i}", f"decoder/layer_{i}")
        state.layer_norm("decoder.ln", "decoder/layer_norm")
    except KeyError as exc:
        raise ConversionError(f"CTranslate2 Whisper variable {exc} is missing") from exc
    return dims, state.out


def load_ct2_as_whisper(directory: Path) -> Whisper:
    """An openai-whisper model (float32, CPU) with the weights of a CTranslate2 directory."""
    dims, state_dict = convert(read_ct2(directory / "model.bin"))
    model = Whisper(dims)
    model.load_state_dict(state_dict)
    config_path = directory / "config.json"
    heads = json.loads(config_path.read_text()).get("alignment_heads") if config_path.is_file() else None
    if heads:
        # Word-level timing uses these cross-attention heads; the default (last half) is worse.
        mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model


def save_checkpoint(model: Whisper, path: Path) -> None:
    """Write ``model`` as a standard openai-whisper checkpoint (loadable by whisper.load_model)."""
    torch.save({"dims": model.dims.__dict__, "model_state_dict": model.state_dict()}, path)
