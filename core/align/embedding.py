"""Embedding word aligner in the manner of SimAlign (Jalili Sabet et al. 2020), batched.

It reproduces ``simalign.SentenceAligner(model, token_type="bpe", layer=L)`` step by step:

* subwords of a word are ``tokenizer.tokenize(word)``; the sentence is encoded with
  ``tokenizer(words, is_split_into_words=True, truncation=True)`` and the vectors are
  ``hidden_states[L]`` (index 0 is the embedding output, so layer 8 is the output of the
  8th transformer block) at positions ``1 .. n`` (the special first token dropped, ``n`` =
  number of subwords of the word-by-word tokenization);
* similarity = ``(cosine + 1) / 2`` between source and target subword vectors (then the
  optional distortion penalty, 0 by default);
* ``argmax`` ("inter"): forward argmax AND backward argmax; ``itermax``: SimAlign's
  ``iter_max`` (alpha 0.9, max_count 2) ported verbatim; ``match`` ("mwmf"): maximum weight
  maximum cardinality bipartite matching, solved with ``scipy.optimize.linear_sum_assignment``
  (same optimum as networkx' blossom algorithm on this complete bipartite graph, far faster);
* with ``pooling="bpe"`` (SimAlign's default) subword links become word links (any aligned
  subword pair links its two words); ``pooling="mean"`` is SimAlign's ``token_type="word"``
  (word vector = mean of its subword vectors); ``pooling="first"`` uses the first subword.

What is different is only how it is computed: all source and target sentences of a batch
go through the encoder together, sorted by length, under ``torch.inference_mode``; the
forward pass stops after block ``L``; each word is tokenized once per call; similarities
are torch matrix products (numpy's BLAS would start its own threads beside torch's); one
forward serves every matching method. On a CPU the encoder's matrix products are nearly
all of the time, so for BERT-style encoders (BERT, XLM-R, e5, mBERT) the blocks run
*packed*: every linear layer, GELU and LayerNorm sees only the real tokens of the batch
(one tall matrix, no padding rows, Q/K/V in one product) and attention runs, unmasked, on
runs of sentences of equal length. Either shortcut is used only when it reproduces
``hidden_states[L]`` of the model's own forward on a probe batch; otherwise the plain
forward runs. Float results can differ in the last bits from a per-sentence run, so a
link can differ where two similarities tie.

Precision: ``float32`` gives simalign's links. ``bfloat16`` (the ``auto`` choice on CPUs
with native bf16 dot products) runs the encoder's products in bf16 with float32 residuals
and LayerNorm: 1.6-1.7x faster on such a CPU, and link agreement (Jaccard) with simalign is
0.992-0.996 (links move only where two similarities nearly tie); projection F1 is
unchanged (bench/RESULTS.md).

Link score: the similarity ``(cosine + 1) / 2`` of the word pair, in [0, 1] (for
``pooling="bpe"`` the highest among the aligned subword pairs of the two words).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from core.align.base import AlignError, check_pairs, links_from_scores
from core.data import Link
from core.encoder import PRECISIONS, compute_dtype, transformer_blocks

__all__ = [
    "SimAlignAligner",
    "METHODS",
    "POOLINGS",
    "iter_max",
    "argmax_inter",
    "max_weight_match",
    "apply_distortion",
    "load_model",
    "clear_similarity_cache",
]

# public name -> SimAlign's name for the same matching method
METHODS: dict[str, str] = {
    "argmax": "inter",
    "inter": "inter",
    "itermax": "itermax",
    "match": "mwmf",
    "mwmf": "mwmf",
    "fwd": "fwd",
    "rev": "rev",
}
POOLINGS = ("bpe", "mean", "first")


# ----------------------------------------------------------------------------------------
# Matching methods on one similarity matrix (numpy, as in SimAlign)


def argmax_inter(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward argmax, backward argmax and their intersection, as 0/1 matrices."""
    m, n = sim.shape
    fwd = np.zeros((m, n))
    fwd[np.arange(m), sim.argmax(axis=1)] = 1.0
    rev = np.zeros((m, n))
    rev[sim.argmax(axis=0), np.arange(n)] = 1.0
    return fwd, rev, fwd * rev


