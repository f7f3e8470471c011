"""The pipeline stages as pure batch functions, and the settings that name them.

A stage is ``list[Item] -> list[Item]``: the teacher labels sources, the translator fills
targets, the back-translator stores the target translated back, the aligner adds links, the
projection adds target spans.

Two directions (``PipelineConfig.direction``). translate-train: labelled or teacher-labelled
source sentences are translated and the labels projected onto the translation. translate-test:
the imported sentences are the *originals* in the target language, stored as the target side
as written; the ``pivot`` stage translates each into the source language (usually English),
the teacher labels that pivot, and the projection puts its spans back on the original tokens.
Everything after the pivot is the same in both directions, so Review, export and training
treat the target side as the sentence being labelled either way. :class:`StageRunner` loads a stage's model once and runs it on
batches, recording an item that fails instead of failing the batch; the database reads and
writes around it live in ``services.pipeline.store``, so the same runner works in a loop and in
a Ray actor.

Every stage has a key, ``<kind>:<settings>`` (``align:simalign:itermax``,
``project:ilp+simalign:itermax``), under which each item records that the stage is done.
Running a stage with other settings is another key: its results go beside the old ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from core.data import Item, Span
from core.errors import LabelBridgeError
from core.teacher import DEFAULT_TEACHER

__all__ = [
    "PipelineError",
    "STAGE_KINDS",
    "DIRECTIONS",
    "as_originals",
    "MAX_STAGE_KEY",
    "PipelineConfig",
    "StageSpec",
    "StageBatch",
    "StageOutput",
    "StageLoadError",
    "StageRunner",
    "plan_stages",
    "adapts_aligner",
    "with_adapted_encoder",
    "stage_key",
    "alignment_name",
    "teacher_set_name",
    "projection_set_name",
    "teacher_stage",
    "translate_stage",
    "pivot_stage",
    "back_translate_stage",
    "align_stage",
    "project_stage",
    "encode_batch",
    "decode_batch",
    "encode_output",
    "decode_output",
]

STAGE_KINDS = ("pivot", "teacher", "translate", "back-translate", "align", "project")
DIRECTIONS = ("translate-train", "translate-test")
MAX_STAGE_KEY = 64  # db.models.ItemStage.stage is String(64)
MAX_NAME = 100  # span set sources and aligner names are String(100)


class PipelineError(LabelBridgeError):
    """A pipeline configuration that cannot run (unknown engine, wrong languages, ...)."""


class StageLoadError(RuntimeError):
    """A stage whose model or tool cannot be loaded: the run stops (no item could pass)."""


def _default_aligner() -> str:
    from core.projection import DEFAULT_ALIGNER

    return DEFAULT_ALIGNER


def _default_method() -> str:
    from core.projection import DEFAULT_METHOD

    return DEFAULT_METHOD


@dataclass(frozen=True)
class PipelineConfig:
    """What one pipeline run does. ``translator`` None: the items bring their own targets."""

    src: str
    tgt: str
    teacher: str = DEFAULT_TEACHER
    translator: str | None = None
    back_translator: str | None = None
    aligner: str = ""  # "" = core.projection.DEFAULT_ALIGNER
    method: str = ""  # "" = core.projection.DEFAULT_METHOD
    batch_size: int = 256  # items per batch and transaction: an Apertium call costs 0.12 s to start, so 32 spent 60% of translation there
    label_map: Mapping[str, str] | str | None = None  # None: the teacher's default
    direction: str = "translate-train"  # or "translate-test": the items are target-language originals
    candidates: str = ""  # a target-language token classifier (teacher spec) whose spans join the matching's candidates

    def resolved(self) -> "PipelineConfig":
        """The same config with the default aligner and method filled in."""
        return PipelineConfig(
            self.src,
            self.tgt,
            self.teacher,
            self.translator or None,
            self.back_translator or None,
            normalize_spec(self.aligner or _default_aligner()),
            self.method or _default_method(),
            self.batch_size,
            dict(self.label_map) if isinstance(self.label_map, Mapping) else self.label_map,
            self.direction,
            (self.candidates or "").strip(),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PipelineConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def normalize_spec(spec: str) -> str:
    return "".join(spec.split())


def _fit(name: str, limit: int) -> str:
    """``name``, or its start and a hash of all of it when longer than a column allows."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
    return f"{name[: limit - 11]}~{digest}"


def stage_key(kind: str, name: str) -> str:
    """``kind:name``, shortened with a hash when longer than the database column allows."""
    return _fit(f"{kind}:{name}", MAX_STAGE_KEY)


