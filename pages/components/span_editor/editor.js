// LabelBridge span editor: a Streamlit Custom Component v2 (plain ES module, no build step).
//
// Shows the source sentence, the translation and the word links between them, and lets a
// person select tokens (click, shift-click, drag), label them (palette or keys 1-9),
// delete, resize, merge and split spans, accept or reject suggestions, on either side.
// Spans always cover whole tokens and never overlap (refused with a message).
//
// Every change is sent to Python at once as one event {action, side, spans, before, op,
// item, head, client, seq} through setTriggerValue("event", ...). Python stores it and
// answers with new data carrying ack {client, seq}. Events are sent one at a time: actions
// made while one is on its way are queued (and shown at once), then sent with the new
// base ("head") when the answer arrives, so nothing typed quickly is lost or conflicts
// with itself.

const CLIENT = Math.random().toString(36).slice(2, 10);
const instances = new Map();
const ANSWER_TIMEOUT_MS = 20000;
const SIDES = ["source", "target"];

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

function esc(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function cloneSpans(spans) {
  return (spans || []).map((s) => ({ ...s }));
}

function sorted(spans) {
  return [...spans].sort((a, b) => a.start - b.start || a.end - b.end);
}

function overlaps(a, b) {
  return a.start < b.end && b.start < a.end;
}

function newInstance() {
  return {
    data: null,
    local: { source: [], target: [] },
    queue: [],
    inflight: null,
    seq: 0,
    timer: null,
    sel: null, // {side, anchor, focus}
    cursorSide: "target",
    drag: null,
    resize: null,
    note: null, // local message {kind, text}
    showHelp: false,
    showLinks: false,
    flagOpen: false,
    enlarged: false,
    navigating: false,
    root: null,
  };
}

function sidesOf(inst) {
  return SIDES.filter((s) => inst.data && inst.data.sides[s]);
}

function user(inst) {
  return `human:${inst.data.user}`;
}

// ----------------------------------------------------------------------------- events to Python

function enqueue(inst, event) {
  inst.queue.push(event);
  if (!inst.inflight) sendNext(inst);
}

function sendNext(inst) {
  const ev = inst.queue.shift();
  if (!ev) return;
  inst.seq += 1;
  const full = { ...ev, client: CLIENT, seq: inst.seq, item: inst.data.item.id, head: inst.data.item.head };
  inst.inflight = full;
  clearTimeout(inst.timer);
  inst.timer = setTimeout(() => {
    if (inst.inflight === full) {
      inst.inflight = null;
      inst.queue = [];
      inst.navigating = false;
      inst.local = fromData(inst.data);
      inst.note = { kind: "error", text: "No answer from the server: that change may not be saved. The item shows what is stored." };
      render(inst);
    }
  }, ANSWER_TIMEOUT_MS);
  inst.setTriggerValue("event", full);
}

function fromData(data) {
  const out = {};
  for (const side of SIDES) out[side] = data.sides[side] ? cloneSpans(data.sides[side].spans) : [];
  return out;
}

function receive(inst, data) {
  const itemChanged = !inst.data || inst.data.item.id !== data.item.id;
  inst.data = data;
  const ack = data.ack || {};
  if (inst.inflight && ack.client === CLIENT && ack.seq >= inst.inflight.seq) {
    clearTimeout(inst.timer);
    inst.inflight = null;
    inst.navigating = false;
    if (data.message && data.message.kind === "error") inst.queue = []; // refused: show what is stored
  }
  if (itemChanged) {
    inst.queue = [];
    inst.sel = null;
    inst.flagOpen = false;
    inst.enlarged = false;
    inst.navigating = false;
    inst.note = null;
    if (!data.sides[inst.cursorSide]) inst.cursorSide = "source";
  }
  if (!inst.inflight && inst.queue.length === 0) {
    inst.local = fromData(data);
  } else if (itemChanged) {
    inst.local = fromData(data);
  }
  if (typeof data.show_links === "boolean" && itemChanged) inst.showLinks = inst.showLinks || data.show_links;
  if (!inst.inflight && inst.queue.length) sendNext(inst);
}

function busy(inst) {
  return !!inst.inflight || inst.queue.length > 0;
}

function navigate(inst, action, extra) {
  if (inst.navigating) return;
  inst.navigating = true;
  inst.note = null;
  enqueue(inst, { action, ...(extra || {}) });
  render(inst);
}

function commit(inst, side, spans, op) {
  if (inst.data.readonly) return refuse(inst, "This view is read-only.");
  const before = cloneSpans(inst.local[side]);
  inst.local[side] = sorted(spans);
  inst.note = null;
  enqueue(inst, { action: "edit", side, op, spans: cloneSpans(inst.local[side]), before });
  render(inst);
}

function refuse(inst, text) {
  inst.note = { kind: "warning", text };
  render(inst);
}

// ----------------------------------------------------------------------------- editing

function selRange(inst) {
  if (!inst.sel) return null;
  const a = Math.min(inst.sel.anchor, inst.sel.focus);
  const b = Math.max(inst.sel.anchor, inst.sel.focus);
  return { side: inst.sel.side, start: a, end: b + 1 };
}

function spanAt(inst, side, token) {
  return inst.local[side].findIndex((s) => s.start <= token && token < s.end);
}

function selectedSpanIndex(inst) {
  const r = selRange(inst);
  if (!r) return -1;
  return inst.local[r.side].findIndex((s) => s.start === r.start && s.end === r.end);
}

function selectSpan(inst, side, idx, cursor) {
  const s = inst.local[side][idx];
  if (!s) return;
  inst.sel = { side, anchor: s.start, focus: s.end - 1, cursor: cursor === undefined ? s.start : cursor };
  inst.cursorSide = side;
}

function describe(s, tokens) {
  return `${s.label} '${tokens.slice(s.start, s.end).join(" ")}'`;
}

function applyLabel(inst, label) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select tokens first (click, shift-click or drag), then press a label key.");
  const spans = cloneSpans(inst.local[r.side]);
  const tokens = inst.data.sides[r.side].tokens;
  const exact = spans.findIndex((s) => s.start === r.start && s.end === r.end);
  if (exact >= 0) {
    if (spans[exact].label === label && !spans[exact].pending) return;
    spans[exact] = { ...spans[exact], label, source: spans[exact].label === label ? spans[exact].source : user(inst), pending: false };
    commit(inst, r.side, spans, "relabel");
    return;
  }
  const hit = spans.filter((s) => overlaps(s, r));
  if (hit.length) {
    return refuse(inst, `Spans cannot overlap: the selection overlaps ${hit.map((s) => describe(s, tokens)).join(", ")}. Delete or resize that span first.`);
  }
  spans.push({ start: r.start, end: r.end, label, source: user(inst), confidence: null, pending: false });
  commit(inst, r.side, spans, "add");
}