def iter_max(sim: np.ndarray, max_count: int = 2, alpha_ratio: float = 0.9) -> np.ndarray:
    """SimAlign's ``SentenceAligner.iter_max``, line for line (so the links are the same)."""
    m, n = sim.shape
    forward = np.eye(n)[sim.argmax(axis=1)]  # m x n
    backward = np.eye(m)[sim.argmax(axis=0)]  # n x m
    inter = forward * backward.transpose()
    if min(m, n) <= 2:
        return inter
    count = 1
    while count < max_count:
        mask_x = 1.0 - np.tile(inter.sum(1)[:, np.newaxis], (1, n)).clip(0.0, 1.0)
        mask_y = 1.0 - np.tile(inter.sum(0)[np.newaxis, :], (m, 1)).clip(0.0, 1.0)
        mask = ((alpha_ratio * mask_x) + (alpha_ratio * mask_y)).clip(0.0, 1.0)
        mask_zeros = 1.0 - ((1.0 - mask_x) * (1.0 - mask_y))
        if mask_x.sum() < 1.0 or mask_y.sum() < 1.0:
            mask *= 0.0
            mask_zeros *= 0.0
        new_sim = sim * mask
        fwd = np.eye(n)[new_sim.argmax(axis=1)] * mask_zeros
        bac = np.eye(m)[new_sim.argmax(axis=0)].transpose() * mask_zeros
        new_inter = fwd * bac
        if np.array_equal(inter + new_inter, inter):
            break
        inter = inter + new_inter
        count += 1
    return inter


def max_weight_match(sim: np.ndarray) -> np.ndarray:
    """Maximum weight matching of maximum cardinality (SimAlign "mwmf") as a 0/1 matrix."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(sim, maximize=True)
    out = np.zeros(sim.shape)
    out[rows, cols] = 1.0
    return out


def apply_distortion(sim: np.ndarray, ratio: float) -> np.ndarray:
    """SimAlign's position penalty: 1 - ratio * (relative position difference)^2."""
    m, n = sim.shape
    if m < 2 or n < 2 or ratio == 0.0:
        return sim
    pos_x = np.arange(n)[np.newaxis, :] / float(n - 1)
    pos_y = np.arange(m)[:, np.newaxis] / float(m - 1)
    return sim * (1.0 - ((pos_x - pos_y) ** 2) * ratio)


def _method_matrix(method: str, sim: np.ndarray, cache: dict, max_count: int, alpha: float) -> np.ndarray:
    if sim.size == 0:  # an empty sentence (or one whose words have no subwords) has no links
        return np.zeros(sim.shape)
    if method in ("fwd", "rev", "inter"):
        if "inter" not in cache:
            cache["fwd"], cache["rev"], cache["inter"] = argmax_inter(sim)
        return cache[method]
    if method == "itermax":
        return iter_max(sim, max_count=max_count, alpha_ratio=alpha)
    if method == "mwmf":
        return max_weight_match(sim)
    raise AlignError(f"unknown matching method {method!r}")


# ----------------------------------------------------------------------------------------
# Encoder loading (shared between aligners in one process)

def load_model(name: str | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, model) for an HF id or local path, through the project's one loader."""
    from core.encoder import load_encoder

    return load_encoder(name, device)


WORD_COUNT_CACHE = 500_000  # distinct words whose subword count an aligner keeps (~60 MB)

# Similarity matrices of recently aligned pairs (see SimAlignAligner.similarities); keys
# hold the model object, layer, pooling, distortion and both word tuples.
SIMILARITY_CACHE_PAIRS = 16384  # ~5 KB per Europarl-sized pair: ~80 MB at most
_SIMILARITY_CACHE: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]]" = OrderedDict()


def _remember(key: tuple, value: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _SIMILARITY_CACHE[key] = value
    _SIMILARITY_CACHE.move_to_end(key)
    while len(_SIMILARITY_CACHE) > SIMILARITY_CACHE_PAIRS:
        _SIMILARITY_CACHE.popitem(last=False)


def clear_similarity_cache() -> None:
    """Forget cached similarity matrices (benchmarks time the encoder, not the cache)."""
    _SIMILARITY_CACHE.clear()


class _StopForward(Exception):
    """Raised by a forward hook once the wanted layer is computed (skips the rest)."""


_BERT_BLOCK_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
)


