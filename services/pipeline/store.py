"""The pipeline's use of the database around the stages: which batches are pending, what a stage reads,
how its output is written, and the status report.

Batches are fixed by position: batch ``b`` is the project's items ``b*size .. (b+1)*size-1``
in original order, and a stage runs on the items of a batch that still need it. A batch's
results and its "done" marks are written in one transaction, so a run killed at any moment
resumes with whole batches, built exactly as an uninterrupted run builds them (which matters
for stages whose output depends on the batch, like a statistical aligner or padded model
inputs). Writes are keyed by (item, span set / aligner, stage key): running a stage again
replaces its own rows and never touches another stage's.

When a stage changes an item's input for later stages (a new target sentence, other teacher
spans, a new back-translation), the later stages' marks of that item are cleared, so they
run again instead of keeping results that no longer match.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy.orm import Session

from core.annotations.ledger import has_human_labels, labels
from core.annotations.records import ItemRecord
from core.data import Item, Span
from core.pipeline.stages import PipelineError, StageBatch, StageOutput, StageSpec, alignment_name, teacher_set_name
from db.items import item_db_ids, load_items, update_item_meta
from db.projects import add_project_labels, get_project, project_counts
from db.span_sets import save_stage_results
from db.stages import clear_stages, items_needing_stage, items_with_stage, mark_stage, stage_counts, stage_failures

__all__ = [
    "pending_batches",
    "target_pairs",
    "load_stage_batch",
    "save_stage_output",
    "record_failures",
    "pipeline_status",
    "stages_done_count",
]

DOWNSTREAM = {
    "pivot": ("teacher:", "align:", "project:"),
    "teacher": ("project:",),
    "translate": ("translate:", "back-translate:", "align:", "project:"),
    "back-translate": ("align:", "project:"),
}


def pending_batches(
    s: Session, project_id: int, spec: StageSpec, ordered_ids: Sequence[int], batch_size: int
) -> list[tuple[int, list[int]]]:
    """(batch number, item ids) of the fixed batches with items that need ``spec`` and have
    every prerequisite stage done; failed items are tried again."""
    pending = set(items_needing_stage(s, project_id, spec.key, retry_failed=True))
    ready: set[int] | None = None
    for key in spec.requires:
        done = items_with_stage(s, project_id, key, "done")
        ready = done if ready is None else ready & done
    out: list[tuple[int, list[int]]] = []
    for b, start in enumerate(range(0, len(ordered_ids), batch_size)):
        ids = [i for i in ordered_ids[start : start + batch_size] if i in pending and (ready is None or i in ready)]
        if ids:
            out.append((b, ids))
    return out


def stages_done_count(s: Session, project_id: int, keys: Sequence[str], scope: set[int]) -> int:
    """Items of ``scope`` with a done or failed mark, summed over the stage keys."""
    total = 0
    for key in keys:
        total += len((items_with_stage(s, project_id, key, "done") | items_with_stage(s, project_id, key, "failed")) & scope)
    return total


def _source_for_projection(rec: ItemRecord, teacher: str) -> tuple[list[Span], str] | None:
    """The source spans to project: what people decided (ledger), else gold, else this
    run's teacher's."""
    decided = labels(rec.annotations, "source")
    if decided.kind in ("adjudicated", "reviewed"):
        return list(decided.spans), decided.source or "human"
    if rec.annotations.span_set("source", "gold") is not None:
        return rec.spans_of("source", "gold"), "gold"
    name = teacher_set_name(teacher)
    if name is not None and rec.annotations.span_set("source", name) is not None:
        return rec.spans_of("source", name), name
    return None


def target_pairs(s: Session, project_id: int, ids: Sequence[int], chunk: int = 2000) -> list[tuple[list[str], list[str]]]:
    """(source words, target words) of every item among ``ids`` with both sentences, in item
    order: the parallel text an aligner can adapt to (no labels read)."""
    pairs: list[tuple[list[str], list[str]]] = []
    ids = list(ids)
    for start in range(0, len(ids), chunk):
        for rec in load_items(s, ids[start : start + chunk]):
            it = rec.as_item()
            if it.target is not None and len(it.source) and len(it.target):
                pairs.append((list(it.source.words), list(it.target.words)))
    return pairs


def load_stage_batch(s: Session, project_id: int, spec: StageSpec, index: int, ids: Sequence[int]) -> StageBatch:
    """What ``spec`` reads for these items. Items it cannot run on get ``context[id]["error"]``."""
    from core.teacher import GOLD_FLAG

    items: list[Item] = []
    context: dict[str, dict[str, Any]] = {}
    for rec in load_items(s, list(ids)):
        it = rec.as_item()
        ctx: dict[str, Any] = {"position": rec.position}
        if spec.kind == "teacher":
            decided = labels(rec.annotations, "source")
            if decided.kind in ("adjudicated", "reviewed"):
                it = it.with_(source_spans=list(decided.spans), meta={**it.meta, GOLD_FLAG: True})
            elif rec.annotations.span_set("source", "gold") is not None:
                it = it.with_(source_spans=rec.spans_of("source", "gold"), meta={**it.meta, GOLD_FLAG: True})
        elif spec.kind == "translate":
            ctx["target_protected"] = has_human_labels(rec.annotations, "target")
        elif spec.kind == "pivot":
            ctx["source_protected"] = has_human_labels(rec.annotations, "source")
            if it.target is None or not it.target.tokens:
                ctx["error"] = "no original (target-language) sentence to translate"
        elif spec.kind in ("back-translate", "align") and it.target is None:
            ctx["error"] = "no target sentence (translate it first, or import it with its translation)"
        elif spec.kind == "project":
            chosen = _source_for_projection(rec, spec.options["teacher"])
            if it.target is None:
                ctx["error"] = "no target sentence to project onto"
            elif chosen is None:
                ctx["error"] = f"no source labels: neither gold nor from teacher {spec.options['teacher']}"
            else:
                spans, origin = chosen
                ctx["source_spans"] = origin
                links = rec.alignments.get(alignment_name(spec.options["aligner"]), [])
                it = it.with_(source_spans=list(spans), target_spans=[], alignment=links)
        if spec.kind in ("align",):
            it = it.with_(alignment=[], target_spans=[])
        items.append(it)
        context[it.id] = ctx
    return StageBatch(index, items, context)


def save_stage_output(s: Session, project_id: int, spec: StageSpec, batch: StageBatch, out: StageOutput) -> None:
    """Write one batch's results and marks (the caller commits them as one transaction)."""
    from core.teacher import has_gold

    key = spec.key
    before = {it.id: it for it in batch.items}
    errors = dict(out.errors)
    ok = [it for it in out.items if it.id not in errors]
    settings: dict[str, Any] = {"stage": key, "spec": spec.name, **spec.options}

    if spec.kind == "teacher":
        predicted = [it for it in ok if not has_gold(before[it.id])]
        kept = [it for it in ok if has_gold(before[it.id])]
        if predicted:
            set_name = spec.output_set
            save_stage_results(s, project_id, key, predicted, outputs={"source": set_name}, settings=settings)
            clear_stages(s, _db_ids(s, project_id, [it.id for it in predicted]), DOWNSTREAM["teacher"])
            _add_labels(s, project_id, {sp.label for it in predicted for sp in it.source_spans})
        save_stage_results(s, project_id, key, kept, errors=errors)
        return

    if spec.kind in ("translate", "pivot"):  # a new sentence on one side: target, or the pivot (source)
        side = "target" if spec.kind == "translate" else "source"
        changed: list[Item] = []
        same: list[Item] = []
        for it in ok:
            old, new = getattr(before[it.id], side), getattr(it, side)
            if old is not None and old.text == new.text and old.tokens == new.tokens:
                same.append(it)
            elif old is not None and (old.text or old.tokens) and batch.context.get(it.id, {}).get(f"{side}_protected"):
                errors[it.id] = f"the current {'target' if side == 'target' else 'pivot'} sentence has human or gold labels; a new translation would not match them"
            else:
                changed.append(it)
        if changed:
            clear_stages(s, _db_ids(s, project_id, [it.id for it in changed]), DOWNSTREAM[spec.kind])
        written = same + changed
        save_stage_results(s, project_id, key, written, errors=errors, pivots=side == "source")
        update_item_meta(s, project_id, {it.id: {"translator" if side == "target" else "pivot_translator": spec.name} for it in written})
        return

    if spec.kind == "back-translate":
        changed_ids = [
            it.id for it in ok if before[it.id].meta.get("back_translation") not in (None, it.meta.get("back_translation"))
        ]
        if changed_ids:
            clear_stages(s, _db_ids(s, project_id, changed_ids), DOWNSTREAM["back-translate"])
        update_item_meta(
            s, project_id, {it.id: {"back_translation": it.meta["back_translation"], "back_translator": spec.name} for it in ok}
        )
        save_stage_results(s, project_id, key, ok, errors=errors)
        return

    if spec.kind == "align":
        save_stage_results(s, project_id, key, ok, aligner=alignment_name(spec.name), errors=errors)
        return

    if spec.kind == "project":
        by_origin: dict[str, list[Item]] = {}
        for it in ok:  # the settings say which source spans were projected
            by_origin.setdefault(batch.context.get(it.id, {}).get("source_spans") or "", []).append(it)
        for origin, group in by_origin.items():
            save_stage_results(
                s, project_id, key, group, outputs={"target": spec.output_set},
                unprojected={it.id: out.unprojected.get(it.id, []) for it in group},
                settings={**settings, "source_spans": origin},
            )
        _add_labels(s, project_id, {sp.label for it in ok for sp in it.target_spans})  # MISC of a name that became an adjective
        save_stage_results(s, project_id, key, [], errors=errors)
        return
    raise PipelineError(f"unknown stage kind {spec.kind!r}")