function deleteSelection(inst) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select a span to delete it.");
  const spans = inst.local[r.side];
  const keep = spans.filter((s) => !overlaps(s, r));
  if (keep.length === spans.length) return refuse(inst, "No span in the selection.");
  const removedPending = spans.filter((s) => overlaps(s, r)).every((s) => s.pending);
  inst.sel = { side: r.side, anchor: r.start, focus: r.start, cursor: r.start };
  commit(inst, r.side, keep, removedPending ? "reject_span" : "delete");
}

function setPending(inst, accept) {
  const side = inst.sel ? inst.sel.side : inst.cursorSide;
  const idx = selectedSpanIndex(inst);
  const spans = cloneSpans(inst.local[side]);
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
  const spans = cloneSpans(inst.local[side]);
  const n = inst.data.sides[side].tokens.length;
  if (start < 0 || end > n || end - start < 1) return refuse(inst, "A span covers at least one token of the sentence.");
  const moved = { ...spans[idx], start, end, source: user(inst), confidence: null, pending: false };
  const others = spans.filter((_, i) => i !== idx);
  const hit = others.find((s) => overlaps(s, moved));
  if (hit) return refuse(inst, `Spans cannot overlap: ${describe(hit, inst.data.sides[side].tokens)} is in the way.`);
  others.push(moved);
  inst.sel = { side, anchor: start, focus: end - 1, cursor: start };
  commit(inst, side, others, "resize");
}

function mergeSpans(inst) {
  const r = selRange(inst);
  if (!r) return refuse(inst, "Select the spans to merge.");
  const spans = cloneSpans(inst.local[r.side]);
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
  if (hit) return refuse(inst, `Cannot merge across ${describe(hit, inst.data.sides[r.side].tokens)}.`);
  rest.push({ start, end, label: first.label, source: user(inst), confidence: null, pending: false });
  inst.sel = { side: r.side, anchor: start, focus: end - 1, cursor: start };
  commit(inst, r.side, rest, "merge");
}