def alignment_name(aligner: str) -> str:
    """The name an aligner's links are stored under (db.models.Alignment.aligner, 100 chars)."""
    return _fit(normalize_spec(aligner), MAX_NAME)


def _short_model_name(model: str) -> str:
    # The rule core.teacher uses for Teacher.source (a test checks the two agree).
    path = Path(model)
    return path.name if path.exists() else model


def teacher_set_name(teacher: str) -> str | None:
    """The source span set a teacher spec writes (``teacher:<model>``); None for ``gold``."""
    if teacher == "gold":
        return None
    _, _, model = teacher.partition(":")
    return f"teacher:{_short_model_name(model)}"


def _candidate_model_name(spec: str) -> str:
    """A model's short name; a project's student version folder (``.../3-project/2``) keeps
    its project folder, so version 2 of two projects are two names."""
    path = Path(spec.partition(":")[2] or spec)
    if path.exists():
        return f"{path.parent.name}@{path.name}" if path.name.isdigit() else path.name
    return spec.partition(":")[2] or spec


def projection_set_name(method: str, aligner: str, candidates: str = "", join: bool = False) -> str:
    """The target span set of a projection: ``projection:<method>+<aligner>``, then
    ``+candidates:<model>`` when a target-language model proposed candidates and ``+join``
    when touching pieces of one label were joined (translate-test)."""
    tail = f"+candidates:{_candidate_model_name(candidates)}" if candidates else ""
    tail += "+join" if join else ""
    return _fit(f"projection:{method}+{normalize_spec(aligner)}{tail}", MAX_NAME)


