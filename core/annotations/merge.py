"""Adjudication: a majority merge of several annotators' versions of one side."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

from core.data import Sentence, Span, check_spans, make_span

__all__ = ["MergeCandidate", "MergeProposal", "merge_versions"]


@dataclass(frozen=True, slots=True)
class MergeCandidate:
    span: Span
    supporters: tuple[str, ...]  # annotators who have exactly this span
    chosen: bool  # in the proposed merge


@dataclass(frozen=True, slots=True)
class MergeProposal:
    spans: list[Span]  # the proposed gold spans (non-overlapping)
    candidates: list[MergeCandidate]  # every distinct span any annotator made
    contested: int  # candidates without a majority or that lost an overlap


def merge_versions(sentence: Sentence, versions: Mapping[str, Sequence[Span]], source: str = "adjudicated") -> MergeProposal:
    """Majority merge of several annotators' spans of one side.

    A span is proposed when more than half of the annotators made exactly it (token range
    and label); of overlapping proposals the one with more supporters (then the longer,
    then the earlier) wins, so the result is always a valid, non-overlapping span list the
    reviewer then corrects.
    """
    n = len(versions)
    support: dict[tuple[int, int, str], list[str]] = defaultdict(list)
    for name, spans in versions.items():
        for s in {sp.key() for sp in spans}:
            support[s].append(name)
    ranked = sorted(support.items(), key=lambda kv: (-len(kv[1]), -(kv[0][1] - kv[0][0]), kv[0][0], kv[0][2]))
    chosen: list[tuple[int, int, str]] = []
    for key, names in ranked:
        if n and len(names) * 2 <= n:
            continue
        if any(key[0] < c[1] and c[0] < key[1] for c in chosen):
            continue
        chosen.append(key)
    chosen_set = set(chosen)
    candidates = [
        MergeCandidate(make_span(sentence, k[0], k[1], k[2], source), tuple(sorted(names)), k in chosen_set)
        for k, names in sorted(support.items())
    ]
    spans = check_spans(sentence, [make_span(sentence, k[0], k[1], k[2], source) for k in chosen])
    return MergeProposal(spans, candidates, sum(1 for c in candidates if not c.chosen))


