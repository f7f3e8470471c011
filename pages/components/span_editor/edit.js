// LabelBridge span editor, part 2 of 4: editing spans, the keyboard and the mouse.
// Spans always cover whole tokens and never overlap (refused with a message). A span a
// person makes or changes is theirs: source human:<user>, no machine confidence.

const HELP = [
  ["click / drag", "select tokens (shift-click extends)"],
  ["1-9", "give the selection that label (or relabel the selected span)"],
  ["Backspace / Delete", "delete the selected span(s)"],
  ["Shift + \u2190/\u2192", "move the span's right edge (or extend the selection)"],
  ["Alt + Shift + \u2190/\u2192", "move the span's left edge"],
  ["drag a span edge", "resize it"],
  ["M", "merge the spans in the selection (or with the next span)"],
  ["X", "split the span at the cursor"],
  ["A / R", "accept / reject the selected suggestion (A without selection: all on this side)"],
  ["Enter", "accept everything and go to the next item"],
  ["\u2190 / \u2192", "move the cursor"],
  ["\u2191 / \u2193", "switch between source and translation"],
  ["Tab / Shift+Tab", "select the next / previous span"],
  ["N / P", "next / previous item (without accepting)"],
  ["Z", "undo"],
  ["Y or Shift+Z", "redo"],
  ["S", "skip the item"],
  ["F", "flag the item with a comment"],
  ["L", "show all word links"],
  ["Esc", "clear the selection, close panels"],
  ["?", "show or hide this help"],
];
const BINARY_HELP = [
  ["A or Enter", "yes: accept this suggestion"],
  ["R or X", "no: reject it"],
  ["N / P", "next / previous item"],
  ["Z", "undo"],
];

function selRange(inst) {
  if (!inst.sel) return null;
  const a = Math.min(inst.sel.anchor, inst.sel.focus);
  const b = Math.max(inst.sel.anchor, inst.sel.focus);
  return { side: inst.sel.side, start: a, end: b + 1 };
}

function spanAt(inst, side, token) {
  return spansOf(inst, side).findIndex((s) => s.start <= token && token < s.end);
}

function selectedSpanIndex(inst) {
  const r = selRange(inst);
  if (!r) return -1;
  return spansOf(inst, r.side).findIndex((s) => s.start === r.start && s.end === r.end);
}

function selectSpan(inst, side, idx, cursor) {
  const s = spansOf(inst, side)[idx];
  if (!s) return;
  inst.sel = { side, anchor: s.start, focus: s.end - 1, cursor: cursor === undefined ? s.start : cursor };
  inst.cursorSide = side;
}

function tokensOf(inst, side) {
  return current(inst).sides[side].tokens;
}

function describe(s, tokens) {
  return `${s.label} '${tokens.slice(s.start, s.end).join(" ")}'`;
}

function mine(inst, span) {
  return { ...span, source: user(inst), confidence: null, pending: false };
}

function applyLabel(inst, label) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select tokens first (click, shift-click or drag), then press a label key.");
  const spans = cloneSpans(spansOf(inst, r.side));
  const tokens = tokensOf(inst, r.side);
  const exact = spans.findIndex((s) => s.start === r.start && s.end === r.end);
  if (exact >= 0) {
    if (spans[exact].label === label && !spans[exact].pending) return;
    spans[exact] = spans[exact].label === label ? { ...spans[exact], pending: false } : mine(inst, { ...spans[exact], label });
    commit(inst, r.side, spans, "relabel");
    return;
  }
  const hit = spans.filter((s) => overlaps(s, r));
  if (hit.length) {
    return refuse(inst, `Spans cannot overlap: the selection overlaps ${hit.map((s) => describe(s, tokens)).join(", ")}. Delete or resize that span first.`);
  }
  spans.push(mine(inst, { start: r.start, end: r.end, label }));
  commit(inst, r.side, spans, "add");
}

function deleteSelection(inst) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select a span to delete it.");
  const spans = spansOf(inst, r.side);
  const keep = spans.filter((s) => !overlaps(s, r));
  if (keep.length === spans.length) return refuse(inst, "No span in the selection.");
  const removedPending = spans.filter((s) => overlaps(s, r)).every((s) => s.pending);
  inst.sel = { side: r.side, anchor: r.start, focus: r.start, cursor: r.start };
  commit(inst, r.side, keep, removedPending ? "reject_span" : "delete");
}

function setPending(inst, accept) {
  const side = inst.sel ? inst.sel.side : inst.cursorSide;
  const idx = selectedSpanIndex(inst);
  const spans = cloneSpans(spansOf(inst, side));
  if (idx < 0) {
    if (!accept) return refuse(inst, "Select a suggested span to reject it.");
    if (!spans.some((s) => s.pending)) return refuse(inst, "No suggestion to accept on this side.");
    commit(inst, side, spans.map((s) => ({ ...s, pending: false })), "accept_side");
    return;
  }
  if (accept) {
    if (!spans[idx].pending) return refuse(inst, "That span is already accepted.");
    spans[idx] = { ...spans[idx], pending: false };
    commit(inst, side, spans, "accept_span");
  } else {
    spans.splice(idx, 1);
    inst.sel = null;
    commit(inst, side, spans, "reject_span");
  }
}