function splitSpan(inst) {
  if (!inst.sel) return refuse(inst, "Select a span, then press X to split it at the cursor.");
  const side = inst.sel.side;
  const cursor = inst.sel.cursor !== undefined ? inst.sel.cursor : inst.sel.focus;
  const idx = spanAt(inst, side, cursor);
  if (idx < 0) return refuse(inst, "The cursor is not on a span.");
  const s = inst.local[side][idx];
  if (s.end - s.start < 2) return refuse(inst, "A one-token span cannot be split.");
  const at = cursor > s.start ? cursor : s.start + 1;
  const spans = cloneSpans(inst.local[side]).filter((_, i) => i !== idx);
  spans.push({ ...s, end: at, source: user(inst), confidence: null, pending: false });
  spans.push({ ...s, start: at, source: user(inst), confidence: null, pending: false });
  inst.sel = { side, anchor: at, focus: s.end - 1, cursor: at };
  commit(inst, side, spans, "split");
}

// ----------------------------------------------------------------------------- keys

function handleKey(inst, e) {
  if (!inst.data || inst.data.keyboard === false) return;
  const origin = e.composedPath ? e.composedPath()[0] : e.target;
  const tag = origin && origin.tagName ? origin.tagName.toLowerCase() : "";
  if (tag === "input" || tag === "textarea" || tag === "select" || (origin && origin.isContentEditable)) return;
  const active = document.activeElement;
  const host = inst.root && inst.root.getRootNode && inst.root.getRootNode().host;
  if (active && active !== document.body && active !== host && !(inst.root && inst.root.contains(active))) return;
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
    inst.sel = null;
    inst.showHelp = false;
    inst.flagOpen = false;
    inst.enlarged = false;
    inst.note = null;
    return render(inst);
  }
  if (inst.navigating) {
    if (["Enter", "s", "S", "n", "N", "p", "P", "f", "F"].includes(k)) handled();
    return;
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
      return navigate(inst, "accept_all");
    case "Backspace":
    case "Delete":
      handled();
      return deleteSelection(inst);
    case "ArrowLeft":
    case "ArrowRight": {
      handled();
      const dir = k === "ArrowRight" ? 1 : -1;
      const idx = selectedSpanIndex(inst);
      if (e.shiftKey && idx >= 0) {
        const s = inst.local[inst.sel.side][idx];
        if (e.altKey) return resizeSpan(inst, inst.sel.side, idx, s.start - (dir === -1 ? 1 : -1), s.end);
        return resizeSpan(inst, inst.sel.side, idx, s.start, s.end + dir);
      }
      const side = inst.sel ? inst.sel.side : inst.cursorSide;
      const n = inst.data.sides[side].tokens.length;
      const from = inst.sel ? inst.sel.cursor !== undefined ? inst.sel.cursor : inst.sel.focus : dir > 0 ? -1 : n;
      const to = Math.max(0, Math.min(n - 1, from + dir));
      if (e.shiftKey && inst.sel) inst.sel = { ...inst.sel, focus: to, cursor: to };
      else inst.sel = { side, anchor: to, focus: to, cursor: to };
      inst.cursorSide = side;
      return render(inst);
    }
    case "ArrowUp":
    case "ArrowDown": {
      handled();
      const sides = sidesOf(inst);
      const cur = inst.sel ? inst.sel.side : inst.cursorSide;
      const other = sides[(sides.indexOf(cur) + (k === "ArrowDown" ? 1 : sides.length - 1)) % sides.length];
      const at = inst.sel ? inst.sel.cursor || 0 : 0;
      const n = inst.data.sides[other].tokens.length;
      const t = Math.min(at, n - 1);
      inst.cursorSide = other;
      inst.sel = n ? { side: other, anchor: t, focus: t, cursor: t } : null;
      return render(inst);
    }
    case "Tab": {
      if (active !== host) return; // Tab moves between spans only inside the editor; elsewhere it moves focus
      handled();
      const side = inst.sel ? inst.sel.side : inst.cursorSide;
      const spans = sorted(inst.local[side]);
      if (!spans.length) return;
      const cur = selRange(inst);
      let next;
      if (e.shiftKey) next = [...spans].reverse().find((s) => !cur || s.end <= cur.start) || spans[spans.length - 1];
      else next = spans.find((s) => !cur || s.start >= cur.end) || spans[0];
      inst.sel = { side, anchor: next.start, focus: next.end - 1, cursor: next.start };
      return render(inst);
    }
    default:
      break;
  }
  switch (k.toLowerCase()) {
    case "a":
      handled();
      return setPending(inst, true);
    case "r":
      handled();
      return setPending(inst, false);
    case "m":
      handled();
      return mergeSpans(inst);
    case "x":
      handled();
      return splitSpan(inst);
    case "z":
      handled();
      return enqueueSimple(inst, e.shiftKey ? "redo" : "undo");
    case "y":
      handled();
      return enqueueSimple(inst, "redo");
    case "s":
      handled();
      return navigate(inst, "skip");
    case "f":
      handled();
      inst.flagOpen = true;
      render(inst);
      setTimeout(() => {
        const box = inst.root.querySelector(".flagbox input");
        if (box) box.focus();
      }, 0);
      return;
    case "l":
      handled();
      inst.showLinks = !inst.showLinks;
      return render(inst);
    case "n":
      handled();
      return navigate(inst, "next");
    case "p":
      handled();
      return navigate(inst, "prev");
    default:
      return;
  }
}

