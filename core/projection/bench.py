"""Projection quality on a parallel gold corpus: strict entity F1 of projected source gold.

    python bench/projection.py --source ../shared/data/europarl-ner/en-europarl.test.conll02 \
        --target ../shared/data/europarl-ner/de-europarl.test.conll02 --json

Sentence k of the source file is the translation of sentence k of the target file, both
with gold tags. The source gold spans are projected onto the TARGET TOKENS of the gold file
(align with ``--aligner``, project with ``--method``) and compared with the target gold:
strict IOB2 entity precision / recall / F1 (seqeval, ``mode="strict", scheme=IOB2``).
Without ``--method`` / ``--aligner`` it measures the project's default
(``core.projection.DEFAULT_METHOD`` / ``DEFAULT_ALIGNER``).

``seconds`` is the wall time of alignment + projection (including the soft alignment of the
fused methods) after the models are loaded and warmed up on one pair; ``pairs_per_second``
= sentences / seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.data import Item, Sentence
from core.errors import BenchError

__all__ = ["load_parallel_gold", "bench_projection", "bench_projection_methods"]




def load_parallel_gold(
    source: str | Path,
    target: str | Path,
    limit: int | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
) -> tuple[list[Item], list[Item]]:
    """Items for projection (source gold spans, target sentence) and the target gold items."""
    from core.formats import read

    try:
        src_items = read(source, "conll")
        tgt_items = read(target, "conll")
    except ValueError as exc:  # FormatError names the file and line
        raise BenchError(str(exc)) from exc
    if len(src_items) != len(tgt_items):
        raise BenchError(f"{source} has {len(src_items)} sentences but {target} has {len(tgt_items)}: not a parallel corpus")
    if limit is not None:
        if limit < 1:
            raise BenchError(f"--limit must be >= 1, got {limit}")
        src_items, tgt_items = src_items[:limit], tgt_items[:limit]
    pairs = [
        Item(
            id=str(k),
            source=Sentence(s.source.text, s.source.tokens, src_lang or s.source.lang),
            source_spans=list(s.source_spans),
            target=Sentence(t.source.text, t.source.tokens, tgt_lang or t.source.lang),
        )
        for k, (s, t) in enumerate(zip(src_items, tgt_items))
    ]
    return pairs, tgt_items


def bench_projection(
    source: str | Path,
    target: str | Path,
    method: str | None = None,
    aligner: str | None = None,
    limit: int | None = None,
    back_translator: str | None = None,
    langs: tuple[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Align, project and score (see the module docstring); returns the JSON record."""
    return bench_projection_methods(
        source, target, [method] if method else None, aligner, limit, back_translator, langs, **options
    )[0]