function resizeSpan(inst, side, idx, start, end) {
  const spans = cloneSpans(spansOf(inst, side));
  const n = tokensOf(inst, side).length;
  if (start < 0 || end > n || end - start < 1) return refuse(inst, "A span covers at least one token of the sentence.");
  const moved = mine(inst, { ...spans[idx], start, end });
  const others = spans.filter((_, i) => i !== idx);
  const hit = others.find((s) => overlaps(s, moved));
  if (hit) return refuse(inst, `Spans cannot overlap: ${describe(hit, tokensOf(inst, side))} is in the way.`);
  others.push(moved);
  inst.sel = { side, anchor: start, focus: end - 1, cursor: start };
  commit(inst, side, others, "resize");
}

function mergeSpans(inst) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select the spans to merge.");
  const spans = cloneSpans(spansOf(inst, r.side));
  let inside = spans.filter((s) => overlaps(s, r));
  if (inside.length === 1) {
    const next = sorted(spans).find((s) => s.start >= inside[0].end);
    if (!next) return refuse(inst, "No span to the right to merge with.");
    inside = [inside[0], next];
  }
  if (inside.length < 2) return refuse(inst, "Select at least two spans to merge.");
  const start = Math.min(...inside.map((s) => s.start));
  const end = Math.max(...inside.map((s) => s.end));
  const first = sorted(inside)[0];
  const rest = spans.filter((s) => !inside.includes(s));
  const hit = rest.find((s) => s.start < end && start < s.end);
  if (hit) return refuse(inst, `Cannot merge across ${describe(hit, tokensOf(inst, r.side))}.`);
  rest.push(mine(inst, { start, end, label: first.label }));
  inst.sel = { side: r.side, anchor: start, focus: end - 1, cursor: start };
  commit(inst, r.side, rest, "merge");
}

function splitSpan(inst) {
  if (!inst.sel) return refuse(inst, "Select a span, then press X to split it at the cursor.");
  const side = inst.sel.side;
  const cursor = inst.sel.cursor !== undefined ? inst.sel.cursor : inst.sel.focus;
  const idx = spanAt(inst, side, cursor);
  if (idx < 0) return refuse(inst, "The cursor is not on a span.");
  const s = spansOf(inst, side)[idx];
  if (s.end - s.start < 2) return refuse(inst, "A one-token span cannot be split.");
  const at = cursor > s.start ? cursor : s.start + 1;
  const spans = cloneSpans(spansOf(inst, side)).filter((_, i) => i !== idx);
  spans.push(mine(inst, { ...s, end: at }));
  spans.push(mine(inst, { ...s, start: at }));
  inst.sel = { side, anchor: at, focus: s.end - 1, cursor: at };
  commit(inst, side, spans, "split");
}

// ----------------------------------------------------------------------------- binary mode

function openQuestion(inst) {
  const label = inst.data.binary;
  for (const side of ["target", "source"]) {
    if (!current(inst) || !current(inst).sides[side]) continue;
    const idx = spansOf(inst, side).findIndex((s) => s.pending && s.label === label);
    if (idx >= 0) return { side, idx };
  }
  return null;
}

function selectNextQuestion(inst) {
  const q = openQuestion(inst);
  if (q) selectSpan(inst, q.side, q.idx);
  else inst.sel = null;
}

function answer(inst, yes) {
  const q = openQuestion(inst);
  if (!q) return advance(inst, "next");
  selectSpan(inst, q.side, q.idx);
  setPending(inst, yes);
  if (!openQuestion(inst)) advance(inst, "next"); // every suggestion of this label decided
}

// ----------------------------------------------------------------------------- keys