def record_failures(s: Session, project_id: int, spec: StageSpec, errors: dict[str, str]) -> None:
    """Mark items failed for a stage (used when writing their results failed)."""
    for ext_id, message in errors.items():
        mark_stage(s, _db_ids(s, project_id, [ext_id]), spec.key, error=message)


def _db_ids(s: Session, project_id: int, external_ids: Sequence[str]) -> list[int]:
    found = item_db_ids(s, project_id, external_ids)
    return [found[e] for e in external_ids if e in found]


def _add_labels(s: Session, project_id: int, new: set[str]) -> None:
    """Labels a teacher or a projection produced that the project does not list yet are appended to it."""
    add_project_labels(s, project_id, sorted(new))


def pipeline_status(s: Session, project: int | str, failures_limit: int = 100) -> dict[str, Any]:
    """Per stage: items done, failed and pending; the failures with item ids and errors.

    Stages are those of the project's last pipeline run (in run order) followed by any other
    stage that has marks.
    """
    info = get_project(s, project)
    total = project_counts(s, info.id)["total"]
    counts = stage_counts(s, info.id)
    last = (info.settings.get("pipeline") or {}).get("stages") or []
    order = [k for k in last if isinstance(k, str)] + sorted(k for k in counts if k not in last)
    stages = {}
    for key in order:
        c = counts.get(key, {"done": 0, "failed": 0})
        stages[key] = {"done": c["done"], "failed": c["failed"], "pending": max(0, total - c["done"] - c["failed"])}
    n_failed = sum(c["failed"] for c in counts.values())
    failures = [
        {"item": f.external_id, "stage": f.stage, "error": f.error}
        for f in stage_failures(s, info.id, limit=failures_limit)
    ]
    return {
        "project": info.name,
        "items": total,
        "stages": stages,
        "complete": bool(order) and all(v["done"] == total for k, v in stages.items() if k in last),
        "failures": failures,
        "failures_total": n_failed,
    }