def _label_map_tag(label_map: Mapping[str, str] | str | None) -> str:
    if label_map is None:
        return ""
    text = json.dumps(label_map, sort_keys=True) if not isinstance(label_map, str) else label_map
    return "#" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a run: its kind, the model/tool it uses, its options and prerequisites."""

    kind: str
    name: str  # teacher/translator/aligner spec, or "<method>+<aligner>" for project
    options: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # stage keys that must be done for an item first

    @property
    def key(self) -> str:
        if self.kind == "teacher":
            return stage_key(self.kind, self.name + _label_map_tag(self.options.get("label_map")))
        if "fingerprint" in self.options:  # a translation file: its name and content, not its path
            return stage_key(self.kind, f"provided:{Path(self.name.partition(':')[2]).name}@{self.options['fingerprint']}")
        return stage_key(self.kind, self.name)

    @property
    def output_set(self) -> str | None:
        """The span set this stage writes (teacher and project), else None."""
        if self.kind == "teacher":
            return teacher_set_name(self.name)
        if self.kind == "project":
            o = self.options
            return projection_set_name(o["method"], o["aligner"], o.get("candidates", ""), bool(o.get("join")))
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": self.options, "requires": list(self.requires)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StageSpec":
        return cls(data["kind"], data["name"], dict(data.get("options") or {}), tuple(data.get("requires") or ()))


def _uses_back_translation(aligner: str) -> bool:
    from core.align import spec_kinds

    return bool(spec_kinds(aligner) & {"bt", "backtranslation"})


def _translator_spec(spec: str, c: PipelineConfig) -> tuple[str, dict[str, Any]]:
    """(name, options) of a translate stage; a translation file is keyed by its content, so
    an edited file is a new stage (its changed lines are translated again)."""
    options: dict[str, Any] = {"src": c.src, "tgt": c.tgt}
    if not spec.startswith("provided:"):
        return normalize_spec(spec), options
    path = Path(spec.partition(":")[2])
    try:
        options["fingerprint"] = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    except OSError as exc:
        raise PipelineError(f"translation file {path}: {exc.strerror or exc}") from None
    return spec, options


def plan_stages(config: PipelineConfig) -> list[StageSpec]:
    """The stages of a run in order, each with the keys of the stages it needs."""
    c = config.resolved()
    if c.batch_size < 1:
        raise PipelineError(f"batch size must be >= 1, got {c.batch_size}")
    if c.direction not in DIRECTIONS:
        raise PipelineError(f"unknown direction {c.direction!r}; expected one of {', '.join(DIRECTIONS)}")
    if c.direction == "translate-test":
        return _plan_translate_test(c)
    if c.back_translator is None and _uses_back_translation(c.aligner):
        if c.translator is None or c.translator.startswith("provided:"):
            raise PipelineError(
                f"aligner {c.aligner} needs back-translations: give a back-translator "
                "(a provided translation file cannot translate back)"
            )
        c = PipelineConfig(**{**c.to_json(), "back_translator": c.translator})
    teacher = StageSpec("teacher", c.teacher, {"label_map": c.label_map} if c.label_map is not None else {})
    stages = [teacher]
    target_keys: tuple[str, ...] = ()
    if c.translator:
        translate = StageSpec("translate", *_translator_spec(c.translator, c))
        stages.append(translate)
        target_keys = (translate.key,)
    align_needs = target_keys
    if c.back_translator:
        back = StageSpec("back-translate", *_translator_spec(c.back_translator, c), target_keys)
        stages.append(back)
        align_needs = target_keys + (back.key,)
    align = StageSpec("align", c.aligner, {}, align_needs)
    stages.append(align)
    stages.append(_project_spec(c, teacher, align))
    return stages


def _project_spec(c: PipelineConfig, teacher: StageSpec, align: StageSpec) -> StageSpec:
    """The project stage; a candidate model is part of its name, so a run with one is a new stage."""
    options: dict[str, Any] = {"method": c.method, "aligner": c.aligner, "teacher": c.teacher}
    name = f"{c.method}+{c.aligner}"
    if c.candidates:
        from core.projection import METHODS, project_candidates

        if c.candidates == "gold" or ":" not in c.candidates:
            raise PipelineError(f"candidates must come from a model (student:FOLDER, student:PROJECT@VERSION, hf:ID), not {c.candidates!r}")
        if c.method in METHODS and METHODS[c.method][0] is not project_candidates:
            raise PipelineError(f"candidates from a target model need a matching method (ilp, greedy, ilp-fused, greedy-fused), not {c.method!r}")
        options["candidates"] = c.candidates
        name += f"+candidates:{c.candidates}"
    if c.direction == "translate-test":  # the pivot splits names: the teacher's touching pieces on the original are one entity
        options["join"] = True
        name += "+join"
    return StageSpec("project", name, options, (teacher.key, align.key))


def _plan_translate_test(c: PipelineConfig) -> list[StageSpec]:
    """pivot (original -> source language), teacher on the pivot, align, project back."""
    if c.teacher == "gold":
        raise PipelineError("translate-test labels target-language originals: the teacher must be a model, not 'gold'")
    if c.back_translator or _uses_back_translation(c.aligner):
        raise PipelineError(f"aligner {c.aligner}: back-translation is for translate-train; in translate-test the pivot is the translation")
    if not c.translator:
        raise PipelineError("translate-test needs a translator for the pivot (apertium, hf:MODEL, or provided:FILE with your translations)")
    pivot = StageSpec("pivot", *_translator_spec(c.translator, c))
    stages, needs = [pivot], (pivot.key,)
    teacher = StageSpec("teacher", c.teacher, {"label_map": c.label_map} if c.label_map is not None else {}, needs)
    align = StageSpec("align", c.aligner, {}, needs)
    return [*stages, teacher, align, _project_spec(c, teacher, align)]


def as_originals(items: Sequence[Item], src: str, tgt: str) -> list[Item]:
    """Items read from a file of target-language sentences, laid out for translate-test: each
    sentence (and its labels, if the file has them) becomes the target side exactly as read,
    and the source side is left empty for the pivot stage to fill (language ``src``). Items
    that already have a target (an imported translation pair) are refused: say which side is
    the original by importing only the originals."""
    from core.data import Sentence

    out = []
    for it in items:
        if it.target is not None:
            raise PipelineError(f"item {it.id}: a translate-test file holds only the original sentences; it has a translation too")
        original = Sentence(it.source.text, it.source.tokens, it.source.lang or tgt)
        out.append(it.with_(source=Sentence("", [], src), source_spans=[], target=original, target_spans=list(it.source_spans),
                            alignment=[], labelled_by={"target": it.labelled_by["source"]} if "source" in it.labelled_by else {}))
    return out


# --------------------------------------------------------------------------- batches


@dataclass
class StageBatch:
    """The input of one stage for one pipeline batch, read from the database.

    ``context`` holds per item what the stage or its writer needs beyond the item:
    ``position`` (its place in the project), ``target_protected`` (people or gold labelled
    the current target, so it must not be replaced).
    """

    index: int
    items: list[Item]
    context: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StageOutput:
    """What a stage produced for a batch: items that passed and the error of each that failed."""

    items: list[Item]
    errors: dict[str, str] = field(default_factory=dict)
    unprojected: dict[str, list[Span]] = field(default_factory=dict)
    seconds: float = 0.0


def _item_json(item: Item) -> dict[str, Any]:
    from core.formats.jsonl import item_to_json

    return item_to_json(item)


def _item_from(obj: Mapping[str, Any]) -> Item:
    from core.formats.jsonl import item_from_json

    def refuse(message: str) -> None:
        raise PipelineError(f"item {obj.get('id')!r} changed while encoding it: {message}")

    return item_from_json(dict(obj), str(obj.get("id")), refuse)


def _span_json(span: Span) -> list[Any]:
    return [span.start, span.end, span.label, span.char_start, span.char_end, span.source, span.confidence]


def encode_batch(batch: StageBatch) -> str:
    """JSON text of a batch (for Ray rows and subprocesses); :func:`decode_batch` reverses it."""
    return json.dumps({"index": batch.index, "items": [_item_json(it) for it in batch.items], "context": batch.context})


def decode_batch(text: str) -> StageBatch:
    data = json.loads(text)
    return StageBatch(int(data["index"]), [_item_from(o) for o in data["items"]], dict(data["context"]))


def encode_output(out: StageOutput) -> str:
    return json.dumps(
        {
            "items": [_item_json(it) for it in out.items],
            "errors": out.errors,
            "unprojected": {k: [_span_json(s) for s in v] for k, v in out.unprojected.items()},
            "seconds": out.seconds,
        }
    )


def decode_output(text: str) -> StageOutput:
    data = json.loads(text)
    return StageOutput(
        [_item_from(o) for o in data["items"]],
        dict(data["errors"]),
        {k: [Span(*s) for s in v] for k, v in data["unprojected"].items()},
        float(data["seconds"]),
    )


# --------------------------------------------------------------------------- stage functions


def teacher_stage(items: list[Item], teacher) -> list[Item]:  # noqa: ANN001 (core.teacher.Teacher)
    """Source spans from the teacher for items without gold; gold always wins.

    With the ``gold`` teacher an item without gold source labels is an error (nothing to
    project), where ``apply_teacher`` would pass it on silently.
    """
    from core.teacher import GoldTeacher, TeacherError, apply_teacher, has_gold

    if isinstance(teacher, GoldTeacher):
        missing = [it.id for it in items if not has_gold(it)]
        if missing:
            raise TeacherError(f"item {missing[0]} has no gold source labels (teacher 'gold')")
    # One chunk for the whole batch; a chunk larger than the batch also keeps apply_teacher's
    # own progress bar off (the pipeline shows one bar per stage).
    return apply_teacher(items, teacher, batch_size=len(items) + 1)


def translate_stage(items: list[Item], translator, src: str, tgt: str) -> list[Item]:  # noqa: ANN001
    """Targets from the translator, the whole batch in one call."""
    from core.translate import translate_items

    return translate_items(items, translator, src, tgt, batch_size=max(1, len(items)))


def pivot_stage(items: list[Item], translator, src: str, tgt: str) -> list[Item]:  # noqa: ANN001
    """Translate-test: the source (pivot) side from the original target sentence, one call per batch."""
    from core.translate import pivot_items

    return pivot_items(items, translator, src, tgt, batch_size=max(1, len(items)))


def back_translate_stage(items: list[Item], translator, src: str, tgt: str) -> list[Item]:  # noqa: ANN001
    """``meta["back_translation"]``: each target translated back into the source language."""
    from core.translate import back_translate

    return back_translate(items, translator, src, tgt, batch_size=max(1, len(items)))


def align_stage(items: list[Item], aligner) -> list[Item]:  # noqa: ANN001 (core.align.Aligner)
    from core.align import align_items

    missing = [it.id for it in items if it.target is None]
    if missing:
        raise PipelineError(f"item {missing[0]} has no target sentence to align")
    return align_items(items, aligner)


def project_stage(items: list[Item], method: str, set_name: str, join: Collection[str] = (), **options: Any) -> list[Item]:
    """Target spans projected with ``method``, their source renamed to ``set_name``.

    The source spans not projected stay in ``meta["unprojected"]`` (as the projection
    writes them); ``options`` go to ``core.projection.project_items``. In the items whose ids
    are in ``join``, touching projected spans of one label become one
    (``core.projection.join_touching``).
    """
    from core.projection import join_touching, project_items

    projected = project_items(items, method=method, **options)
    out = []
    for it in projected:
        spans = join_touching(it.target, it.target_spans) if it.id in join else it.target_spans  # type: ignore[arg-type]  # project_items refused items without a target
        out.append(it.with_(target_spans=[Span(s.start, s.end, s.label, s.char_start, s.char_end, set_name, s.confidence) for s in spans]))
    return out


def _teacher_projected(batch: StageBatch, teacher: str | None) -> set[str]:
    """Ids of the batch's items whose projected source spans are ``teacher``'s (not a person's
    or gold): only a teacher's pieces of one name are joined; spans a person kept apart stay
    apart. None (a stage that does not join): no item."""
    name = teacher_set_name(teacher) if teacher else None
    return {i for i, ctx in batch.context.items() if name is not None and ctx.get("source_spans") == name}


# --------------------------------------------------------------------------- running a stage


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:1997] + "..."


def _gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _aligner_options(spec: str) -> dict[str, Any]:
    """Per-kind options for the aligners in a spec: SimAlign on the GPU when there is one."""
    from core.align import spec_kinds

    used = spec_kinds(spec)
    if _gpu() and used & {"simalign", "simalign-tuned"}:
        return {kind: {"device": "cuda"} for kind in used & {"simalign", "simalign-tuned"}}
    return {}


def adapts_aligner(spec: str) -> bool:
    """Whether an aligner spec adapts its encoder to the project's pairs (simalign-tuned)."""
    from core.align import spec_kinds

    return "simalign-tuned" in spec_kinds(spec)


