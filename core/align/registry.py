"""``get_aligner(spec, **options)``: one string names any aligner or combination of them.

Grammar (spaces ignored)::

    spec   := leaf | combo "(" spec "," spec ")" | bt "(" spec ["," spec] ")"
    leaf   := "simalign" [":" method] | "simalign-tuned" [":" method] | "eflomal" | "exact"
    combo  := "union" | "intersection" | "gd" | "gdf" | "gdfa"
    bt     := "backtranslation" | "bt"        # (direct aligner, same-language aligner)

``simalign-tuned:itermax`` adapts the encoder to the pairs it aligns first (core.align.adapt).

Examples: ``simalign:itermax``, ``gdfa(simalign:itermax,eflomal)``,
``bt(simalign:itermax,exact)``.

Options are keyword arguments of the aligner classes. A plain option goes to every node of
the spec whose class takes it (``layer=6`` reaches all SimAlign nodes); an option that two
kinds understand differently (``model`` is the encoder for SimAlign but the IBM model
number for eflomal) must then be given per kind: ``simalign={"model": ...}``,
``eflomal={"model": 2}``. Kinds for per-kind dicts: simalign, eflomal, exact, combine,
backtranslation. An option no node takes is an error (a typo must not pass silently).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from core.align.adapt import TunedSimAlignAligner
from core.align.backtranslation import BackTranslationAligner, StringMatchAligner
from core.align.base import Aligner, AlignError
from core.align.combine import COMBINATIONS, CombinedAligner
from core.align.embedding import METHODS, SimAlignAligner
from core.align.statistical import EflomalAligner

__all__ = ["get_aligner", "parse_spec", "spec_kinds", "KINDS"]

KINDS: dict[str, Callable[..., Aligner]] = {
    "simalign": SimAlignAligner,
    "simalign-tuned": TunedSimAlignAligner,
    "eflomal": EflomalAligner,
    "exact": StringMatchAligner,
    "combine": CombinedAligner,
    "backtranslation": BackTranslationAligner,
}
_BT_NAMES = ("backtranslation", "bt")
_STRUCTURAL = {"method", "how", "first", "second", "direct", "same_lang_aligner"}  # set by the spec itself

Node = tuple[str, str | None, list]  # (name, argument after ':', children)


def parse_spec(spec: str) -> Node:
    """Parse an aligner spec into (name, argument, children); ValueError points at the position."""
    text = "".join(spec.split())
    pos = 0

    def fail(msg: str) -> ValueError:
        return ValueError(f"aligner spec {spec!r}: {msg} at position {pos}")

    def node() -> Node:
        nonlocal pos
        start = pos
        while pos < len(text) and (text[pos].isalnum() or text[pos] in "_-"):
            pos += 1
        name = text[start:pos].lower()
        if not name:
            raise fail("expected an aligner name")
        arg = None
        if pos < len(text) and text[pos] == ":":
            pos += 1
            start = pos
            while pos < len(text) and (text[pos].isalnum() or text[pos] in "_-"):
                pos += 1
            arg = text[start:pos].lower()
            if not arg:
                raise fail("expected a method after ':'")
        children: list[Node] = []
        if pos < len(text) and text[pos] == "(":
            pos += 1
            children.append(node())
            while pos < len(text) and text[pos] == ",":
                pos += 1
                children.append(node())
            if pos >= len(text) or text[pos] != ")":
                raise fail("expected ')'")
            pos += 1
        return name, arg, children

    tree = node()
    if pos != len(text):
        raise fail(f"unexpected {text[pos]!r}")
    return tree


def spec_kinds(spec: str) -> set[str]:
    """The node names a spec uses (e.g. {"gdfa", "simalign-tuned", "eflomal"})."""

    def walk(node: Node) -> set[str]:
        return {node[0], *(k for child in node[2] for k in walk(child))}

    return walk(parse_spec(spec))


def _kind(node: Node) -> str:
    name, arg, children = node
    if name in COMBINATIONS:
        if len(children) != 2 or arg is not None:
            raise AlignError(f"{name}(A,B) takes exactly two aligners")
        return "combine"
    if name in _BT_NAMES:
        if len(children) not in (1, 2) or arg is not None:
            raise AlignError(f"{name}(DIRECT[,SAME_LANGUAGE]) takes one or two aligners")
        return "backtranslation"
    if name in KINDS and name not in ("combine", "backtranslation"):
        if children:
            raise AlignError(f"{name} takes no inner aligners")
        if name in ("simalign", "simalign-tuned"):
            if arg is not None and arg not in METHODS:
                raise AlignError(f"{name}: unknown method {arg!r}; choose one of {sorted(METHODS)}")
        elif arg is not None:
            raise AlignError(f"{name} takes no ':{arg}'")
        return name
    known = ["simalign[:METHOD]", "simalign-tuned[:METHOD]", "eflomal", "exact", *(f"{c}(A,B)" for c in COMBINATIONS), "bt(DIRECT[,SAME])"]
    raise AlignError(f"unknown aligner {name!r}; known: {', '.join(known)}")


def _accepted(kind: str) -> set[str]:
    params = inspect.signature(KINDS[kind].__init__).parameters
    own = {p for p, v in params.items() if p != "self" and v.kind is not inspect.Parameter.VAR_KEYWORD}
    if kind == "simalign-tuned":  # SimAlign underneath: its options pass through
        own |= _accepted("simalign")
    return own - _STRUCTURAL


def get_aligner(spec: str, **options: Any) -> Aligner:
    """Build the aligner a spec names (see the module docstring for specs and options)."""
    tree = parse_spec(spec)
    kinds_used: set[str] = set()

    def collect(node: Node) -> None:
        kinds_used.add(_kind(node))
        for child in node[2]:
            collect(child)

    collect(tree)
    per_kind = {k: dict(options.pop(k)) for k in list(options) if k in KINDS and isinstance(options[k], dict)}
    for k, opts in per_kind.items():
        bad = set(opts) - _accepted(k)
        if bad:
            raise AlignError(f"{k} has no option {', '.join(sorted(bad))}; its options: {', '.join(sorted(_accepted(k)))}")
    for name in options:
        takers = [k for k in kinds_used if name in _accepted(k)]
        if not takers:
            raise AlignError(f"no aligner in {spec!r} takes the option {name!r}")
        if name == "model" and {"simalign", "eflomal"} <= set(takers):
            raise AlignError(
                f"option 'model' is ambiguous in {spec!r}: give simalign={{'model': ...}} and/or eflomal={{'model': ...}}"
            )

    def opts_for(kind: str) -> dict[str, Any]:
        taken = {k: v for k, v in options.items() if k in _accepted(kind)}
        taken.update(per_kind.get(kind, {}))
        return taken

    def build(node: Node) -> Aligner:
        name, arg, children = node
        kind = _kind(node)
        if kind == "combine":
            return CombinedAligner(name, build(children[0]), build(children[1]), **opts_for(kind))
        if kind == "backtranslation":
            same = build(children[1]) if len(children) > 1 else None
            return BackTranslationAligner(build(children[0]), same_lang_aligner=same, **opts_for(kind))
        if kind in ("simalign", "simalign-tuned"):
            return KINDS[kind](method=arg or "itermax", **opts_for(kind))
        return KINDS[kind](**opts_for(kind))

    return build(tree)
