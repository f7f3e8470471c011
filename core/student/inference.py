"""Running a student: spans with confidences, per-sentence uncertainty, disagreement.

``disagreement`` is the confident-learning "self-confidence" signal (Northcutt et al.
2021): how improbable the student finds the labels another source (the projection) gave a
sentence, ``1 - min over words of p_student(that word's tag)``. It is soft: a student that
hesitates between the projected tag and another ranks the sentence above one that agrees
firmly, where a hard comparison of decoded spans (1 - span F1) gave most sentences the
same score 0 and left the ranking to ties. On Europarl (bench queue) it found more of the
projection errors in the first 20% of the queue (bench/RESULTS.md).

Tags are decoded with a Viterbi pass restricted to valid IOB2 (``I-X`` only after ``B-X``
or ``I-X``), so every predicted entity is one the strict metric can count, instead of
repairing stray ``I-`` tags after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.data import Sentence, Span, make_span
from core.student.config import StudentError
from core.student.data import build_windows
from core.student.model import TrainedStudent, collate, student_autocast
from core.tags import spans_to_tags, tags_to_spans

__all__ = ["StudentPrediction", "decode_iob2", "disagreement", "predict", "predict_details", "span_f1"]


@dataclass(frozen=True)
class StudentPrediction:
    spans: list[Span]
    tags: list[str]
    probs: np.ndarray  # float32 [n_words, n_labels], softmax at each word's first subword
    uncertainty: float  # 1 - the lowest top-tag probability over the words (0 for no words)
    entropy: float  # mean tag entropy over the words, in nats
    labels: tuple[str, ...] = ()  # the student's tags, the columns of ``probs``


def _allowed_transitions(labels: Sequence[str]) -> np.ndarray:
    """``allowed[i, j]``: tag j may follow tag i in IOB2."""
    n = len(labels)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(labels):
        if tag.startswith("I-"):
            for i, prev in enumerate(labels):
                allowed[i, j] = prev in (f"B-{tag[2:]}", f"I-{tag[2:]}")
    return allowed


def decode_iob2(probs: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The most probable valid IOB2 tag sequence (Viterbi over log probabilities)."""
    n_words = probs.shape[0]
    if n_words == 0:
        return []
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    allowed = _allowed_transitions(labels)
    penalty = np.where(allowed, 0.0, -np.inf)
    start_ok = np.array([0.0 if not t.startswith("I-") else -np.inf for t in labels])
    score = logp[0] + start_ok
    back = np.zeros((n_words, len(labels)), dtype=np.int64)
    for t in range(1, n_words):
        candidates = score[:, None] + penalty  # [prev, cur]
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + logp[t]
    best = [int(score.argmax())]
    for t in range(n_words - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return [labels[i] for i in reversed(best)]


def _word_probs(student: TrainedStudent, word_lists: list[list[str]], images: Sequence[str | None] | None, batch_size: int) -> list[np.ndarray]:
    from core.images import image_features

    model, config = student.model, student.config
    reserved = 1 if student.image_dim else 0
    windows = build_windows(student.tokenizer, word_lists, config.max_subwords, images=images, reserved=reserved, form=config.word_form)  # decided by training
    vectors = None
    if student.image_dim and images is not None:
        refs = sorted({ref for ref in images if ref is not None})
        if refs:
            vectors = dict(zip(refs, image_features(refs, config.image_encoder)))
    out = [np.zeros((len(words), len(student.labels)), dtype=np.float32) for words in word_lists]
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))  # little padding
    pad_id = student.tokenizer.pad_token_id if student.tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    features = None
    if not model.finetune_encoder:  # the frozen encoder's features are shared with training (cache)
        from core.student.features import window_features

        features = window_features(model, windows, pad_id, student.device, batch_size)
    autocast = student_autocast(model, config, student.device)
    try:
        with torch.inference_mode(), autocast():
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                chunk = [windows[i] for i in indices]
                batch = collate(
                    chunk, pad_id, student.device, vectors, student.image_dim,
                    [features[i] for i in indices] if features is not None else None,
                )  # fmt: skip
                logits = model(
                    batch["input_ids"],
                    batch["attention_mask"],
                    batch.get("image_features"),
                    batch.get("has_image"),
                    batch.get("features"),
                )
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                for row, w in enumerate(chunk):
                    out[w.sentence][w.word_start : w.word_end] = probs[row, list(w.first_positions)]
    finally:
        model.train(was_training)
    return out