def _has_bert_blocks(model: Any, blocks: Any) -> bool:
    """True when ``model`` is an encoder-only stack of BERT-style blocks that ``_PackedBert`` can run."""
    config = getattr(model, "config", None)
    if blocks is None or getattr(model, "embeddings", None) is None or getattr(config, "is_decoder", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    for block in blocks:
        for path in _BERT_BLOCK_PARTS:
            owner = block
            for name in path.split("."):
                owner = getattr(owner, name, None)
            if owner is None:
                return False
        if getattr(block.attention.self, "num_attention_heads", None) is None:
            return False
    return True


def _equal_length_runs(lengths: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(first token row, sentences, length)`` of each run of consecutive sentences with
    the same length, in a batch whose real tokens are packed sentence after sentence."""
    runs: list[tuple[int, int, int]] = []
    row = 0
    for n in lengths:
        if runs and runs[-1][2] == n:
            first, count, _ = runs[-1]
            runs[-1] = (first, count + 1, n)
        elif n:
            runs.append((row, 1, n))
        row += n
    return runs


def _attention_kernels():
    """Attention kernels for many small, differently shaped calls: any but cuDNN's, which
    builds an execution plan for every new shape (on an H200 the bf16 aligner ran 5x slower
    than float32 with it, which never uses cuDNN attention)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


# The packed token matrix is padded to a multiple of this many rows. Why: oneDNN keeps a
# kernel (with its reordered weights) per matrix shape, and one shape per batch made the
# aligner's memory grow with the corpus (+1 GB over 6,000 CoNLL pairs).
PACKED_ROWS_MULTIPLE = 64


class _PackedBert:
    """The first ``n_blocks`` BERT blocks with no padding anywhere.

    Why: on a CPU the linear layers are ~70% of the time and a length-sorted batch still
    carries 10-35% padding rows; here they multiply one (real tokens x hidden) matrix.
    Attention runs on runs of consecutive sentences of the same length (the batch is
    length-sorted, so a run is a contiguous slice of the packed tokens) with no mask:
    the masked kernel over a padded batch took ~40% longer on Europarl-sized shapes, the
    whole aligner 5.1 s against 4.5 s per 200 pairs. The model's own modules and weights
    are used (Q, K and V concatenated once).

    ``dtype=torch.bfloat16`` runs the products, attention and GELU in bfloat16 (weights
    cast once, fp32 accumulation inside the kernels) while residual sums and LayerNorm stay
    in float32: on a CPU with native bf16 dot products (AVX512-BF16, AMX) the products run
    ~2.2x faster (the aligner 1.6-1.7x); links then differ from the float32 ones where two
    similarities nearly tie (link Jaccard 0.992-0.996 on Europarl, bench/RESULTS.md)."""

    def __init__(self, model: Any, blocks: Any, n_blocks: int, dtype: Any = None) -> None:
        import torch

        self.model = model
        self.blocks = list(blocks)[:n_blocks]
        self.dtype = dtype if dtype is not None else torch.float32
        self.low = self.dtype != torch.float32

        def cast(t: Any) -> Any:
            return None if t is None else t.detach().to(self.dtype)

        self.weights = []
        for block in self.blocks:
            att = block.attention.self
            w_qkv = torch.cat([att.query.weight, att.key.weight, att.value.weight]).detach()
            biases = [att.query.bias, att.key.bias, att.value.bias]
            b_qkv = torch.cat([b.detach() for b in biases]) if all(b is not None for b in biases) else None
            out, up, down = block.attention.output.dense, block.intermediate.dense, block.output.dense
            self.weights.append(
                (cast(w_qkv), cast(b_qkv), cast(out.weight), out.bias, cast(up.weight), cast(up.bias), cast(down.weight), down.bias)
            )

    def _project_back(self, x: Any, weight: Any, bias: Any):
        """A product whose result joins the float32 residual stream (its bias added in float32)."""
        import torch.nn.functional as F

        if not self.low:
            return F.linear(x, weight, bias)
        y = F.linear(x, weight).float()
        return y + bias if bias is not None else y

    def __call__(self, inputs: Any, keep: Sequence[int] | None = None):
        """Hidden states after the last block, padded back to (batch, seq, hidden), float32.

        ``keep`` (block counts, e.g. (7, 8, 9)): the L2-normalised outputs of those blocks side
        by side instead (batch, seq, hidden x len(keep)), whose cosine is the mean of the
        layers' cosines."""
        import torch
        import torch.nn.functional as F

        mask = inputs["attention_mask"].bool()
        batch, seq = mask.shape
        extra = {"token_type_ids": inputs["token_type_ids"]} if "token_type_ids" in inputs else {}
        embedded = self.model.embeddings(input_ids=inputs["input_ids"], **extra)
        hidden = embedded.shape[-1]
        rows = mask.reshape(-1).nonzero().squeeze(1)
        x = embedded.reshape(-1, hidden).index_select(0, rows).float()  # real tokens, sentence after sentence
        runs = _equal_length_runs(mask.sum(dim=1).tolist())
        real, pad = len(x), -len(x) % PACKED_ROWS_MULTIPLE
        if pad:  # zero rows no attention run reads: the products see a few hundred shapes, not one per batch
            x = torch.cat([x, x.new_zeros(pad, hidden)])
        kept: list[Any] = []
        for depth, (block, (w_qkv, b_qkv, w_out, b_out, w_up, b_up, w_down, b_down)) in enumerate(zip(self.blocks, self.weights), 1):
            att = block.attention.self
            heads = att.num_attention_heads
            qkv = F.linear(x.to(self.dtype), w_qkv, b_qkv)
            parts = []
            for row, count, length in runs:
                q, k, v = qkv[row : row + count * length].view(count, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
                part = F.scaled_dot_product_attention(q, k, v, scale=getattr(att, "scaling", None))
                parts.append(part.transpose(1, 2).reshape(count * length, -1))
            if pad:
                parts.append(parts[0].new_zeros(pad, parts[0].shape[1]))
            ctx = torch.cat(parts) if len(parts) > 1 else parts[0]
            out = block.attention.output
            x = out.LayerNorm(self._project_back(ctx, w_out, b_out) + x)
            inner = block.intermediate.intermediate_act_fn(F.linear(x.to(self.dtype), w_up, b_up))
            x = block.output.LayerNorm(self._project_back(inner, w_down, b_down) + x)
            if keep is not None and depth in keep:
                kept.append(F.normalize(x[:real], dim=-1))
        if keep is not None:
            x = torch.cat(kept, dim=-1)
            hidden = x.shape[-1]
        return x.new_zeros(batch * seq, hidden).index_copy_(0, rows, x[:real]).view(batch, seq, hidden)


# ----------------------------------------------------------------------------------------
# The aligner


@dataclass
class _Encoded:
    """Subword vectors of one sentence and the word index of each subword (bpe mode)."""

    vectors: np.ndarray  # (subwords, dim) float32
    word_of: np.ndarray  # (subwords,) int


class SimAlignAligner:
    """SimAlign's embedding aligner, computed in batches. See the module docstring."""

    def __init__(
        self,
        method: str = "itermax",
        model: str | None = None,
        layer: int = 8,
        pooling: str = "bpe",
        batch_size: int = 32,
        device: str = "cpu",
        distortion: float = 0.0,
        max_count: int = 2,
        alpha: float = 0.9,
        chunk_pairs: int = 1024,
        progress: bool | None = None,
        precision: str | None = None,
        layers: Sequence[int] | None = None,
    ) -> None:
        """``layers`` (e.g. [7, 8, 9]): similarities averaged over these layers instead of
        ``layer`` alone (the cosine of their L2-normalised vectors side by side);
        ``batch_size``: sentences per forward pass; ``chunk_pairs``: pairs encoded at once
        (bounds memory); ``progress``: a tqdm bar (None: only for more than 500 pairs);
        ``precision``: ``float32`` (the links of simalign, bit for bit up to ties),
        ``bfloat16`` (products in bf16, see ``_PackedBert``), ``auto`` (bf16 on a CPU that
        multiplies bf16 natively, else float32) or None (``settings().align_precision``)."""
        if method not in METHODS:
            raise AlignError(f"simalign: unknown method {method!r}; choose one of {sorted(METHODS)}")
        if pooling not in POOLINGS:
            raise AlignError(f"simalign: unknown pooling {pooling!r}; choose one of {list(POOLINGS)}")
        if layer < 0:
            raise AlignError(f"simalign: layer must be >= 0, got {layer}")
        if layers is not None:
            try:
                layers = tuple(sorted({int(x) for x in layers}))
            except (TypeError, ValueError):
                raise AlignError(f"simalign: layers must be a list of layer numbers, got {layers!r}") from None
            if not layers or layers[0] < 1:
                raise AlignError(f"simalign: layers must be block numbers >= 1, got {list(layers)}")
            layer = layers[-1] if len(layers) > 1 else layers[0]
            layers = layers if len(layers) > 1 else None
        if batch_size < 1 or chunk_pairs < 1:
            raise AlignError("simalign: batch_size and chunk_pairs must be >= 1")
        where = "precision"
        if precision is None:
            from core.config import settings

            precision, where = settings().align_precision, "LABELBRIDGE_ALIGN_PRECISION"
        if precision not in PRECISIONS:
            raise AlignError(f"simalign: unknown {where} {precision!r}; choose one of {list(PRECISIONS)}")
        self.method = method
        self.name = f"simalign:{method}"
        self.model_name = model
        self.layer = layer
        self.layers: tuple[int, ...] | None = layers  # None: ``layer`` alone
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.distortion = distortion
        self.max_count = max_count
        self.alpha = alpha
        self.chunk_pairs = chunk_pairs
        self.progress = progress
        self.precision = precision
        self._dtype: Any = None  # the torch dtype of the products, once the model is loaded
        self._tokenizer: Any = None
        self._model: Any = None
        self._early_stop: bool | None = None
        self._packed: _PackedBert | None = None
        self._word_counts: dict[str, int] = {}

    # -- public ---------------------------------------------------------------------------

    def align(self, pairs: list) -> list[list[Link]]:
        return self.align_methods(pairs, [self.method])[self.method]

    def align_methods(self, pairs: list, methods: Sequence[str]) -> dict[str, list[list[Link]]]:
        """Links for several matching methods from one forward pass (keys as asked)."""
        check_pairs(pairs, self.name)
        for m in methods:
            if m not in METHODS:
                raise AlignError(f"simalign: unknown method {m!r}; choose one of {sorted(METHODS)}")
        out: dict[str, list[list[Link]]] = {m: [] for m in methods}
        for sim, src_map, tgt_map in self.similarities(pairs):
            cache: dict[str, np.ndarray] = {}
            for m in methods:
                mat = _method_matrix(METHODS[m], sim, cache, self.max_count, self.alpha)
                out[m].append(self._word_links(mat, sim, src_map, tgt_map))
        return out

    def similarities(self, pairs: list) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per pair: the similarity matrix and the word index of each of its rows / columns.

        Matrices are kept in a small per-process cache (``SIMILARITY_CACHE_PAIRS``), so the
        projection's soft alignment after this aligner (same encoder and layer) does not run
        the encoder a second time."""
        from tqdm.auto import tqdm

        self._ensure_model()
        show = self.progress if self.progress is not None else len(pairs) > 500
        with tqdm(total=2 * len(pairs), desc=self.name, unit="sent", disable=not show, leave=False) as bar:
            for start in range(0, len(pairs), self.chunk_pairs):
                chunk = pairs[start : start + self.chunk_pairs]
                keys = [self._cache_key(p) for p in chunk]
                found = {k: _SIMILARITY_CACHE[k] for k in keys if k in _SIMILARITY_CACHE}
                todo = list({k: p for k, p in zip(keys, chunk) if k not in found}.items())
                bar.update(2 * (len(chunk) - len(todo)))
                sentences = [list(p[0]) for _, p in todo] + [list(p[1]) for _, p in todo]
                encoded = self._encode(sentences, bar) if todo else []
                n = len(todo)
                for k, (key, _) in enumerate(todo):
                    src, tgt = encoded[k], encoded[n + k]
                    found[key] = (self._similarity(src.vectors, tgt.vectors), src.word_of, tgt.word_of)
                    _remember(key, found[key])
                for key in keys:
                    yield found[key]

    def _cache_key(self, pair: Any) -> tuple:
        # the model object itself (hashed by identity, kept alive by the key), not id(): an id
        # can be reused by another model once the loader's cache lets the first one go
        return (self._model, self._dtype, self.layers or self.layer, self.pooling, self.distortion, tuple(pair[0]), tuple(pair[1]))

    # -- steps ----------------------------------------------------------------------------

    def load(self) -> None:
        """Load the encoder now (the pipeline counts it as the stage's load time)."""
        self._ensure_model()

    def _ensure_model(self) -> None:
        if self._model is not None:
            return
        import torch

        self._tokenizer, self._model = load_model(self.model_name, self.device)
        n_hidden = getattr(self._model.config, "num_hidden_layers", None)
        if n_hidden is not None and self.layer > n_hidden:
            raise AlignError(
                f"simalign: layer {self.layer} asked, but the model has only {n_hidden + 1} hidden states (0..{n_hidden})"
            )
        self._dtype = compute_dtype(self.precision, self._model.device)
        # Fastest path that reproduces hidden_states[layer] of the model's own forward on a
        # probe batch (with padding): packed BERT blocks, else stopping after block `layer`
        # with a hook, else the full forward. In bfloat16 the float32 path must match first,
        # then the bf16 one must stay close to it (else float32 is used).
        blocks = transformer_blocks(self._model)
        self._early_stop = False
        self._packed = None
        probe = self._tokenizer(
            [["probe", "sentence", "with", "several", "words"], ["x"], ["a", "third", "one"]],
            is_split_into_words=True, padding=True, return_tensors="pt",
        ).to(self._model.device)  # fmt: skip
        real = probe["attention_mask"].bool()
        with torch.inference_mode():
            states = self._model(**probe, output_hidden_states=True).hidden_states
            full = states[self.layer] if self.layer < len(states) else None

            def same(h: Any) -> bool:
                return full is not None and h is not None and h.shape == full.shape and bool(
                    torch.allclose(h[real], full[real], atol=1e-4, rtol=1e-4)
                )

            def close(h: Any) -> bool:  # every real token's vector within 0.99 cosine
                return full is not None and h is not None and h.shape == full.shape and bool(
                    (torch.nn.functional.cosine_similarity(h[real].float(), full[real], dim=-1) > 0.99).all()
                )

            if blocks is not None and 1 <= self.layer <= len(blocks):
                if _has_bert_blocks(self._model, blocks):
                    packed = _PackedBert(self._model, blocks, self.layer)
                    if same(packed(probe)):
                        self._packed = packed
                        if self._dtype != torch.float32:
                            low = _PackedBert(self._model, blocks, self.layer, self._dtype)
                            self._packed = low if close(low(probe)) else packed
                if self._packed is None:
                    self._early_stop = same(self._forward_early(probe, blocks))
            if self._packed is not None:
                self._dtype = self._packed.dtype
            elif self._dtype != torch.float32:
                if self.layers is not None:  # _hidden gives the layers side by side: compare with the same from the full forward
                    full = torch.cat([torch.nn.functional.normalize(states[k], dim=-1) for k in self.layers], dim=-1)
                if not close(self._hidden(probe)):
                    self._dtype = torch.float32

    def _forward_early(self, inputs: Any, blocks: Any):
        captured: dict[str, Any] = {}

        def hook(_module, _args, output):
            captured["h"] = output[0] if isinstance(output, (tuple, list)) else output
            raise _StopForward

        handle = blocks[self.layer - 1].register_forward_hook(hook)
        try:
            self._model(**inputs)
        except _StopForward:
            pass
        finally:
            handle.remove()
        return captured.get("h")

    @property
    def compute_precision(self) -> str | None:
        """The precision the products run in (None until the model is loaded)."""
        return None if self._dtype is None else str(self._dtype).removeprefix("torch.")

    def _hidden(self, inputs: Any):
        import torch

        if self._packed is not None:
            with _attention_kernels():
                return self._packed(inputs, self.layers)
        low = self._dtype is not None and self._dtype != torch.float32
        if self.layers is not None:  # several layers: the whole forward, their normalised states side by side
            with _attention_kernels(), torch.autocast(self._model.device.type, dtype=self._dtype, enabled=low):
                states = self._model(**inputs, output_hidden_states=True).hidden_states
            return torch.cat([torch.nn.functional.normalize(states[k].float(), dim=-1) for k in self.layers], dim=-1)
        with _attention_kernels(), torch.autocast(self._model.device.type, dtype=self._dtype, enabled=low):
            if self._early_stop:
                return self._forward_early(inputs, transformer_blocks(self._model)).float()
            hidden = self._model(**inputs, output_hidden_states=True).hidden_states
        if self.layer >= len(hidden):
            raise AlignError(f"simalign: layer {self.layer} asked, but the model has only {len(hidden)} hidden states")
        return hidden[self.layer].float()

    def _subword_counts(self, sentences: list[list[str]]) -> dict[str, int]:
        """Subwords per distinct word, as ``tokenizer.tokenize(word)`` counts them.

        Kept per aligner (words recur across batches). A fast tokenizer's Rust backend is
        asked directly: the same encodings, without building a Python object per word
        (that was ~6% of the aligner's time on 200 Europarl pairs)."""
        if len(self._word_counts) > WORD_COUNT_CACHE:
            self._word_counts.clear()
        words = sorted({w for s in sentences for w in s} - self._word_counts.keys())
        tok = self._tokenizer
        backend = getattr(tok, "backend_tokenizer", None) if getattr(tok, "is_fast", False) else None
        if backend is not None and words:
            # the backend keeps the padding/truncation of the last batched call (transformers
            # sets both again on every call of its own)
            backend.no_padding()
            backend.no_truncation()
            encodings = backend.encode_batch(words, add_special_tokens=False)
            self._word_counts.update((w, len(e.ids)) for w, e in zip(words, encodings))
        else:
            self._word_counts.update((w, len(tok.tokenize(w))) for w in words)
        return self._word_counts

    def _encode(self, sentences: list[list[str]], bar: Any) -> list[_Encoded]:
        import torch

        counts = self._subword_counts(sentences)
        per_word = [[counts[w] for w in s] for s in sentences]
        order = sorted(range(len(sentences)), key=lambda i: sum(per_word[i]))
        result: list[_Encoded | None] = [None] * len(sentences)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        with torch.inference_mode():
            for batch in batches:
                inputs = self._tokenizer(
                    [sentences[i] for i in batch],
                    is_split_into_words=True,
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                ).to(self._model.device)
                hidden = self._hidden(inputs).float().cpu().numpy()
                lengths = inputs["attention_mask"].sum(dim=1).tolist()
                for row, i in enumerate(batch):
                    n_sub = min(sum(per_word[i]), int(lengths[row]) - 2)
                    word_of = np.repeat(np.arange(len(per_word[i])), per_word[i])[:n_sub]
                    vecs = hidden[row, 1 : 1 + n_sub]
                    result[i] = self._pool(vecs, word_of, len(per_word[i]))
                bar.update(len(batch))
        return result  # type: ignore[return-value]

    def _pool(self, vecs: np.ndarray, word_of: np.ndarray, n_words: int) -> _Encoded:
        if self.pooling == "bpe":
            return _Encoded(np.ascontiguousarray(vecs), word_of)
        present = np.unique(word_of)  # words cut off by truncation or with no subword drop out
        if self.pooling == "first":
            firsts = np.searchsorted(word_of, present)
            return _Encoded(vecs[firsts], present)
        sums = np.zeros((n_words, vecs.shape[1]), dtype=np.float64)
        np.add.at(sums, word_of, vecs)
        means = (sums[present] / np.bincount(word_of, minlength=n_words)[present, None]).astype(np.float32)
        return _Encoded(means, present)

    def _similarity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(cosine + 1) / 2, as SimAlign's ``get_similarity`` (computed with torch: numpy's own
        BLAS threads would compete with torch's for the same cores)."""
        import torch

        if len(x) == 0 or len(y) == 0:
            return np.zeros((len(x), len(y)), dtype=np.float32)
        xt = torch.nn.functional.normalize(torch.from_numpy(x), dim=1)
        yt = torch.nn.functional.normalize(torch.from_numpy(y), dim=1)
        sim = ((xt @ yt.T + 1.0) / 2.0).numpy()
        return apply_distortion(sim, self.distortion)

    @staticmethod
    def _word_links(mat: np.ndarray, sim: np.ndarray, src_map: np.ndarray, tgt_map: np.ndarray) -> list[Link]:
        if mat.size == 0:
            return []
        rows, cols = np.nonzero(mat > 0)
        scores: dict[tuple[int, int], float] = {}
        for i, j, s in zip(src_map[rows].tolist(), tgt_map[cols].tolist(), sim[rows, cols].tolist()):
            if s > scores.get((i, j), -1.0):
                scores[(i, j)] = s
        return links_from_scores(scores)
