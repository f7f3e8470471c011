"""Speed and agreement of the batched SimAlign aligner against the simalign package itself.

Both run in the same process on the same pairs with the same encoder, layer and matching
method. To be fair under a shared, fluctuating CPU, the pairs are cut into blocks and the
two aligners take turns block by block; each is warmed up first (model loaded, one small
batch run), and only the alignment calls are timed.

Agreement is micro Jaccard over all pairs: ``sum_k |A_k & B_k| / sum_k |A_k | B_k|`` with
A_k our links and B_k simalign's links of pair k (as (src, tgt) word index pairs, scores
ignored). ``ours_in_simalign`` = sum |A & B| / sum |A| (share of our links that simalign
also gives) and ``simalign_in_ours`` = sum |A & B| / sum |B| (share of simalign's links
we reproduce).

``precision`` is the one ours computed in (``--precision``, default
``LABELBRIDGE_ALIGN_PRECISION`` or ``auto``: bfloat16 on a CPU with native bf16 dot
products, see core.align.embedding); simalign always runs the model's float32 forward.

The JSON also says how close to this CPU's limit ours runs (``compute_bound``): the
floating-point work of the products any aligner with the same links must compute (the
first ``layer`` blocks on each sentence's subwords, ``encoder_gflop``), the machine's own
matrix-product speed in ours' precision, measured in the same run on the encoder's
shapes, and from them ``ratio_bound``: the ratio an aligner doing nothing but those
products at that speed would reach against the measured simalign (the speed of a shared
CPU itself varies between runs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.align.base import link_set
from core.align.embedding import METHODS, SimAlignAligner, clear_similarity_cache
from core.errors import BenchError

__all__ = ["read_conll_words", "bench_align_speed", "compare_with_simalign", "encoder_gflop"]

_SIMALIGN_LETTER = {"inter": "a", "itermax": "i", "mwmf": "m", "fwd": "f", "rev": "r"}




def read_conll_words(path: str | Path) -> list[list[str]]:
    """Sentences of a CoNLL file as word lists, read with the project's reader (core.formats)."""
    from core.formats import read

    try:
        items = read(Path(path), "conll")
    except ValueError as exc:  # FormatError names the file and line
        raise BenchError(str(exc)) from exc
    return [list(it.source.words) for it in items]


def _agreement(ours: list[set], theirs: list[set]) -> dict[str, float]:
    inter = sum(len(a & b) for a, b in zip(ours, theirs))
    union = sum(len(a | b) for a, b in zip(ours, theirs))
    n_ours = sum(len(a) for a in ours)
    n_theirs = sum(len(b) for b in theirs)
    return {
        "link_agreement": inter / union if union else 1.0,
        "ours_in_simalign": inter / n_ours if n_ours else 1.0,
        "simalign_in_ours": inter / n_theirs if n_theirs else 1.0,
        "identical_pairs": sum(a == b for a, b in zip(ours, theirs)) / len(ours) if ours else 1.0,
    }


def encoder_gflop(lengths: list[int], layers: int, hidden: int, intermediate: int) -> float:
    """GFLOP of ``layers`` transformer blocks over sentences of ``lengths`` subwords each
    (every sentence encoded on its own, no padding): per block, the Q/K/V, output and two
    feed-forward products (``2 * n * (4 h^2 + 2 h i)``) plus the attention scores and
    their weighted sum (``4 * n^2 * h``). Softmax, GELU and LayerNorm are left out (a few
    percent), so the figure is a lower bound of the work."""
    products = sum(2 * n * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * n * n * hidden for n in lengths)
    return layers * products / 1e9


def _matmul_gflops(hidden: int, intermediate: int, rows: int = 2048, seconds: float = 0.5, dtype: Any = None) -> float:
    """This machine's speed in ``dtype`` (default float32) on the encoder's largest product
    (rows x hidden by hidden x intermediate, both directions), with torch's current thread
    count: the best of a few timed repetitions, so a busy moment lowers it less."""
    import torch

    dtype = dtype or torch.float32
    x, w = torch.randn(rows, hidden, dtype=dtype), torch.randn(intermediate, hidden, dtype=dtype)
    y = torch.randn(rows, intermediate, dtype=dtype)
    flop = 2 * rows * hidden * intermediate
    best = 0.0
    for a, b in ((x, w), (y, w.t().contiguous())):
        torch.nn.functional.linear(a, b)  # warm-up
        deadline = time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            torch.nn.functional.linear(a, b)
            best = max(best, flop / (time.perf_counter() - t0) / 1e9)
    return best