function enqueueSimple(inst, action) {
  if (inst.data.readonly) return;
  inst.note = null;
  enqueue(inst, { action });
  render(inst);
}

// ----------------------------------------------------------------------------- mouse

function tokenOf(el) {
  const tok = el && el.closest ? el.closest(".tok") : null;
  if (!tok) return null;
  return { side: tok.dataset.side, i: Number(tok.dataset.i) };
}

function attachMouse(inst) {
  const root = inst.root;
  root.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
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
    if (e.shiftKey && inst.sel && inst.sel.side === t.side) {
      inst.sel = { ...inst.sel, focus: t.i, cursor: t.i };
    } else {
      inst.sel = { side: t.side, anchor: t.i, focus: t.i, cursor: t.i };
    }
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
      act.blur && act.blur();
      return onAction(inst, act.dataset.act, act.dataset);
    }
    if (el.closest(".thumb")) {
      inst.enlarged = true;
      return render(inst);
    }
    if (el.closest(".overlay")) {
      inst.enlarged = false;
      return render(inst);
    }
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
  inst.onMouseUp = () => {
    if (inst.resize) {
      const r = inst.resize;
      inst.resize = null;
      const s = inst.local[r.side][r.idx];
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
  };
}

function submitFlag(inst, text) {
  const comment = (text || "").trim();
  if (!comment) return refuse(inst, "Say what is wrong with the item to flag it.");
  inst.flagOpen = false;
  navigate(inst, "flag", { comment });
}

function onAction(inst, act, ds) {
  if (act === "label") {
    const lab = inst.data.labels[Number(ds.index)];
    return lab && !inst.navigating && applyLabel(inst, lab.name);
  }
  if (act === "select-unprojected") {
    const s = inst.local.source.findIndex((x) => x.start === Number(ds.start) && x.end === Number(ds.end));
    if (s >= 0) selectSpan(inst, "source", s);
    return render(inst);
  }
  if (act === "help") {
    inst.showHelp = !inst.showHelp;
    return render(inst);
  }
  if (act === "links") {
    inst.showLinks = !inst.showLinks;
    return render(inst);
  }
  if (act === "flag") {
    inst.flagOpen = !inst.flagOpen;
    return render(inst);
  }
  if (act === "flag-submit") {
    const box = inst.root.querySelector(".flagbox input");
    return submitFlag(inst, box ? box.value : "");
  }
  if (inst.navigating) return;
  switch (act) {
    case "accept_all":
    case "skip":
    case "next":
    case "prev":
      return navigate(inst, act);
    case "undo":
    case "redo":
      return enqueueSimple(inst, act);
    case "accept":
      return setPending(inst, true);
    case "reject":
      return setPending(inst, false);
    case "delete":
      return deleteSelection(inst);
    case "merge":
      return mergeSpans(inst);
    case "split":
      return splitSpan(inst);
    default:
      return;
  }
}

// ----------------------------------------------------------------------------- drawing

function labelColour(inst, label) {
  const found = inst.data.labels.find((l) => l.name === label);
  return found ? found.colour : "#e9ecef";
}