def predict_details(
    student: TrainedStudent,
    sentences: Sequence[Sentence],
    images: Sequence[str | None] | None = None,
    *,
    batch_size: int = 32,
    source: str = "student",
) -> list[StudentPrediction]:
    """Spans, tags, word probabilities and uncertainty for each sentence.

    ``images`` (one reference or None per sentence) is used by an image-aware student;
    span confidence is the mean (or min, per ``config.confidence``) probability of the
    chosen tags over the span's words.
    """
    if images is not None and len(images) != len(sentences):
        raise StudentError(f"{len(images)} images for {len(sentences)} sentences")
    word_lists = [s.words for s in sentences]
    all_probs = _word_probs(student, word_lists, images, batch_size)
    label_index = {t: i for i, t in enumerate(student.labels)}
    reduce = np.min if student.config.confidence == "min" else np.mean
    results = []
    for sentence, probs in zip(sentences, all_probs):
        tags = decode_iob2(probs, student.labels)
        spans, _ = tags_to_spans(sentence, tags, "IOB2", source=source)
        chosen = np.array([probs[i, label_index[t]] for i, t in enumerate(tags)], dtype=np.float64)
        spans = [
            make_span(sentence, s.start, s.end, s.label, source, float(np.clip(reduce(chosen[s.start : s.end]), 0.0, 1.0)))
            for s in spans
        ]
        if len(tags):
            uncertainty = float(1.0 - probs.max(axis=1).min())
            entropy = float(-(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1).mean())
        else:
            uncertainty = entropy = 0.0
        results.append(StudentPrediction(spans, tags, probs, uncertainty, entropy, tuple(student.labels)))
    return results


def predict(
    student: TrainedStudent,
    sentences: Sequence[Sentence],
    images: Sequence[str | None] | None = None,
    *,
    batch_size: int = 32,
    source: str = "student",
) -> list[list[Span]]:
    """Predicted spans (with confidences) for each sentence."""
    return [p.spans for p in predict_details(student, sentences, images, batch_size=batch_size, source=source)]


def span_f1(spans_a: Sequence[Span], spans_b: Sequence[Span]) -> float:
    """Exact-match F1 between two span sets of one sentence (token range + label).

    Two empty sets agree perfectly (1.0).
    """
    a = {s.key() for s in spans_a}
    b = {s.key() for s in spans_b}
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def disagreement(prediction: StudentPrediction, spans: Sequence[Span]) -> float:
    """How strongly the student contradicts ``spans`` (e.g. the projection) on one sentence:
    ``1 - min over words of p_student(the IOB2 tag the spans give that word)``, in [0, 1].

    0 when the student is sure of every given tag; near 1 when it is sure that some word's
    tag is wrong. A tag the student does not know (a label it never saw) has probability 0.
    A sentence without words scores 0.
    """
    n_words = prediction.probs.shape[0]
    if n_words == 0:
        return 0.0
    if not prediction.labels:
        raise StudentError("the prediction carries no label list (made by predict_details?)")
    tags = spans_to_tags(n_words, spans)
    column = {t: i for i, t in enumerate(prediction.labels)}
    probabilities = [float(prediction.probs[w, column[t]]) if t in column else 0.0 for w, t in enumerate(tags)]
    return float(np.clip(1.0 - min(probabilities), 0.0, 1.0))
