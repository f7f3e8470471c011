"""Annotation projection: source spans + word alignment -> target spans.

Methods (``project_items(items, method, **options)``; per sentence ``project_sentence``):

* ``heuristic`` - contiguous runs of aligned target words (Garcia-Ferrero et al. 2022),
  :func:`core.projection.heuristic.project_heuristic`.
* ``ilp`` / ``greedy`` - candidate matching on the alignment Dice alone (Shkalikov 2024),
  assignment solved exactly (HiGHS MILP) or greedily,
  :func:`core.projection.matching.project_candidates`.
* ``ilp-fused`` / ``greedy-fused`` - candidate matching on fused evidence: the alignment Dice
  with gap credit (unlinked words between two aligned words of the entity count as covered)
  averaged with the soft alignment Dice (translation probabilities from the encoder,
  :mod:`core.projection.soft`); a pair must score above 0.3 and counts by its margin over
  that threshold. ``greedy-fused`` on ``simalign:itermax`` links is the project's default
  (:data:`DEFAULT_METHOD`, :data:`DEFAULT_ALIGNER`): the best configuration measured on
  Europarl-NER (bench/RESULTS.md), as good as the exact ILP there and ~3x faster.

Every method returns target spans with ``source="projection:<method>"`` and a confidence in
[0, 1]: the alignment Dice of the entity and its projection for ``heuristic``, the fused
match score for the matching methods (1.0 = every word on both sides explained by the other
side; projections under ~0.5 deserve a reviewer's look). Source spans that could not be
projected are never dropped silently: they are returned (``ProjectionResult.unprojected``)
and, for items, listed in ``item.meta["unprojected"]`` as span dicts with a ``reason``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from core.config import settings
from core.data import Item, Link, Sentence, Span
from core.projection.common import ProjectionError, ProjectionResult, Unprojected, join_touching, span_dict
from core.projection.heuristic import project_heuristic
from core.projection.matching import Candidate, ngram_candidates, project_candidates, score_candidates
from core.projection.soft import DEFAULT_TAU, SoftAlignment, soft_align

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_ALIGNER",
    "METHODS",
    "MODEL_CANDIDATES",
    "MODEL_WEIGHT",
    "ProjectionResult",
    "Unprojected",
    "Candidate",
    "SoftAlignment",
    "project_sentence",
    "project_items",
    "project_heuristic",
    "project_candidates",
    "ngram_candidates",
    "score_candidates",
    "with_model_candidates",
    "join_touching",
    "soft_align",
    "uses_soft_alignment",
]

DEFAULT_METHOD = "greedy-fused"
DEFAULT_ALIGNER = "simalign:itermax"

# Method presets: the function and its default options (callers may override any option).
# derived_label: a name projected onto one lower-case word is labelled MISC (an adjective or
# derivation: "europäischen", "comunitaria"; core.projection.common.projected_label).
_FUSED = {"gap_credit": 1.0, "max_gap": 2, "soft_weight": 1.0, "threshold": 0.3, "derived_label": "MISC"}
METHODS: dict[str, tuple[Callable[..., ProjectionResult], dict[str, Any]]] = {
    "heuristic": (project_heuristic, {}),
    "ilp": (project_candidates, {"solver": "ilp", "soft_weight": 0.0}),
    "greedy": (project_candidates, {"solver": "greedy", "soft_weight": 0.0}),
    "ilp-fused": (project_candidates, {"solver": "ilp", **_FUSED}),
    "greedy-fused": (project_candidates, {"solver": "greedy", **_FUSED}),
}
# Options that are not projection options but say how to compute the soft alignment.
_SOFT_OPTIONS = ("encoder", "layer", "layers", "tau", "device", "batch_size")


def _default_device() -> str:
    """The GPU when there is one (as the pipeline runs SimAlign), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _method(method: str) -> tuple[Callable[..., ProjectionResult], dict[str, Any]]:
    if method not in METHODS:
        raise ProjectionError(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
    return METHODS[method]


def uses_soft_alignment(method: str, **options: Any) -> bool:
    """Whether a method (with these options) reads a soft alignment."""
    fn, defaults = _method(method)
    return fn is project_candidates and float({**defaults, **options}.get("soft_weight", 1.0)) > 0


def project_sentence(
    source: Sentence,
    source_spans: Sequence[Span],
    target: Sentence,
    links: Sequence[Link],
    method: str = DEFAULT_METHOD,
    **options: Any,
) -> ProjectionResult:
    """Project one sentence's spans with a method preset; ``options`` override its defaults.

    The fused methods take the soft alignment as ``soft=SoftAlignment``; without it they use
    the hard links alone.
    """
    fn, defaults = _method(method)
    merged = {**defaults, **options}
    if fn is project_heuristic:
        merged.pop("soft", None)  # the heuristic reads hard links only
    unknown = set(merged) - set(fn.__kwdefaults__ or {})
    if unknown:
        raise ProjectionError(f"projection method {method!r} has no option {', '.join(sorted(unknown))}")
    result = fn(source, source_spans, target, links, **merged)
    label = f"projection:{method}"
    result.spans = [Span(s.start, s.end, s.label, s.char_start, s.char_end, label, s.confidence) for s in result.spans]
    return result


def project_items(items: list[Item], method: str = DEFAULT_METHOD, **options: Any) -> list[Item]:
    """Pipeline stage: fill ``target_spans`` from ``source_spans`` and ``item.alignment``.

    Items without a target sentence raise ProjectionError (naming the item). For the fused
    methods, a soft alignment is read from ``item.meta["soft_alignment"]`` (a SoftAlignment
    or its ``to_dict()``); items without one get it computed here, in one batch, with the
    default encoder (options ``encoder``, ``layer`` (8), ``tau``, ``device`` (the GPU when
    there is one), ``batch_size``). For the matching methods, ``item.meta["candidates"]``
    (dicts with ``start``, ``end``, ``probability``: spans from a target-language NER model)
    replaces the n-gram candidates. Unprojected source spans go to ``item.meta["unprojected"]``.
    """
    soft_opts = {k: options.pop(k) for k in _SOFT_OPTIONS if k in options}
    _method(method)
    for it in items:
        if it.target is None:
            raise ProjectionError(f"item {it.id}: no target sentence to project onto")
    softs: list[SoftAlignment | None] = [None] * len(items)
    if uses_soft_alignment(method, **options):
        todo = []
        for k, it in enumerate(items):
            raw = it.meta.get("soft_alignment")
            if isinstance(raw, SoftAlignment):
                softs[k] = raw
            elif isinstance(raw, dict):
                softs[k] = SoftAlignment.from_dict(raw)
            elif it.source_spans:  # only sentences with something to project need the encoder
                todo.append(k)
        if todo:
            encoder = soft_opts.get("encoder") or settings().encoder
            if encoder.startswith((".", "/", "~")) and not Path(encoder).expanduser().exists():
                raise RuntimeError(
                    f"projection method {method!r} needs the encoder for its soft alignment, and {encoder} does not "
                    "exist; prepare it (python -m core.cli models prepare), pass encoder=..., or use a method "
                    "without soft alignment (e.g. 'ilp')"
                )
            try:
                computed = soft_align(
                    [(items[k].source.words, items[k].target.words) for k in todo],  # type: ignore[union-attr]
                    model=encoder,
                    layer=int(soft_opts.get("layer", 8)),
                    layers=soft_opts.get("layers"),
                    tau=float(soft_opts.get("tau", DEFAULT_TAU)),
                    device=str(soft_opts.get("device") or _default_device()),
                    batch_size=int(soft_opts.get("batch_size", 32)),
                )
            except (OSError, ImportError) as exc:
                raise RuntimeError(
                    f"projection method {method!r} needs the encoder for its soft alignment and could not load it "
                    f"({exc}); prepare it (python -m core.cli models prepare), pass encoder=..., or use a method "
                    "without soft alignment (e.g. 'ilp')"
                ) from exc
            for k, soft in zip(todo, computed):
                softs[k] = soft
    matching = _method(method)[0] is project_candidates
    out: list[Item] = []
    for it, soft in zip(items, softs):
        assert it.target is not None
        extra: dict[str, Any] = {"soft": soft} if soft is not None else {}
        if matching and it.meta.get("candidates") is not None and "candidates" not in options:
            extra["candidates"] = _candidates_from_meta(it)
        if matching and it.meta.get(MODEL_CANDIDATES) is not None and "model_candidates" not in options:
            extra["model_candidates"] = _candidates_from_meta(it, MODEL_CANDIDATES)
        try:
            result = project_sentence(it.source, it.source_spans, it.target, it.alignment, method, **options, **extra)
        except ValueError as exc:
            raise ProjectionError(f"item {it.id}: {exc}") from exc
        meta = dict(it.meta)
        meta["unprojected"] = [span_dict(u.span, it.source, u.reason) for u in result.unprojected]
        out.append(it.with_(target_spans=result.spans, meta=meta))
    return out


def _candidates_from_meta(item: Item, key: str = "candidates") -> list[Candidate]:
    """``item.meta[key]``: target spans proposed by a target-language NER model."""
    out = []
    for k, d in enumerate(item.meta[key]):
        try:
            prob = d.get("probability")
            out.append(Candidate(int(d["start"]), int(d["end"]), None if prob is None else float(prob), d.get("label")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProjectionError(
                f"item {item.id}: {key.removesuffix('s')} {k} must be {{'start': int, 'end': int, 'probability': float}}, got {d!r}"
            ) from exc
    return out


MODEL_CANDIDATES = "model_candidates"  # item.meta key: a target model's spans, fused with the n-grams
MODEL_WEIGHT = 1.0  # weight of a target model's probability beside the alignment evidence


def with_model_candidates(items: Sequence[Item], predict: Callable[[list[Sentence]], list[list[Span]]]) -> list[Item]:
    """Items whose ``meta["model_candidates"]`` hold the spans a target-language model
    (``predict``: sentences -> spans with confidences, e.g. a Teacher's) finds in the target
    sentence: the paper's model candidates, scored beside the alignment (``model_weight``)."""
    missing = [it.id for it in items if it.target is None]
    if missing:
        raise ProjectionError(f"item {missing[0]}: no target sentence for the candidate model")
    predicted = predict([it.target for it in items])  # type: ignore[misc]
    if len(predicted) != len(items):
        raise ProjectionError(f"the candidate model returned {len(predicted)} span lists for {len(items)} sentences")
    return [
        it.with_(meta={**it.meta, MODEL_CANDIDATES: [{"start": sp.start, "end": sp.end, "probability": sp.confidence, "label": sp.label}
                                                     for sp in spans]})  # fmt: skip
        for it, spans in zip(items, predicted)
    ]