function spanTitle(s) {
  const parts = [s.label, `from ${s.source}`];
  if (s.confidence !== null && s.confidence !== undefined) parts.push(`confidence ${Number(s.confidence).toFixed(2)}`);
  if (s.pending) parts.push("suggestion: A accepts, R rejects");
  return parts.join(" \u00b7 ");
}

function provenance(source) {
  if (!source) return "";
  if (source.startsWith("human:")) return source.slice(6);
  if (source.startsWith("projection:")) return source.slice(11);
  return source;
}

function sideHtml(inst, side) {
  const d = inst.data.sides[side];
  const spans = sorted(inst.local[side]).map((s) => ({ s, idx: inst.local[side].indexOf(s) }));
  const startAt = new Map(spans.map((x) => [x.s.start, x]));
  let html = "";
  let open = null;
  for (let i = 0; i < d.tokens.length; i++) {
    const begin = startAt.get(i);
    if (begin) {
      open = begin;
      const s = begin.s;
      html += `<mark class="ent${s.pending ? " pending" : ""}" data-side="${side}" data-span="${begin.idx}" style="--c:${labelColour(inst, s.label)}" title="${esc(spanTitle(s))}">`;
      html += `<span class="handle start" data-side="${side}" data-span="${begin.idx}" data-edge="start"></span>`;
    }
    html += `<span class="tok" data-side="${side}" data-i="${i}">${esc(d.tokens[i])}</span>`;
    if (open && i === open.s.end - 1) {
      const s = open.s;
      const conf = s.confidence !== null && s.confidence !== undefined ? `<span class="conf">${Number(s.confidence).toFixed(2)}</span>` : "";
      html += `<sup class="lab">${esc(s.label)}${conf}<span class="prov">${esc(provenance(s.source))}</span></sup>`;
      html += `<span class="handle end" data-side="${side}" data-span="${open.idx}" data-edge="end"></span></mark>`;
      open = null;
    }
    if (d.spaces[i]) html += " ";
  }
  return html;
}

