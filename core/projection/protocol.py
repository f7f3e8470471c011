"""Leave-one-pair-out: projection settings chosen on some language pairs, reported on another.

Why: the default projection was tuned on the same two Europarl test files it is reported
on (en->de, en->es), and on a pair not used for any choice it gained far less. Under this
protocol a setting (aligner, layer, method and its options) is *chosen* on every pair but
one and *reported* on the one left out, for each pair in turn; a figure then says what a
user with a new language can expect.

``bench_protocol`` scores every setting of a grid on every pair (one alignment per
aligner x layer x pair, shared by every method and option on it), then for each held-out
pair picks the setting with the best mean F1 on the others. It also reports the current
default's F1 and the best setting on the pair itself (the optimistic figure tuning on the
test file gives), so the gap between the two is visible.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from core.errors import BenchError

__all__ = ["Setting", "default_grid", "bench_protocol", "choose_leave_one_out"]


@dataclass(frozen=True)
class Setting:
    """One projection configuration: aligner spec, encoder layer, method and its options."""

    aligner: str
    layer: int | tuple[int, ...]  # a tuple: similarities averaged over those layers
    method: str
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)  # method options, e.g. (("threshold", 0.3),)

    @property
    def name(self) -> str:
        opts = "".join(f",{k}={v}" for k, v in self.options)
        layer = f"{self.layer[0]}-{self.layer[-1]}" if isinstance(self.layer, tuple) else self.layer
        return f"{self.aligner}@{layer}|{self.method}{opts}"

    def layer_options(self) -> dict[str, Any]:
        """The aligner's and the soft alignment's layer options for this setting."""
        if isinstance(self.layer, tuple):
            return {"layer": max(self.layer), "layers": list(self.layer)}
        return {"layer": self.layer}


def _default_setting() -> Setting:
    """The project's default projection as a setting (built from the defaults, so it cannot drift)."""
    from core.projection import DEFAULT_ALIGNER, DEFAULT_METHOD, DEFAULT_TAU, METHODS

    preset = METHODS[DEFAULT_METHOD][1]
    return Setting(DEFAULT_ALIGNER, 8, DEFAULT_METHOD,
                   (("threshold", preset["threshold"]), ("tau", DEFAULT_TAU), ("derived_label", preset.get("derived_label"))))  # fmt: skip


DEFAULT_SETTING = _default_setting()


def default_grid(
    aligners: Sequence[str] = ("simalign:itermax", "simalign:argmax"),
    layers: Sequence[int | tuple[int, ...]] = (7, 8, 9),
    thresholds: Sequence[float] = (0.2, 0.3, 0.5),
    taus: Sequence[float] = (0.03, 0.05, 0.08),
    methods: Sequence[str] = ("heuristic", "greedy", "greedy-fused"),
    derived_labels: Sequence[str | None] = (None, "MISC"),
) -> list[Setting]:
    """The knobs the default was tuned on: aligner, layer, method; for the fused method its
    threshold (at tau 0.05) and its soft-alignment temperature (at threshold 0.3); for every
    method the label of a name projected onto one lower-case word (None: its own;
    core.projection.common.projected_label)."""
    grid: list[Setting] = []
    for aligner, layer, derived in itertools.product(aligners, layers, derived_labels):
        tail = (("derived_label", derived),)
        for method in methods:
            if method.endswith("-fused"):
                options = {(("threshold", t), ("tau", 0.05)) for t in thresholds} | {(("threshold", 0.3), ("tau", tau)) for tau in taus}
                grid += [Setting(aligner, layer, method, o + tail) for o in sorted(options)]
            else:
                grid.append(Setting(aligner, layer, method, tail))
    return grid


