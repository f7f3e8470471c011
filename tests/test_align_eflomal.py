"""eflomal: trained on the batch (+ extra text), symmetrised, word indices back in input order."""

from __future__ import annotations

import random

import pytest

from core.align import EflomalAligner, get_aligner, read_parallel_text

WORDS = ["house", "cat", "dog", "tree", "river", "book", "car", "sun", "moon", "road"]


def shuffled_pairs(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Source and target use the same words in different orders: the right link joins equal words."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = rng.sample(WORDS, rng.randint(3, 6))
        target = [w.upper() for w in words]  # lowercasing must make them match
        rng.shuffle(target)
        pairs.append((words, target))
    return pairs


def test_eflomal_links_identical_words():
    pairs = shuffled_pairs(120)
    out = get_aligner("eflomal").align(pairs)
    assert len(out) == len(pairs)
    total = correct = 0
    for (src, tgt), links in zip(pairs, out):
        for ln in links:
            assert 0 <= ln.src < len(src) and 0 <= ln.tgt < len(tgt) and ln.score in (0.5, 1.0)
            total += 1
            correct += src[ln.src] == tgt[ln.tgt].lower()
    n_words = sum(len(s) for s, _ in pairs)
    assert total >= 0.8 * n_words  # most words get a link
    assert correct >= 0.9 * total  # and nearly all links join the same word


def test_extra_text_is_used_and_only_batch_links_returned(tmp_path):
    extra = shuffled_pairs(100, seed=1)
    joint = tmp_path / "extra.txt"
    joint.write_text("".join(f"{' '.join(s)} ||| {' '.join(t)}\n" for s, t in extra), encoding="utf-8")
    batch = [(["cat", "dog", "sun"], ["SUN", "CAT", "DOG"]), ([], ["CAT"])]
    out = EflomalAligner(extra=joint).align(batch)
    assert len(out) == 2 and out[1] == []  # an empty side has no links (and is not sent to eflomal)
    assert {(ln.src, ln.tgt) for ln in out[0]} == {(0, 1), (1, 2), (2, 0)}


@pytest.mark.parametrize("lowercase", [True, False])
def test_lowercase_option_reaches_eflomal(monkeypatch, lowercase):
    import eflomal.cython

    seen = []
    real = eflomal.cython.read_text

    def spy(fh, lower, prefix_len, suffix_len):
        seen.append(lower)
        return real(fh, lower, prefix_len, suffix_len)

    monkeypatch.setattr(eflomal.cython, "read_text", spy)
    out = EflomalAligner(lowercase=lowercase).align(shuffled_pairs(30, seed=2))
    assert seen == [lowercase, lowercase] and len(out) == 30


def test_read_parallel_text_forms_and_errors(tmp_path):
    (tmp_path / "s.txt").write_text("a b\nc\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("x y\nz\n", encoding="utf-8")
    assert read_parallel_text((tmp_path / "s.txt", tmp_path / "t.txt")) == [(["a", "b"], ["x", "y"]), (["c"], ["z"])]
    (tmp_path / "short.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 2 lines but .*short.txt has 1"):
        read_parallel_text((tmp_path / "s.txt", tmp_path / "short.txt"))
    (tmp_path / "bad.txt").write_text("a ||| b\nno separator\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.txt:2: expected 'source \\|\\|\\| target'"):
        read_parallel_text(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="pair 0 target word 0"):
        read_parallel_text([(["a"], [" "])])
    with pytest.raises(ValueError, match="model must be 1"):
        EflomalAligner(model=4)