function render(inst) {
  const d = inst.data;
  const root = inst.root;
  if (!d || !root) return;
  const labels = d.labels
    .map((l, i) => `<button class="chip" data-act="label" data-index="${i}" style="--c:${l.colour}" title="key ${i + 1}">${i < 9 ? `<kbd>${i + 1}</kbd>` : ""}${esc(l.name)}</button>`)
    .join("");
  const status = d.item.status;
  let mark;
  if (busy(inst)) mark = `<span class="mark saving">Saving\u2026</span>`;
  else if (d.saved) mark = `<span class="mark saved" title="${esc(d.saved)}">\u2713 saved</span>`;
  else mark = `<span class="mark"></span>`;
  const msg = inst.note || (busy(inst) ? null : d.message);
  const sides = sidesOf(inst)
    .map((side) => {
      const sd = d.sides[side];
      const who = sd.own ? "your version" : sd.suggestion ? `suggested: ${sd.suggestion}` : "no spans yet";
      const name = side === "source" ? "Source" : "Translation";
      return `<div class="side" data-side="${side}"><div class="side-head">${name}${sd.lang ? ` (${esc(sd.lang)})` : ""} <span class="who">${esc(who)}</span></div><div class="tokens" data-side="${side}">${sideHtml(inst, side)}</div></div>`;
    })
    .join('<div class="gap"></div>');
  const unproj = (d.unprojected || []).length
    ? `<div class="unprojected">Not projected: ${d.unprojected
        .map((u) => `<button class="chip small" data-act="select-unprojected" data-start="${u.start}" data-end="${u.end}" style="--c:${labelColour(inst, u.label)}">${esc(u.label)} \u2018${esc(u.text)}\u2019</button>`)
        .join(" ")}</div>`
    : "";
  const selIdx = selectedSpanIndex(inst);
  let detail = "";
  if (inst.sel) {
    const r = selRange(inst);
    const toks = d.sides[r.side].tokens.slice(r.start, r.end).join(" ");
    if (selIdx >= 0) {
      const s = inst.local[r.side][selIdx];
      detail = `<b>${esc(s.label)}</b> \u2018${esc(toks)}\u2019 \u00b7 ${esc(s.source)}${s.confidence !== null && s.confidence !== undefined ? ` \u00b7 confidence ${Number(s.confidence).toFixed(2)}` : ""}${s.pending ? " \u00b7 <i>suggestion</i>" : ""}
        ${s.pending ? `<button data-act="accept">Accept <kbd>A</kbd></button><button data-act="reject">Reject <kbd>R</kbd></button>` : ""}
        <button data-act="delete">Delete <kbd>\u232b</kbd></button><button data-act="merge">Merge <kbd>M</kbd></button><button data-act="split">Split <kbd>X</kbd></button>`;
    } else {
      detail = `Selected \u2018${esc(toks)}\u2019 (${r.side}) \u2014 press 1-9 or click a label`;
    }
  }
  const help = inst.showHelp
    ? `<div class="help"><b>Keys</b><table>${HELP.map(([k, v]) => `<tr><td><kbd>${esc(k)}</kbd></td><td>${esc(v)}</td></tr>`).join("")}</table></div>`
    : "";
  const flag = inst.flagOpen
    ? `<div class="flagbox"><input type="text" placeholder="What is wrong with this item? (Enter flags it)" aria-label="Flag comment"><button data-act="flag-submit">Flag</button></div>`
    : "";
  const image = d.image
    ? `<div class="imgcol"><img class="thumb" src="${d.image}" alt="item image" title="click to enlarge"></div>`
    : "";
  const overlay = d.image && inst.enlarged ? `<div class="overlay" title="click to close"><img src="${d.image}" alt="item image, enlarged"></div>` : "";
  root.innerHTML = `
    <div class="bar">
      <span class="item">${d.item.position ? `Item ${esc(d.item.position)} \u00b7 id <b>${esc(d.item.external_id)}</b>` : `Item <b>${esc(d.item.external_id)}</b>`}</span>
      <span class="status st-${esc(status)}">${esc(status)}</span>
      ${mark}
      <span class="spacer"></span>
      <button data-act="prev" title="previous item (P)">\u25c0</button>
      <button data-act="accept_all" class="primary" title="accept all and go to the next item (Enter)">Accept &amp; next <kbd>\u21b5</kbd></button>
      <button data-act="skip" title="skip (S)">Skip <kbd>S</kbd></button>
      <button data-act="flag" title="flag with a comment (F)">Flag <kbd>F</kbd></button>
      <button data-act="undo" ${d.can_undo ? "" : "disabled"} title="undo (Z)">Undo <kbd>Z</kbd></button>
      <button data-act="redo" ${d.can_redo ? "" : "disabled"} title="redo (Y)">Redo <kbd>Y</kbd></button>
      <button data-act="next" title="next item without accepting (N)">\u25b6</button>
      <button data-act="links" class="${inst.showLinks ? "on" : ""}" title="all word links (L)">Links <kbd>L</kbd></button>
      <button data-act="help" title="keys (?)">?</button>
    </div>
    <div class="palette">${labels}</div>
    ${flag}
    ${msg ? `<div class="msg ${esc(msg.kind)}" role="alert">${esc(msg.text)}</div>` : ""}
    <div class="main">
      <div class="text">${sides}<svg class="lines"></svg></div>
      ${image}
    </div>
    ${unproj}
    <div class="detail">${detail}</div>
    ${help}
    ${overlay}
    ${inst.navigating ? '<div class="veil">Saving and loading the next item\u2026</div>' : ""}`;
  root.dataset.item = String(d.item.id);
  root.dataset.head = String(d.item.head);
  root.dataset.busy = busy(inst) ? "1" : "0";
  paintSelection(inst);
  requestAnimationFrame(() => drawLines(inst));
}

function paintSelection(inst) {
  const r = selRange(inst);
  inst.root.querySelectorAll(".tok.sel, .tok.cursor").forEach((el) => el.classList.remove("sel", "cursor"));
  inst.root.querySelectorAll(".ent.selected").forEach((el) => el.classList.remove("selected"));
  if (!r) return;
  for (let i = r.start; i < r.end; i++) {
    const el = inst.root.querySelector(`.tok[data-side="${r.side}"][data-i="${i}"]`);
    if (el) el.classList.add("sel");
  }
  const cur = inst.root.querySelector(`.tok[data-side="${r.side}"][data-i="${inst.sel.cursor !== undefined ? inst.sel.cursor : inst.sel.focus}"]`);
  if (cur) cur.classList.add("cursor");
  const idx = selectedSpanIndex(inst);
  if (idx >= 0) {
    const ent = inst.root.querySelector(`.ent[data-side="${r.side}"][data-span="${idx}"]`);
    if (ent) ent.classList.add("selected");
  }
}