def choose_leave_one_out(scores: dict[str, dict[str, float]], pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each pair: the setting with the best mean F1 over the *other* pairs (ties: the
    first in the grid's order), its F1 on the held-out pair, and the best on that pair itself.
    ``scores[setting][pair]`` = F1."""
    if len(pairs) < 2:
        raise BenchError("leave-one-pair-out needs at least two language pairs")
    names = list(scores)
    out: dict[str, dict[str, Any]] = {}
    for held in pairs:
        others = [p for p in pairs if p != held]
        chosen = max(names, key=lambda n: (sum(scores[n][p] for p in others) / len(others), -names.index(n)))
        oracle = max(names, key=lambda n: (scores[n][held], -names.index(n)))
        out[held] = {
            "chosen_on": others,
            "chosen": chosen,
            "f1": scores[chosen][held],
            "chosen_f1_on_others": round(sum(scores[chosen][p] for p in others) / len(others), 4),
            "best_on_itself": oracle,
            "best_on_itself_f1": scores[oracle][held],
        }
    return out


def bench_protocol(
    source: str | Path,
    targets: Sequence[str | Path],
    grid: Sequence[Setting] | None = None,
    limit: int | None = None,
    names: Sequence[str] | None = None,
    include_default: bool = True,
) -> dict[str, Any]:
    """Score ``grid`` (default: ``default_grid()``; the project's default setting is added
    unless ``include_default`` is False) on each parallel pair ``source`` -> ``targets[k]``
    and choose leave-one-pair-out (module docstring)."""
    from core.align import align_items, aligner_encoder, get_aligner, prepare_aligners
    from core.metrics import item_scores
    from core.projection import project_items, soft_align, uses_soft_alignment
    from core.projection.bench import load_parallel_gold

    grid = list(grid or default_grid())
    if include_default and DEFAULT_SETTING not in grid:
        grid.append(DEFAULT_SETTING)
    if not grid:
        raise BenchError("an empty grid: nothing to choose from")
    names = list(names or [re.split(r"[-._]", Path(t).name)[0] for t in targets])  # de-europarl.test.conll02 -> de
    if len(set(names)) != len(names) or len(names) != len(targets):
        raise BenchError(f"one distinct name per target file, got {names}")
    if len(names) < 2:
        raise BenchError("leave-one-pair-out needs at least two language pairs (give --target twice or more)")
    for setting in grid:
        if isinstance(setting.layer, tuple) and list(setting.layer) != list(range(setting.layer[0], setting.layer[-1] + 1)):
            raise BenchError(f"averaged layers must be a range (e.g. 7-9), not {setting.layer}")
    started = time.perf_counter()
    scores: dict[str, dict[str, float]] = {s.name: {} for s in grid}
    sentences: dict[str, int] = {}
    for pair, target in zip(names, targets):
        items, gold = load_parallel_gold(source, target, limit)
        sentences[pair] = len(items)
        order = sorted(grid, key=lambda s: (s.aligner, s.name))
        for (aligner_spec, _), group in itertools.groupby(order, key=lambda s: (s.aligner, s.layer)):
            group = list(group)
            layer_opts = group[0].layer_options()
            try:
                aligner = get_aligner(aligner_spec, **(layer_opts if "simalign" in aligner_spec else {}))
            except ValueError as exc:
                raise BenchError(f"aligner {aligner_spec!r}: {exc}") from exc
            prepare_aligners(aligner, [(it.source.words, it.target.words) for it in items])
            aligned = align_items(items, aligner)
            encoder = aligner_encoder(aligner)
            softened: dict[float, list] = {}
            for setting in group:
                options = dict(setting.options)
                tau = options.pop("tau", None)
                batch = aligned
                if uses_soft_alignment(setting.method, **options):
                    tau = 0.05 if tau is None else float(tau)
                    if tau not in softened:
                        todo = [it for it in aligned if it.source_spans]
                        softs = soft_align([(it.source.words, it.target.words) for it in todo], model=encoder, tau=tau, **layer_opts)
                        by_id = {it.id: s for it, s in zip(todo, softs)}
                        softened[tau] = [it.with_(meta={**it.meta, "soft_alignment": by_id[it.id]}) if it.id in by_id else it for it in aligned]
                    batch = softened[tau]
                projected = project_items(batch, setting.method, **options)
                scores[setting.name][pair] = round(item_scores(gold, [it.target_spans for it in projected])["f1"], 4)
    choice = choose_leave_one_out(scores, names)
    default = {pair: scores[DEFAULT_SETTING.name][pair] for pair in names} if DEFAULT_SETTING.name in scores else {}
    return {
        "bench": "projection-protocol",
        "protocol": "leave-one-pair-out",
        "source": str(source),
        "targets": dict(zip(names, map(str, targets))),
        "limit": limit,
        "sentences": sentences,
        "settings": len(grid),
        "default": DEFAULT_SETTING.name,
        "default_f1": default,
        "held_out": choice,
        "held_out_mean_f1": round(sum(c["f1"] for c in choice.values()) / len(choice), 4),
        "default_mean_f1": round(sum(default.values()) / len(default), 4) if default else None,
        "scores": scores,
        "seconds": round(time.perf_counter() - started, 1),
    }