function handleKey(inst, e) {
  if (!inst.data || !inst.root || !inst.root.isConnected || current(inst) === null) return;
  const origin = e.composedPath ? e.composedPath()[0] : e.target;
  const tag = origin && origin.tagName ? origin.tagName.toLowerCase() : "";
  if (tag === "input" || tag === "textarea" || tag === "select" || (origin && origin.isContentEditable)) return;
  const active = document.activeElement;
  const host = inst.root.getRootNode && inst.root.getRootNode().host;
  if (active && active !== document.body && active !== host && !inst.root.contains(active)) return;
  if (e.ctrlKey || e.metaKey) return;
  const k = e.key;
  const handled = () => {
    e.preventDefault();
    e.stopPropagation();
  };
  if (k === "?") {
    handled();
    inst.showHelp = !inst.showHelp;
    return render(inst);
  }
  if (k === "Escape") {
    if (!(inst.sel || inst.showHelp || inst.flagOpen || inst.enlarged || inst.note)) return; // leave Esc to the page
    handled();
    Object.assign(inst, { sel: null, showHelp: false, flagOpen: false, enlarged: false, note: null });
    return render(inst);
  }
  if (inst.waiting) {
    if (/^[\w\s]$/.test(k) || k === "Enter" || k.startsWith("Arrow")) handled(); // nothing to act on until the next item is here
    return;
  }
  if (inst.data.binary) {
    const lower = k.toLowerCase();
    if (k === "Enter" || lower === "a") return handled(), answer(inst, true);
    if (lower === "r" || lower === "x") return handled(), answer(inst, false);
  }
  const labels = inst.data.labels;
  if (/^[1-9]$/.test(k)) {
    handled();
    const lab = labels[Number(k) - 1];
    if (!lab) return refuse(inst, `No label on key ${k}.`);
    return applyLabel(inst, lab.name);
  }
  switch (k) {
    case "Enter":
      handled();
      return advance(inst, "accept_all");
    case "Backspace":
    case "Delete":
      handled();
      return deleteSelection(inst);
    case "ArrowLeft":
    case "ArrowRight":
      handled();
      return moveCursor(inst, k === "ArrowRight" ? 1 : -1, e.shiftKey, e.altKey);
    case "ArrowUp":
    case "ArrowDown": {
      handled();
      const sides = sidesOf(inst);
      const cur = inst.sel ? inst.sel.side : inst.cursorSide;
      const other = sides[(sides.indexOf(cur) + (k === "ArrowDown" ? 1 : sides.length - 1)) % sides.length];
      const at = inst.sel ? inst.sel.cursor || 0 : 0;
      const n = tokensOf(inst, other).length;
      const t = Math.min(at, n - 1);
      inst.cursorSide = other;
      inst.sel = n ? { side: other, anchor: t, focus: t, cursor: t } : null;
      return render(inst);
    }
    case "Tab": {
      if (active !== host) return; // Tab moves between spans only inside the editor; elsewhere it moves focus
      handled();
      const side = inst.sel ? inst.sel.side : inst.cursorSide;
      const spans = sorted(spansOf(inst, side));
      if (!spans.length) return;
      const cur = selRange(inst);
      const next = e.shiftKey
        ? [...spans].reverse().find((s) => !cur || s.end <= cur.start) || spans[spans.length - 1]
        : spans.find((s) => !cur || s.start >= cur.end) || spans[0];
      inst.sel = { side, anchor: next.start, focus: next.end - 1, cursor: next.start };
      return render(inst);
    }
    default:
      break;
  }
  const act = { a: () => setPending(inst, true), r: () => setPending(inst, false), m: () => mergeSpans(inst), x: () => splitSpan(inst),
    z: () => enqueueSimple(inst, e.shiftKey ? "redo" : "undo"), y: () => enqueueSimple(inst, "redo"), s: () => advance(inst, "skip"),
    f: () => openFlag(inst), l: () => ((inst.showLinks = !inst.showLinks), render(inst)), n: () => advance(inst, "next"), p: () => advance(inst, "prev") }[k.toLowerCase()];
  if (act) {
    handled();
    act();
  }
}

function moveCursor(inst, dir, shift, alt) {
  const idx = selectedSpanIndex(inst);
  if (shift && idx >= 0) {
    const s = spansOf(inst, inst.sel.side)[idx];
    if (alt) return resizeSpan(inst, inst.sel.side, idx, s.start - (dir === -1 ? 1 : -1), s.end);
    return resizeSpan(inst, inst.sel.side, idx, s.start, s.end + dir);
  }
  const side = inst.sel ? inst.sel.side : inst.cursorSide;
  const n = tokensOf(inst, side).length;
  const from = inst.sel ? (inst.sel.cursor !== undefined ? inst.sel.cursor : inst.sel.focus) : dir > 0 ? -1 : n;
  const to = Math.max(0, Math.min(n - 1, from + dir));
  if (shift && inst.sel) inst.sel = { ...inst.sel, focus: to, cursor: to };
  else inst.sel = { side, anchor: to, focus: to, cursor: to };
  inst.cursorSide = side;
  render(inst);
}

function openFlag(inst) {
  inst.flagOpen = true;
  render(inst);
  setTimeout(() => {
    const box = inst.root.querySelector(".flagbox input");
    if (box) box.focus();
  }, 0);
}

function submitFlag(inst, text) {
  const comment = (text || "").trim();
  if (!comment) return refuse(inst, "Say what is wrong with the item to flag it.");
  inst.flagOpen = false;
  advance(inst, "flag", { comment });
}

// ----------------------------------------------------------------------------- mouse