function paintResize(inst) {
  inst.root.querySelectorAll(".tok.preview").forEach((el) => el.classList.remove("preview"));
  const r = inst.resize;
  const s = inst.local[r.side][r.idx];
  if (!s || r.to === undefined) return;
  const [a, b] = r.edge === "start" ? [Math.min(r.to, s.end - 1), s.end] : [s.start, Math.max(r.to + 1, s.start + 1)];
  for (let i = a; i < b; i++) {
    const el = inst.root.querySelector(`.tok[data-side="${r.side}"][data-i="${i}"]`);
    if (el) el.classList.add("preview");
  }
}

function drawLines(inst) {
  const root = inst.root;
  const svg = root && root.querySelector("svg.lines");
  if (!svg || !inst.data.sides.target) return;
  const box = svg.parentElement.getBoundingClientRect();
  svg.setAttribute("width", String(box.width));
  svg.setAttribute("height", String(box.height));
  const point = (el, bottom) => {
    // The middle of the span's words (not of its label badge), at its bottom or top edge.
    const toks = el.classList.contains("tok") ? [el] : [...el.querySelectorAll(".tok")];
    const rs = toks.map((t) => t.getBoundingClientRect());
    const first = rs[0];
    const sameLine = rs.filter((r) => Math.abs(r.top - first.top) < 2);
    const left = Math.min(...sameLine.map((r) => r.left));
    const right = Math.max(...sameLine.map((r) => r.right));
    const y = bottom ? Math.max(...rs.map((r) => r.bottom)) : first.top;
    return [(left + right) / 2 - box.left, y - box.top];
  };
  const curve = ([x1, y1], [x2, y2]) => {
    const my = (y1 + y2) / 2;
    return `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
  };
  let paths = "";
  if (inst.showLinks) {
    for (const [s, t] of inst.data.links) {
      const a = root.querySelector(`.tok[data-side="source"][data-i="${s}"]`);
      const b = root.querySelector(`.tok[data-side="target"][data-i="${t}"]`);
      if (a && b) paths += `<path class="word" d="${curve(point(a, true), point(b, false))}"/>`;
    }
  }
  const origins = inst.data.origins || [];
  // Origins are computed by Python for the stored spans; while local edits wait for their
  // answer, pair spans that are still identical to the stored ones.
  const stored = inst.data.sides.target.spans;
  inst.local.target.forEach((t, ti) => {
    const si = stored.findIndex((x) => x.start === t.start && x.end === t.end && x.label === t.label);
    const origin = si >= 0 ? origins[si] : null;
    if (origin === null || origin === undefined) return;
    const src = inst.data.sides.source.spans[origin];
    if (!src) return;
    const sIdx = inst.local.source.findIndex((x) => x.start === src.start && x.end === src.end && x.label === src.label);
    const a = root.querySelector(`.ent[data-side="source"][data-span="${sIdx}"]`);
    const b = root.querySelector(`.ent[data-side="target"][data-span="${ti}"]`);
    if (!a || !b) return;
    paths += `<path class="ent-link${t.pending ? " pending" : ""}" style="stroke:color-mix(in srgb, ${labelColour(inst, t.label)} 55%, #495057)" d="${curve(point(a, true), point(b, false))}"><title>${esc(spanTitle(t))}</title></path>`;
  });
  svg.innerHTML = paths;
}

// ----------------------------------------------------------------------------- entry point

export default function (component) {
  const { data, parentElement, setTriggerValue, key } = component;
  let inst = instances.get(key);
  if (!inst) {
    inst = newInstance();
    instances.set(key, inst);
  }
  inst.setTriggerValue = setTriggerValue;
  if (!inst.root || !parentElement.contains(inst.root)) {
    inst.root = document.createElement("div");
    inst.root.className = "lb-editor";
    inst.root.tabIndex = 0;
    inst.root.setAttribute("data-testid", "span-editor");
    parentElement.appendChild(inst.root);
    attachMouse(inst);
  }
  receive(inst, data);
  render(inst);
  const onKey = (e) => handleKey(inst, e);
  const onUp = () => inst.onMouseUp && inst.onMouseUp();
  window.addEventListener("keydown", onKey, true);
  window.addEventListener("mouseup", onUp);
  const observer = new ResizeObserver(() => drawLines(inst));
  observer.observe(inst.root);
  return () => {
    window.removeEventListener("keydown", onKey, true);
    window.removeEventListener("mouseup", onUp);
    observer.disconnect();
  };
}
