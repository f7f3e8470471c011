"""Strict IOB2 entity scores on hand-made cases whose figures are worked out by hand."""

from __future__ import annotations

import pytest

from core.data import Sentence, make_span
from core.metrics import entity_scores, span_scores


def test_perfect_prediction_scores_one():
    tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    scores = entity_scores(tags, tags)
    assert scores["precision"] == scores["recall"] == scores["f1"] == 1.0
    assert scores["support"] == 3
    assert set(scores["per_label"]) == {"PER", "LOC", "ORG"}


def test_known_figures_overall_and_per_label():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "O", "B-PER"]]
    # PER 1 right (Anna Smith), PER 2 missed; LOC predicted as ORG (wrong type);
    # ORG right; one extra MISC.
    pred = [["B-PER", "I-PER", "O", "B-ORG", "B-MISC"], ["B-ORG", "O", "O"]]
    scores = entity_scores(gold, pred)
    # gold 4 entities, predicted 4, correct 2 (PER, ORG)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    per = scores["per_label"]
    assert per["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert per["LOC"]["recall"] == 0.0 and per["LOC"]["support"] == 1
    assert per["ORG"]["precision"] == pytest.approx(0.5) and per["ORG"]["recall"] == 1.0
    assert per["MISC"]["precision"] == 0.0 and per["MISC"]["support"] == 0


def test_strict_mode_requires_exact_boundaries_and_valid_iob2():
    gold = [["B-ORG", "I-ORG", "I-ORG"]]
    assert entity_scores(gold, [["B-ORG", "I-ORG", "O"]])["f1"] == 0.0  # partial match earns nothing
    # an I- without B- is not an entity in strict IOB2 (lenient conlleval would count it)
    assert entity_scores(gold, [["I-ORG", "I-ORG", "I-ORG"]])["f1"] == 0.0


def test_no_entities_anywhere_gives_zeros():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert scores["f1"] == 0.0 and scores["support"] == 0 and scores["per_label"] == {}


def test_length_mismatch_names_the_sentence():
    with pytest.raises(ValueError, match="sentence 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        entity_scores([["O"], ["O"]], [["O"]])


def test_span_scores_from_spans():
    s = Sentence.from_words(["Angela", "Merkel", "visited", "Paris"])
    gold = [[make_span(s, 0, 2, "PER"), make_span(s, 3, 4, "LOC")]]
    pred = [[make_span(s, 0, 1, "PER"), make_span(s, 3, 4, "LOC", source="student")]]
    scores = span_scores([s], gold, pred)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert span_scores([4], gold, gold)["f1"] == 1.0


def test_span_scores_rejects_overlapping_spans_naming_the_sentence():
    s = Sentence.from_words(["a", "b", "c"])
    bad = [make_span(s, 0, 2, "PER"), make_span(s, 1, 3, "LOC")]
    with pytest.raises(ValueError, match="sentence 0: predicted"):
        span_scores([s], [[]], [bad])


# ---------------------------------------------------------------- scored as written (strict)


def _perturb(lines: list[str], every: int = 5) -> list[str]:
    """Every ``every``-th B- tag written as I- (an I- without a B-: invalid strict IOB2)."""
    out, seen = [], 0
    for line in lines:
        parts = line.rstrip("\n").split("\t") if "\t" in line else line.rstrip("\n").split(" ")
        if len(parts) >= 2 and parts[-1].startswith("B-"):
            seen += 1
            if seen % every == 0:
                parts[-1] = "I-" + parts[-1][2:]
                line = ("\t" if "\t" in line else " ").join(parts) + "\n"
        out.append(line)
    return out


def test_reader_repairs_are_not_scored_as_entities(tmp_path):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from core.formats import read
    from core.metrics import gold_tags, item_scores

    path = tmp_path / "gold.conll"
    path.write_text("Anna\tI-PER\nlives\tO\nin\tO\nBonn\tB-LOC\n\nSiemens\tB-ORG\n\n", encoding="utf-8")
    gold = read(path, "conll")  # repaired on reading: Anna becomes a PER span (with a warning)
    assert [s.label for s in gold[0].source_spans] == ["PER", "LOC"]
    assert gold_tags(gold[0]) == (["I-PER", "O", "O", "B-LOC"], True)
    s0, s1 = gold[0].source, gold[1].source
    pred = [[make_span(s0, 0, 1, "PER"), make_span(s0, 3, 4, "LOC")], [make_span(s1, 0, 1, "ORG")]]
    scores = item_scores(gold, pred)
    raw = [["I-PER", "O", "O", "B-LOC"], ["B-ORG"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG"]]
    assert scores["f1"] == pytest.approx(f1_score(raw, predicted, mode="strict", scheme=IOB2, zero_division=0))
    assert scores["support"] == 2  # strict seqeval: the I-PER without B- is no entity
    assert scores["repaired_gold"] == 1
    # once a person edits the spans, the spans are the gold
    edited = gold[0].with_(source_spans=[make_span(s0, 3, 4, "LOC")])
    assert gold_tags(edited) == (["O", "O", "O", "B-LOC"], False)


def test_perturbed_europarl_scores_equal_seqeval_strict_on_the_raw_tags(europarl_dir, tmp_path):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from core.formats import read
    from core.metrics import item_scores, span_scores

    original = europarl_dir / "es-europarl.test.conll02"
    perturbed = tmp_path / "es-perturbed.conll02"
    perturbed.write_text("".join(_perturb(original.read_text(encoding="utf-8").splitlines(keepends=True))), encoding="utf-8")
    gold = read(perturbed, "conll")
    pred = [it.source_spans for it in read(original, "conll")]
    raw = [[line.split()[-1] for line in block.splitlines() if line.strip() and not line.startswith("-DOCSTART-")]
           for block in perturbed.read_text(encoding="utf-8").split("\n\n") if block.strip()]
    raw = [tags for tags in raw if tags]
    pred_tags = [[("B-" if k == s.start else "I-") + s.label if (s := next((x for x in p if x.start <= k < x.end), None)) else "O"
                  for k in range(len(t))] for p, t in zip(pred, raw)]
    assert len(raw) == len(gold)
    strict = f1_score(raw, pred_tags, mode="strict", scheme=IOB2, zero_division=0)
    scores = item_scores(gold, pred)
    assert scores["f1"] == pytest.approx(strict)
    assert scores["repaired_gold"] > 0
    repaired = span_scores([it.source for it in gold], [it.source_spans for it in gold], pred)["f1"]
    assert repaired > strict  # what conlleval-style repair would report: not what we report