def with_adapted_encoder(stages: list["StageSpec"], folder: str) -> list["StageSpec"]:
    """The stages with the adapted encoder ``folder`` given to the align stage and to the
    project stage's soft alignment (options do not change a stage's key: resume is kept)."""
    from dataclasses import replace

    return [replace(st, options={**st.options, "encoder": folder}) if st.kind in ("align", "project") else st for st in stages]


class StageRunner:
    """A stage with its model loaded once; ``runner(batch)`` returns a :class:`StageOutput`.

    A batch that raises is run again item by item, so one bad item fails alone (with its
    error) and the others pass. Loading errors raise StageLoadError.
    """

    def __init__(self, spec: StageSpec):
        self.spec = spec
        try:
            self._fn = self._load(spec)
        except StageLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader error means the stage cannot run
            raise StageLoadError(f"stage {spec.key}: {_describe(exc)}") from exc

    @staticmethod
    def needs_gpu(spec: StageSpec) -> bool:
        """Whether the stage's model runs on a GPU when one is there (Ray asks for one per actor)."""
        if spec.kind == "teacher":
            return spec.name.startswith("hf:")
        if spec.kind in ("pivot", "translate", "back-translate"):
            return spec.name.startswith("hf:")
        if spec.kind == "align":
            return "simalign" in spec.name
        if spec.kind == "project":
            from core.projection import uses_soft_alignment

            return uses_soft_alignment(spec.options["method"])  # the fused methods run the encoder
        return False

    def _load(self, spec: StageSpec) -> Callable[[StageBatch], list[Item]]:
        o = spec.options
        if spec.kind == "teacher":
            from core.teacher import load_teacher

            teacher = load_teacher(spec.name, o.get("label_map"))
            return lambda b: teacher_stage(b.items, teacher)
        if spec.kind in ("pivot", "translate", "back-translate"):
            from core.translate import ProvidedTranslator, load_translator

            translator = load_translator(spec.name)
            if spec.kind == "pivot":
                if isinstance(translator, ProvidedTranslator) and translator.by_id is None:
                    return lambda b: pivot_stage(b.items, _lines_by_id(translator, b), o["src"], o["tgt"])
                return lambda b: pivot_stage(b.items, translator, o["src"], o["tgt"])
            if spec.kind == "back-translate":
                return lambda b: back_translate_stage(b.items, translator, o["src"], o["tgt"])
            if isinstance(translator, ProvidedTranslator) and translator.by_id is None:
                return lambda b: translate_stage(b.items, _lines_by_id(translator, b), o["src"], o["tgt"])
            return lambda b: translate_stage(b.items, translator, o["src"], o["tgt"])
        if spec.kind == "align":
            from core.align import get_aligner

            options = _aligner_options(spec.name)
            if o.get("encoder"):  # simalign-tuned, adapted by the run on the project's pairs (services.pipeline.run)
                options.setdefault("simalign-tuned", {})["adapted"] = o["encoder"]
            aligner = get_aligner(spec.name, **options)
            if callable(getattr(aligner, "load", None)):
                aligner.load()  # the encoder is loaded here, counted as load time, not in the first batch
            return lambda b: align_stage(b.items, aligner)
        if spec.kind == "project":
            from core.projection import METHODS, uses_soft_alignment

            method, set_name = o["method"], spec.output_set
            if method not in METHODS:
                raise StageLoadError(f"unknown projection method {method!r}; expected one of {', '.join(METHODS)}")
            extra: dict[str, Any] = {"device": "cuda"} if _gpu() and uses_soft_alignment(method) else {}
            join_teacher = o["teacher"] if o.get("join") else None
            if o.get("encoder") and uses_soft_alignment(method):  # an adapted aligner's encoder: the soft alignment reads it too
                extra["encoder"] = o["encoder"]
            if o.get("candidates"):
                from core.projection import MODEL_WEIGHT, with_model_candidates
                from core.teacher import load_teacher

                model = load_teacher(o["candidates"])
                return lambda b: project_stage(with_model_candidates(b.items, model.predict), method, set_name, _teacher_projected(b, join_teacher), model_weight=MODEL_WEIGHT, **extra)
            return lambda b: project_stage(b.items, method, set_name, _teacher_projected(b, join_teacher), **extra)
        raise StageLoadError(f"unknown stage kind {spec.kind!r}; expected one of {', '.join(STAGE_KINDS)}")

    def _run(self, batch: StageBatch) -> list[Item]:
        out = self._fn(batch)
        if [it.id for it in out] != [it.id for it in batch.items]:
            raise RuntimeError(f"stage {self.spec.key} returned items {[it.id for it in out][:5]} for {[it.id for it in batch.items][:5]}")
        for it in out:
            it.validate()
        return out

    def __call__(self, batch: StageBatch) -> StageOutput:
        import time

        start = time.perf_counter()
        errors: dict[str, str] = {}
        try:
            done = self._run(batch)
        except Exception:  # noqa: BLE001 - find the item(s) that fail, run the rest
            done = []
            for it in batch.items:
                single = StageBatch(batch.index, [it], {it.id: batch.context.get(it.id, {})})
                try:
                    done.extend(self._run(single))
                except Exception as exc:  # noqa: BLE001
                    errors[it.id] = _describe(exc)
        unprojected: dict[str, list[Span]] = {}
        if self.spec.kind == "project":
            done, unprojected = _split_unprojected(done)
        return StageOutput(done, errors, unprojected, time.perf_counter() - start)