function tokenOf(el) {
  const tok = el && el.closest ? el.closest(".tok") : null;
  return tok ? { side: tok.dataset.side, i: Number(tok.dataset.i) } : null;
}

function attachMouse(inst) {
  const root = inst.root;
  root.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || inst.waiting) return;
    const el = e.target;
    if (el.closest(".overlay")) return;
    const handle = el.closest(".handle");
    if (handle && !inst.data.readonly) {
      e.preventDefault();
      inst.resize = { side: handle.dataset.side, idx: Number(handle.dataset.span), edge: handle.dataset.edge };
      return;
    }
    root.focus({ preventScroll: true });
    const t = tokenOf(el);
    if (!t) return;
    e.preventDefault();
    inst.cursorSide = t.side;
    if (e.shiftKey && inst.sel && inst.sel.side === t.side) inst.sel = { ...inst.sel, focus: t.i, cursor: t.i };
    else inst.sel = { side: t.side, anchor: t.i, focus: t.i, cursor: t.i };
    inst.drag = { side: t.side, start: t.i, moved: false, shift: e.shiftKey };
    paintSelection(inst);
  });
  root.addEventListener("mouseover", (e) => {
    const t = tokenOf(e.target);
    if (!t) return;
    if (inst.drag && t.side === inst.drag.side && inst.sel) {
      if (t.i !== inst.sel.focus) inst.drag.moved = true;
      inst.sel = { ...inst.sel, focus: t.i, cursor: t.i };
      paintSelection(inst);
    } else if (inst.resize && t.side === inst.resize.side) {
      inst.resize.to = t.i;
      paintResize(inst);
    }
  });
  root.addEventListener("click", (e) => {
    const el = e.target;
    const act = el.closest("[data-act]");
    if (act) {
      e.preventDefault();
      if (act.blur) act.blur();
      return onAction(inst, act.dataset.act, act.dataset);
    }
    if (el.closest(".thumb")) return (inst.enlarged = true), render(inst);
    if (el.closest(".overlay")) return (inst.enlarged = false), render(inst);
  });
  root.addEventListener("keydown", (e) => {
    const input = e.target.closest && e.target.closest(".flagbox input");
    if (!input) return;
    if (e.key === "Enter") {
      e.preventDefault();
      submitFlag(inst, input.value);
    } else if (e.key === "Escape") {
      e.preventDefault();
      inst.flagOpen = false;
      render(inst);
    }
    e.stopPropagation();
  });
}

function onMouseUp(inst) {
  if (inst.resize) {
    const r = inst.resize;
    inst.resize = null;
    const s = spansOf(inst, r.side)[r.idx];
    if (s && r.to !== undefined) {
      if (r.edge === "start") resizeSpan(inst, r.side, r.idx, Math.min(r.to, s.end - 1), s.end);
      else resizeSpan(inst, r.side, r.idx, s.start, Math.max(r.to + 1, s.start + 1));
    } else render(inst);
    return;
  }
  if (!inst.drag) return;
  const d = inst.drag;
  inst.drag = null;
  if (!d.moved && !d.shift && inst.sel) {
    const idx = spanAt(inst, d.side, d.start);
    if (idx >= 0) selectSpan(inst, d.side, idx, d.start);
  }
  render(inst);
}

function onAction(inst, act, ds) {
  const simple = {
    help: () => (inst.showHelp = !inst.showHelp),
    links: () => (inst.showLinks = !inst.showLinks),
    flag: () => (inst.flagOpen = !inst.flagOpen),
  };
  if (simple[act]) return simple[act](), render(inst);
  if (act === "retry") return retry(inst);
  if (act === "flag-submit") {
    const box = inst.root.querySelector(".flagbox input");
    return submitFlag(inst, box ? box.value : "");
  }
  if (inst.waiting || current(inst) === null) return;
  if (act === "label") {
    const lab = inst.data.labels[Number(ds.index)];
    return lab && applyLabel(inst, lab.name);
  }
  if (act === "select-unprojected") {
    const s = spansOf(inst, "source").findIndex((x) => x.start === Number(ds.start) && x.end === Number(ds.end));
    if (s >= 0) selectSpan(inst, "source", s);
    return render(inst);
  }
  const actions = {
    accept_all: () => advance(inst, "accept_all"), skip: () => advance(inst, "skip"), next: () => advance(inst, "next"),
    prev: () => advance(inst, "prev"), undo: () => enqueueSimple(inst, "undo"), redo: () => enqueueSimple(inst, "redo"),
    accept: () => setPending(inst, true), reject: () => setPending(inst, false), delete: () => deleteSelection(inst),
    merge: () => mergeSpans(inst), split: () => splitSpan(inst), yes: () => answer(inst, true), no: () => answer(inst, false),
  };
  if (actions[act]) actions[act]();
}