def _compute_bound(
    pairs: list[tuple[list[str], list[str]]], model: str, layer: int, device: str, ours_seconds: float, ref_seconds: float, dtype: Any = None
) -> dict[str, Any] | None:
    """``compute_bound`` of the result (module docstring); None off the CPU or for an
    encoder without BERT-style sizes in its config."""
    from core.encoder import load_encoder

    if device != "cpu":
        return None
    tokenizer, encoder = load_encoder(model, device)
    config = encoder.config
    hidden, intermediate = getattr(config, "hidden_size", None), getattr(config, "intermediate_size", None)
    if not hidden or not intermediate:
        return None
    sentences = [words for pair in pairs for words in pair if words]
    lengths = [len(ids) for ids in tokenizer(sentences, is_split_into_words=True)["input_ids"]]
    gflop = encoder_gflop(lengths, layer, hidden, intermediate)
    machine = _matmul_gflops(hidden, intermediate, dtype=dtype)
    n = len(pairs)
    best_pairs_per_second = machine / (gflop / n)
    return {
        "gflop_per_pair": float(f"{gflop / n:.4g}"),
        "machine_matmul_gflops": round(machine, 1),
        "ours_gflops": round(gflop / ours_seconds, 1),
        "ours_share_of_machine": round(gflop / ours_seconds / machine, 3),
        "best_pairs_per_second": round(best_pairs_per_second, 1),
        "ratio_bound": round(best_pairs_per_second / (n / ref_seconds), 2),
    }


def _simalign_reference(model: str, method: str, layer: int, device: str) -> Any:
    try:
        from simalign import SentenceAligner
    except ImportError as exc:
        raise BenchError("the simalign package is not installed (pip install simalign)") from exc
    return SentenceAligner(
        model=model, token_type="bpe", matching_methods=_SIMALIGN_LETTER[METHODS[method]], layer=layer, device=device
    )


def bench_align_speed(
    source: str | Path,
    target: str | Path,
    limit: int | None = 200,
    method: str = "itermax",
    layer: int = 8,
    model: str | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    block: int = 50,
    warmup: int = 4,
    threads: int | None = None,
    precision: str | None = None,
) -> dict[str, Any]:
    """Time ours against simalign on the first ``limit`` sentence pairs of two CoNLL files."""
    if method not in METHODS:
        raise BenchError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    src = read_conll_words(source)
    tgt = read_conll_words(target)
    if len(src) != len(tgt):
        raise BenchError(f"{source} has {len(src)} sentences but {target} has {len(tgt)}; they must be parallel")
    pairs = list(zip(src, tgt))[: limit if limit else None]
    if not pairs:
        raise BenchError(f"{source}: no sentences")
    return compare_with_simalign(pairs, method, layer, model, batch_size, device, block, warmup, threads, precision)


def compare_with_simalign(
    pairs: list[tuple[list[str], list[str]]],
    method: str = "itermax",
    layer: int = 8,
    model: str | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    block: int = 50,
    warmup: int = 4,
    threads: int | None = None,
    precision: str | None = None,
) -> dict[str, Any]:
    """The timing and agreement figures for some sentence pairs (see the module docstring)."""
    import torch

    from core.config import settings

    if threads:
        torch.set_num_threads(threads)  # both aligners run in this process, so both get it
    model = model or settings().encoder

    ours = SimAlignAligner(method=method, model=model, layer=layer, batch_size=batch_size, device=device, precision=precision)
    reference = _simalign_reference(model, method, layer, device)
    key = METHODS[method]
    ours.align(pairs[:warmup])
    for s, t in pairs[:warmup]:
        reference.get_word_aligns(s, t)

    ours_links: list[set] = []
    ref_links: list[set] = []
    ours_seconds = ref_seconds = ours_cpu = ref_cpu = 0.0
    for start in range(0, len(pairs), block):
        part = pairs[start : start + block]
        clear_similarity_cache()  # time the encoder, not a cache hit (the warm-up pairs)
        t0, c0 = time.perf_counter(), time.process_time()
        got = ours.align(part)
        ours_seconds += time.perf_counter() - t0
        ours_cpu += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        ref = [reference.get_word_aligns(s, t)[key] for s, t in part]
        ref_seconds += time.perf_counter() - t0
        ref_cpu += time.process_time() - c0
        ours_links += [link_set(lk) for lk in got]
        ref_links += [set(map(tuple, r)) for r in ref]

    n = len(pairs)
    return {
        "bench": "align-speed",
        "method": method,
        "layer": layer,
        "model": str(model),
        "device": device,
        "precision": ours.compute_precision,
        "torch_threads": torch.get_num_threads(),
        "pairs": n,
        "batch_size": batch_size,
        "ours_seconds": round(ours_seconds, 3),
        "simalign_seconds": round(ref_seconds, 3),
        "seconds": round(ours_seconds + ref_seconds, 3),
        "ours_pairs_per_second": round(n / ours_seconds, 2),
        "simalign_pairs_per_second": round(n / ref_seconds, 2),
        "ratio": round(ref_seconds / ours_seconds, 2),
        "ours_cpu_seconds": round(ours_cpu, 3),  # process CPU time: steadier than wall time on a busy machine
        "simalign_cpu_seconds": round(ref_cpu, 3),
        "cpu_ratio": round(ref_cpu / ours_cpu, 2) if ours_cpu else None,
        **{k: round(v, 4) for k, v in _agreement(ours_links, ref_links).items()},
        "links_ours": sum(map(len, ours_links)),
        "links_simalign": sum(map(len, ref_links)),
        "compute_bound": _compute_bound(pairs, model, layer, device, ours_seconds, ref_seconds, getattr(torch, ours.compute_precision)),
    }