def _lines_by_id(translator, batch: StageBatch):  # noqa: ANN001, ANN202
    """A line-matched translation file read by item position (line k = k-th item of the project)."""
    keyed = copy.copy(translator)
    lines = translator.lines
    by_id = {}
    for it in batch.items:
        position = batch.context.get(it.id, {}).get("position")
        if position is None or not (0 <= position < len(lines)):
            from core.translate import TranslationError

            raise TranslationError(f"{translator.path} has {len(lines)} lines; item {it.id} is number {(position or 0) + 1}")
        by_id[it.id] = lines[position].strip()
    keyed.by_id, keyed.lines = by_id, None
    return keyed


def _split_unprojected(items: Sequence[Item]) -> tuple[list[Item], dict[str, list[Span]]]:
    """Take ``meta["unprojected"]`` (span dicts written by the projection) off the items."""
    out: list[Item] = []
    unprojected: dict[str, list[Span]] = {}
    for it in items:
        raw = it.meta.get("unprojected")
        if raw is None:
            out.append(it)
            continue
        spans: list[Span] = []
        for d in raw:
            spans.append(
                Span(int(d["start"]), int(d["end"]), str(d["label"]), int(d["char_start"]), int(d["char_end"]),
                     str(d.get("source") or "gold"), d.get("confidence"))
            )
        unprojected[it.id] = spans
        out.append(it.with_(meta={k: v for k, v in it.meta.items() if k != "unprojected"}))
    return out, unprojected



def run_batch(runner: Callable[[StageBatch], StageOutput], batch: StageBatch) -> StageOutput:
    """Run a stage on the items of a batch it can take; the others fail with the reason
    found while reading them (``context[id]["error"]``)."""
    blocked = {it.id: batch.context[it.id]["error"] for it in batch.items if batch.context.get(it.id, {}).get("error")}
    runnable = StageBatch(batch.index, [it for it in batch.items if it.id not in blocked], batch.context)
    out = runner(runnable) if runnable.items else StageOutput([])
    out.errors.update(blocked)
    return out
