"""Statistical word alignment with eflomal (Östling & Tiedemann 2016), symmetrised.

eflomal learns its lexical model from the text it aligns, so it is trained on the batch's
own sentence pairs plus any extra parallel text given (more text, better links), in both
directions; the two directions are symmetrised with grow-diag-final-and.

Link scores: 1.0 for links both directions found, 0.5 for links only one direction found
(added by the symmetrisation).

Not deterministic: the eflomal 2.0 sampler seeds itself from /dev/urandom and offers no
seed, so links differ between runs, the more the less text it learns from (799 Europarl
en-de pairs alone: 0.72 Jaccard between two runs with 3 samplers, 0.77 with 8); extra
parallel text is the remedy. Runtime: eflomal runs ``5000 / sqrt(sentences)`` sampling
iterations by default (``rel_iterations`` scales that), so small batches are not cheap:
about a minute for those 799 pairs on a busy 2-core machine.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Sequence, Union

from core.align.base import AlignError, Pair, check_pairs, links_from_scores
from core.align.combine import COMBINATIONS, combine_points
from core.data import Link

__all__ = ["EflomalAligner", "read_parallel_text"]

ParallelText = Union[Sequence[Pair], str, Path, tuple[Union[str, Path], Union[str, Path]]]
_WS = re.compile(r"\s+")


def read_parallel_text(source: ParallelText) -> list[Pair]:
    """Extra training text: pairs, a ``src ||| tgt`` file (fast_align style), or two parallel files.

    Files hold one whitespace-tokenized sentence per line. Raise ValueError naming the file
    and line when a line is malformed or the two files differ in length.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        pairs: list[Pair] = []
        for lineno, line in enumerate(_read_lines(path), 1):
            parts = line.split(" ||| ")
            if len(parts) != 2:
                raise AlignError(f"{path}:{lineno}: expected 'source ||| target'")
            pairs.append((parts[0].split(), parts[1].split()))
        return pairs
    if isinstance(source, tuple) and len(source) == 2 and all(isinstance(p, (str, Path)) for p in source):
        src_path, tgt_path = Path(source[0]), Path(source[1])
        src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
        if len(src_lines) != len(tgt_lines):
            raise AlignError(f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}")
        return [(s.split(), t.split()) for s, t in zip(src_lines, tgt_lines)]
    pairs = [(list(p[0]), list(p[1])) for p in source]
    check_pairs(pairs, "eflomal extra text")
    return pairs


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AlignError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise AlignError(f"{path}: not UTF-8 ({exc})") from exc


def _line(words: Sequence[str]) -> str:
    # eflomal splits lines on whitespace: a word with inner spaces must stay one token
    return " ".join(_WS.sub("_", w.strip()) for w in words)


def _parse_links(line: str) -> set[tuple[int, int]]:
    return {(int(s), int(t)) for s, t in (tok.split("-") for tok in line.split())}


class EflomalAligner:
    """eflomal trained on the batch (+ ``extra`` parallel text), symmetrised (default gdfa)."""

    name = "eflomal"

    def __init__(
        self,
        extra: ParallelText | None = None,
        lowercase: bool = True,
        model: int = 3,
        iterations: tuple[int, int, int] | None = None,
        rel_iterations: float = 1.0,
        n_samplers: int = 3,
        null_prior: float = 0.2,
        symmetrize: str = "gdfa",
        progress: bool | None = None,
    ) -> None:
        """``progress``: let eflomal print its own progress to stderr (None/False: quiet)."""
        if model not in (1, 2, 3):
            raise AlignError(f"eflomal: model must be 1 (IBM1), 2 (+HMM) or 3 (+fertility), got {model}")
        if symmetrize not in COMBINATIONS:
            raise AlignError(f"eflomal: unknown symmetrize {symmetrize!r}; choose one of {list(COMBINATIONS)}")
        if iterations is not None and len(iterations) != 3:
            raise AlignError("eflomal: iterations must be (IBM1, HMM, fertility) iteration counts")
        self.extra = read_parallel_text(extra) if extra is not None else []
        self.lowercase = lowercase
        self.model = model
        self.iterations = tuple(iterations) if iterations is not None else None
        self.rel_iterations = rel_iterations
        self.n_samplers = n_samplers
        self.null_prior = null_prior
        self.symmetrize = symmetrize
        self.progress = bool(progress)

    def align(self, pairs: list) -> list[list[Link]]:
        check_pairs(pairs, self.name)
        both = self.align_directions(pairs)
        out: list[list[Link]] = []
        for fwd, rev in both:
            kept = combine_points(self.symmetrize, fwd, rev)
            out.append(links_from_scores({p: 1.0 if (p in fwd and p in rev) else 0.5 for p in kept}))
        return out

    def align_directions(self, pairs: list) -> list[tuple[set[tuple[int, int]], set[tuple[int, int]]]]:
        """Forward and reverse links of each pair (both as (src, tgt)), before symmetrisation."""
        from eflomal.cython import align as eflomal_align
        from eflomal.cython import read_text, write_text

        usable = [k for k, p in enumerate(pairs) if len(p[0]) and len(p[1])]
        corpus = [pairs[k] for k in usable] + [p for p in self.extra if len(p[0]) and len(p[1])]
        result: list[tuple[set, set]] = [(set(), set()) for _ in pairs]
        if not usable:
            return result
        with tempfile.TemporaryDirectory(prefix="eflomal-") as tmp:
            files = {name: str(Path(tmp) / name) for name in ("src", "tgt", "fwd", "rev")}
            for side, name in ((0, "src"), (1, "tgt")):
                text = "".join(_line(p[side]) + "\n" for p in corpus)
                sents, index = read_text(io.StringIO(text), self.lowercase, 0, 0)
                with open(files[name], "wb") as fh:
                    write_text(fh, tuple(sents), len(index))
            eflomal_align(
                files["src"], files["tgt"],
                links_filename_fwd=files["fwd"], links_filename_rev=files["rev"],
                model=self.model, n_iterations=self.iterations, n_samplers=self.n_samplers,
                quiet=not self.progress, rel_iterations=self.rel_iterations, null_prior=self.null_prior,
            )  # fmt: skip
            fwd_lines = Path(files["fwd"]).read_text(encoding="utf-8").splitlines()
            rev_lines = Path(files["rev"]).read_text(encoding="utf-8").splitlines()
        if len(fwd_lines) < len(usable) or len(rev_lines) < len(usable):
            raise RuntimeError(f"eflomal wrote {len(fwd_lines)}/{len(rev_lines)} link lines for {len(corpus)} pairs")
        for row, k in enumerate(usable):
            result[k] = (_parse_links(fwd_lines[row]), _parse_links(rev_lines[row]))
        return result
