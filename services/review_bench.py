"""``bench review``: server-side time of "accept and next" on a big generated project.

    python -m core.cli bench review --items 100000 --json
    python bench/review.py --items 100000 --json

Generates a project of N items in a temporary SQLite database (bulk INSERTs, synthetic
sentences with gold source spans, projected target spans with confidences, a student
span set and word alignments), computes the queue numbers, then runs the Review page's
own code path (services.editor.handle_event for "accept all", which writes the edit and
chooses the next item, then services.review.load_view + core.annotations.editor.editor_data for the
item shown next) for ``--cycles`` cycles. Prints ``items, p50_ms, p95_ms`` (and the
page-open time, the generation and queue-number times).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

__all__ = ["generate_project", "bench_review"]

LABELS = ["PER", "ORG", "LOC", "MISC"]
_WORDS = (
    "the commission parliament council report member states european union vote debate proposal "
    "agreement budget policy market citizens rights energy climate trade security minister president "
    "question answer amendment directive regulation committee group session today tomorrow"
).split()
_NAMES = "Anna Weber Maria Schmidt Paris Berlin Madrid Brussels Siemens Airbus Europol Lisbon Rome Kohl".split()


def _sentence(rng: random.Random, n: int) -> tuple[list[str], list[tuple[int, int, str]]]:
    words = [rng.choice(_WORDS) for _ in range(n)]
    spans: list[tuple[int, int, str]] = []
    pos = rng.randrange(0, 3)
    while pos < n - 2 and len(spans) < 3:
        length = rng.choice((1, 1, 2))
        for k in range(length):
            words[pos + k] = rng.choice(_NAMES)
        spans.append((pos, pos + length, rng.choice(LABELS)))
        pos += length + rng.randrange(2, 6)
    return words, spans


def _tokens(words: list[str]) -> tuple[str, list[list[Any]]]:
    toks, pos = [], 0
    for w in words:
        toks.append([w, pos, pos + len(w)])
        pos += len(w) + 1
    return " ".join(words), toks


def _span(toks: list[list[Any]], start: int, end: int, label: str, confidence: float | None) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label, "char_start": toks[start][1], "char_end": toks[end - 1][2], "confidence": confidence}


def generate_project(s: Session, n_items: int, seed: int = 0, chunk: int = 5000) -> int:
    """A project of ``n_items`` synthetic items written with bulk INSERTs (committed chunk by
    chunk: this is a benchmark's own database); returns its id."""
    from sqlalchemy import insert

    from db import models as orm
    from db.models import utcnow
    from db.projects import create_project

    rng = random.Random(seed)
    project_id = create_project(s, f"bench-review-{n_items}", "en", "de", LABELS).id
    s.commit()
    now = utcnow()
    for base in range(0, n_items, chunk):
        items, sets, aligns = [], [], []
        meta = []
        for k in range(base, min(n_items, base + chunk)):
            words, spans = _sentence(rng, rng.randrange(8, 26))
            text, toks = _tokens(words)
            t_text, t_toks = _tokens(words)  # a same-length "translation": the alignment is the identity
            items.append(
                {
                    "project_id": project_id, "external_id": f"b{k:07d}", "position": k, "source_text": text,
                    "source_tokens": toks, "source_lang": "en", "target_text": t_text, "target_tokens": t_toks,
                    "target_lang": "de", "image_id": None, "meta": {}, "status": "new", "flag_comment": None,
                    "version": 1, "created_at": now, "updated_at": now,
                }
            )  # fmt: skip
            projected = [_span(t_toks, a, b, lab, round(rng.uniform(0.3, 1.0), 3)) for a, b, lab in spans if rng.random() < 0.9]
            student = [_span(t_toks, a, b, lab if rng.random() < 0.85 else rng.choice(LABELS), round(rng.uniform(0.4, 1.0), 3)) for a, b, lab in spans]
            meta.append(([_span(toks, a, b, lab, None) for a, b, lab in spans], projected, student, len(words)))
        ids = list(s.scalars(insert(orm.Item).returning(orm.Item.id, sort_by_parameter_order=True), items))
        for item_id, (gold, projected, student, n) in zip(ids, meta):
            sets.append({"item_id": item_id, "side": "source", "source": "gold", "spans": gold, "unprojected": None, "settings": None, "created_at": now})
            sets.append({"item_id": item_id, "side": "target", "source": "projection:heuristic", "spans": projected, "unprojected": None, "settings": None, "created_at": now})
            sets.append({"item_id": item_id, "side": "target", "source": "student:bench", "spans": student, "unprojected": None, "settings": {"uncertainty": round(rng.random(), 3)}, "created_at": now})
            aligns.append({"item_id": item_id, "aligner": "bench", "links": [[i, i, 1.0] for i in range(n)], "created_at": now})
        s.execute(insert(orm.SpanSet), sets)
        s.execute(insert(orm.Alignment), aligns)
        s.commit()
    return project_id


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bench_review(n_items: int = 100_000, cycles: int = 200, order: str = "confidence", seed: int = 0, keep: Path | None = None) -> dict[str, Any]:
    """Generate the project, then time ``cycles`` accept-and-next cycles (see module docstring)."""
    from tqdm import tqdm

    from core.annotations.editor import editor_data
    from core.annotations.queue import QueueFilter
    from db.engine import dispose_engine, init_db, session_scope
    from db.queue import queue_next
    from db.review_state import progress as review_progress
    from services.editor import handle_event
    from services.queue import ensure_stats, refresh_stats
    from services.review import load_view

    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        init_db(url)
        t0 = time.perf_counter()
        with session_scope(url) as s:
            project_id = generate_project(s, n_items, seed)
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with session_scope(url) as s:
            bar = tqdm(total=n_items, desc="queue numbers", unit="item", file=sys.stderr, disable=n_items < 5000)
            refresh_stats(s, project_id, progress_cb=lambda done, total: bar.update(done - bar.n))
            bar.close()
        stats_s = time.perf_counter() - t0
        user = "bench"
        filt = QueueFilter(order=order)
        labels = [*LABELS]

        # Opening the page: stale check, first item of the queue, load it, build the editor payload.
        t0 = time.perf_counter()
        with session_scope(url) as s:
            ensure_stats(s, project_id)
            item_id = queue_next(s, project_id, user, filt)
            progress = review_progress(s, project_id, [user])[user]
        with session_scope(url) as s:
            view = load_view(s, item_id, user)
            editor_data(view, labels)
        open_ms = (time.perf_counter() - t0) * 1000

        times: list[float] = []
        for _ in tqdm(range(cycles), desc="accept and next", file=sys.stderr, disable=cycles < 50):
            t0 = time.perf_counter()
            with session_scope(url) as s:
                outcome = handle_event(s, user, project_id, {"action": "accept_all", "item": view.id, "head": view.head}, filt, labels)
            if outcome.message and outcome.message[0] == "error":
                raise RuntimeError(f"accept failed: {outcome.message[1]}")
            with session_scope(url) as s:
                view = load_view(s, outcome.item_id, user)
                editor_data(view, labels)
            times.append((time.perf_counter() - t0) * 1000)
        with session_scope(url) as s:
            done = review_progress(s, project_id, [user])[user].done
        dispose_engine(url)
    if done != progress.done + cycles:
        raise RuntimeError(f"expected {progress.done + cycles} reviewed items after the run, found {done}")
    return {
        "items": n_items,
        "cycles": cycles,
        "order": order,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_percentile(times, 0.95), 2),
        "max_ms": round(max(times), 2),
        "open_ms": round(open_ms, 1),
        "generate_s": round(generate_s, 1),
        "queue_numbers_s": round(stats_s, 1),
    }