def bench_projection_methods(
    source: str | Path,
    target: str | Path,
    methods: list[str] | None = None,
    aligner: str | None = None,
    limit: int | None = None,
    back_translator: str | None = None,
    langs: tuple[str, str] | None = None,
    aligner_options: dict[str, Any] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """One record per method, sharing one alignment (and one soft alignment) of the corpus.

    Each record's ``seconds`` counts what that method needs: the back-translation (for
    ``bt(...)`` aligners, made with ``back_translator`` between ``langs`` = (source, target)
    language codes), the alignment, the soft alignment when the method reads one, and its
    own projection.
    """
    from core.align import align_items, aligner_encoder, aligner_layers, get_aligner, prepare_aligners
    from core.config import settings
    from core.encoder import compute_dtype
    from core.metrics import item_scores
    from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD, METHODS, project_items, soft_align, uses_soft_alignment

    methods = methods or [DEFAULT_METHOD]
    aligner_spec = aligner or DEFAULT_ALIGNER
    for m in methods:
        if m not in METHODS:
            raise BenchError(f"unknown projection method {m!r}; expected one of {', '.join(METHODS)}")
    soft_opts = {k: options.pop(k) for k in ("encoder", "layer", "layers", "tau") if k in options}
    if back_translator and not langs:
        raise BenchError("--back-translator needs --langs SRC,TGT (e.g. en,es)")
    items, gold = load_parallel_gold(source, target, limit, *(langs or (None, None)))
    try:
        al = get_aligner(aligner_spec, **(aligner_options or {}))
    except ValueError as exc:
        raise BenchError(f"aligner {aligner_spec!r}: {exc}") from exc
    back_seconds = 0.0
    if back_translator:
        from core.translate import back_translate, load_translator

        translator = load_translator(back_translator)
        start = time.perf_counter()
        items = back_translate(items, translator, langs[0], langs[1])  # type: ignore[index]
        back_seconds = time.perf_counter() - start
    needs_soft = any(uses_soft_alignment(m, **options) for m in methods)

    def soft_for(batch: list[Item]) -> list[Item]:
        todo = [it for it in batch if it.source_spans]
        encoder = soft_opts.get("encoder") or aligner_encoder(al)  # an adapted aligner's own vectors
        # the aligner's own layer(s) unless told otherwise: the soft and hard evidence read the same vectors
        own = aligner_layers(al)
        layer = int(soft_opts.get("layer", own.get("layer", 8)))
        layers = soft_opts.get("layers", own.get("layers"))
        softs = soft_align([(it.source.words, it.target.words) for it in todo], model=encoder,  # type: ignore[union-attr]
                           layer=layer, layers=layers, **({"tau": float(soft_opts["tau"])} if "tau" in soft_opts else {}))
        by_id = {it.id: s for it, s in zip(todo, softs)}
        return [it.with_(meta={**it.meta, "soft_alignment": by_id[it.id]}) if it.id in by_id else it for it in batch]

    # an adapted aligner (anywhere in the spec) adapts on the whole corpus, no labels read, timed apart
    start = time.perf_counter()
    adaptations = prepare_aligners(al, [(it.source.words, it.target.words) for it in items])
    adapt_seconds = time.perf_counter() - start
    # Warm up (load the encoder, first forward pass) on one pair with an entity, untimed.
    warm = next((it for it in items if it.source_spans), None)
    if warm is not None:
        warmed = align_items([warm], al)
        if needs_soft:
            warmed = soft_for(warmed)
        for m in methods:
            project_items(warmed, m, **options)
    start = time.perf_counter()
    aligned = align_items(items, al)
    align_seconds = time.perf_counter() - start + back_seconds
    soft_seconds = 0.0
    if needs_soft:
        start = time.perf_counter()
        aligned = soft_for(aligned)
        soft_seconds = time.perf_counter() - start
    precision = _embedding_precision(al)
    if precision is None and needs_soft:  # the soft alignment's own embedding aligner (CPU here)
        precision = str(compute_dtype(settings().align_precision, "cpu")).removeprefix("torch.")
    records = []
    for m in methods:
        start = time.perf_counter()
        projected = project_items(aligned, m, **options)
        seconds = align_seconds + time.perf_counter() - start + (soft_seconds if uses_soft_alignment(m, **options) else 0.0)
        scores = item_scores(gold, [it.target_spans for it in projected])  # strict, on the gold tags as written
        records.append({
            "benchmark": "projection",
            "source": str(source),
            "target": str(target),
            "method": m,
            "aligner": aligner_spec,
            **({"aligner_options": aligner_options} if aligner_options else {}),
            "back_translator": back_translator,
            "options": {**options, **soft_opts},
            "align_precision": precision,
            "sentences": len(items),
            "source_entities": sum(len(it.source_spans) for it in items),
            "projected": sum(len(it.target_spans) for it in projected),
            "unprojected": sum(len(it.meta.get("unprojected", [])) for it in projected),
            "precision": round(scores["precision"], 4),
            "recall": round(scores["recall"], 4),
            "f1": round(scores["f1"], 4),
            "repaired_gold": scores["repaired_gold"],
            "pairs_per_second": round(len(items) / seconds, 2) if seconds > 0 else None,
            "seconds": round(seconds, 2),
            **({"adapt_seconds": round(adapt_seconds, 1), "adapted": {k: adaptations[0].get(k) for k in ("steps", "seconds", "first_loss", "last_loss",
                "guide_links_per_pair", "precision", "config")}} if adaptations else {}),  # fmt: skip
        })
    return records


def _embedding_precision(aligner: Any) -> str | None:
    """The precision an embedding aligner inside ``aligner`` computed in (None: there is none)."""
    if hasattr(aligner, "compute_precision"):
        return aligner.compute_precision
    inner = [part for part in vars(aligner).values() if hasattr(part, "align")]
    return next((p for p in map(_embedding_precision, inner) if p), None)
