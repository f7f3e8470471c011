// LabelBridge span editor, part 3 of 4: drawing the item, the marks and the link lines.

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function labelColour(inst, label) {
  const found = inst.data.labels.find((l) => l.name === label);
  return found ? found.colour : "#e9ecef";
}

function hasConfidence(s) {
  return s.confidence !== null && s.confidence !== undefined && !String(s.source || "").startsWith("human:");
}

function spanTitle(s) {
  const parts = [s.label, `from ${s.source}`];
  if (hasConfidence(s)) parts.push(`confidence ${Number(s.confidence).toFixed(2)}`);
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
  const d = current(inst).sides[side];
  const local = spansOf(inst, side);
  const spans = sorted(local).map((s) => ({ s, idx: local.indexOf(s) }));
  const startAt = new Map(spans.map((x) => [x.s.start, x]));
  let html = "";
  let open = null;
  for (let i = 0; i < d.tokens.length; i++) {
    const begin = startAt.get(i);
    if (begin) {
      open = begin;
      const s = begin.s;
      const q = inst.data.binary && s.pending && s.label === inst.data.binary ? " question" : "";
      html += `<mark class="ent${s.pending ? " pending" : ""}${q}" data-side="${side}" data-span="${begin.idx}" style="--c:${labelColour(inst, s.label)}" title="${esc(spanTitle(s))}">`;
      html += `<span class="handle start" data-side="${side}" data-span="${begin.idx}" data-edge="start"></span>`;
    }
    html += `<span class="tok" data-side="${side}" data-i="${i}">${esc(d.tokens[i])}</span>`;
    if (open && i === open.s.end - 1) {
      const s = open.s;
      const conf = hasConfidence(s) ? `<span class="conf">${Number(s.confidence).toFixed(2)}</span>` : "";
      html += `<sup class="lab">${esc(s.label)}${conf}<span class="prov">${esc(provenance(s.source))}</span></sup>`;
      html += `<span class="handle end" data-side="${side}" data-span="${open.idx}" data-edge="end"></span></mark>`;
      open = null;
    }
    if (d.spaces[i]) html += " ";
  }
  return html;
}

function positionText(inst, p) {
  const q = inst.data.queue;
  const items = (inst.data.items || []).map((x) => x.item.id).filter((id) => !inst.left.has(id) || id === inst.cur);
  const offset = items.indexOf(inst.cur);
  if (q && q.index && offset >= 0) return `Item ${q.index + offset} of ${q.total} in this queue \u00b7 id <b>${esc(p.item.external_id)}</b>`;
  if (p.item.position) return `Item ${esc(p.item.position)} \u00b7 id <b>${esc(p.item.external_id)}</b>`;
  return `Item <b>${esc(p.item.external_id)}</b>`;
}

function saveMark(inst) {
  if (inst.failed) return `<span class="mark failed">Not saved <button data-act="retry" class="small">Retry</button></span>`;
  if (inst.outbox.length) return `<span class="mark saving">Saving\u2026${inst.outbox.length > 1 ? ` (${inst.outbox.length})` : ""}</span>`;
  if (inst.savedItems.has(inst.cur)) return `<span class="mark saved" title="${esc(inst.data.saved || "")}">\u2713 saved</span>`;
  return `<span class="mark"></span>`;
}

function detailHtml(inst) {
  if (!inst.sel) return "";
  const r = selRange(inst);
  const toks = tokensOf(inst, r.side).slice(r.start, r.end).join(" ");
  const idx = selectedSpanIndex(inst);
  if (idx < 0) return `Selected \u2018${esc(toks)}\u2019 (${r.side}) \u2014 press 1-9 or click a label`;
  const s = spansOf(inst, r.side)[idx];
  if (inst.data.binary && s.pending && s.label === inst.data.binary) {
    return `Is \u2018${esc(toks)}\u2019 a <b>${esc(s.label)}</b>? <button data-act="yes" class="primary">Yes <kbd>A</kbd></button><button data-act="no">No <kbd>R</kbd></button>`;
  }
  return `<b>${esc(s.label)}</b> \u2018${esc(toks)}\u2019 \u00b7 ${esc(s.source)}${hasConfidence(s) ? ` \u00b7 confidence ${Number(s.confidence).toFixed(2)}` : ""}${s.pending ? " \u00b7 <i>suggestion</i>" : ""}
    ${s.pending ? `<button data-act="accept">Accept <kbd>A</kbd></button><button data-act="reject">Reject <kbd>R</kbd></button>` : ""}
    <button data-act="delete">Delete <kbd>\u232b</kbd></button><button data-act="merge">Merge <kbd>M</kbd></button><button data-act="split">Split <kbd>X</kbd></button>`;
}

function render(inst) {
  const d = inst.data;
  const root = inst.root;
  if (!d || !root) return;
  const p = current(inst);
  root.dataset.busy = inst.outbox.length ? "1" : "0";
  root.dataset.waiting = inst.waiting ? "1" : "0";
  root.dataset.failed = inst.failed ? "1" : "0";
  root.dataset.outbox = String(inst.outbox.length);
  root.dataset.seq = String(inst.seq);
  if (!p) {
    root.dataset.item = "";
    root.innerHTML = `<div class="msg info">${esc((d.message && d.message.text) || "No item in this queue.")}</div>`;
    return;
  }
  const labels = d.labels
    .map((l, i) => `<button class="chip" data-act="label" data-index="${i}" style="--c:${l.colour}" title="key ${i + 1}">${i < 9 ? `<kbd>${i + 1}</kbd>` : ""}${esc(l.name)}</button>`)
    .join("");
  const status = inst.status.get(inst.cur) || p.item.status;
  const msg = inst.note || inst.notes.get(inst.cur) || (inst.cur === (d.items[0] && d.items[0].item.id) ? d.message : null);
  const sides = sidesOf(inst)
    .map((side) => {
      const sd = p.sides[side];
      const who = sd.own ? "your version" : sd.suggestion ? `suggested: ${sd.suggestion}` : "no spans yet";
      const name = (d.side_names && d.side_names[side]) || (side === "source" ? "Source" : "Translation");
      return `<div class="side" data-side="${side}"><div class="side-head">${name}${sd.lang ? ` (${esc(sd.lang)})` : ""} <span class="who">${esc(who)}</span></div><div class="tokens" data-side="${side}">${sideHtml(inst, side)}</div></div>`;
    })
    .join('<div class="gap"></div>');
  const unproj = (p.unprojected || []).length
    ? `<div class="unprojected">Not projected: ${p.unprojected
        .map((u) => `<button class="chip small" data-act="select-unprojected" data-start="${u.start}" data-end="${u.end}" style="--c:${labelColour(inst, u.label)}">${esc(u.label)} \u2018${esc(u.text)}\u2019</button>`)
        .join(" ")}</div>`
    : "";
  const helpRows = d.binary ? [...BINARY_HELP, ...HELP] : HELP;
  const help = inst.showHelp ? `<div class="help"><b>Keys</b><table>${helpRows.map(([k, v]) => `<tr><td><kbd>${esc(k)}</kbd></td><td>${esc(v)}</td></tr>`).join("")}</table></div>` : "";
  const flag = inst.flagOpen
    ? `<div class="flagbox"><input type="text" placeholder="What is wrong with this item? (Enter flags it)" aria-label="Flag comment"><button data-act="flag-submit">Flag</button></div>`
    : "";
  const image = p.image ? `<div class="imgcol"><img class="thumb" src="${p.image}" alt="item image" title="click to enlarge"></div>` : p.has_image ? `<div class="imgcol"><div class="thumb-wait">image\u2026</div></div>` : "";
  const overlay = p.image && inst.enlarged ? `<div class="overlay" title="click to close"><img src="${p.image}" alt="item image, enlarged"></div>` : "";
  const canUndo = p.can_undo || pendingFor(inst, inst.cur);
  const binary = d.binary ? `<span class="binary">Yes/no: <b>${esc(d.binary)}</b></span>` : "";
  root.innerHTML = `
    <div class="bar">
      <span class="item">${positionText(inst, p)}</span>
      <span class="status st-${esc(status)}">${esc(status)}</span>
      ${saveMark(inst)}${binary}
      <span class="spacer"></span>
      <button data-act="prev" title="previous item (P)">\u25c0</button>
      <button data-act="accept_all" class="primary" title="accept all and go to the next item (Enter)">Accept &amp; next <kbd>\u21b5</kbd></button>
      <button data-act="skip" title="skip (S)">Skip <kbd>S</kbd></button>
      <button data-act="flag" title="flag with a comment (F)">Flag <kbd>F</kbd></button>
      <button data-act="undo" ${canUndo ? "" : "disabled"} title="undo (Z)">Undo <kbd>Z</kbd></button>
      <button data-act="redo" ${p.can_redo ? "" : "disabled"} title="redo (Y)">Redo <kbd>Y</kbd></button>
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
    <div class="detail">${detailHtml(inst)}</div>
    ${help}
    ${overlay}
    ${inst.waiting ? '<div class="veil">Loading the next item\u2026</div>' : ""}`;
  root.dataset.item = String(inst.cur);
  root.dataset.head = String(inst.heads.has(inst.cur) ? inst.heads.get(inst.cur) : p.item.head);
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
  const s = spansOf(inst, r.side)[r.idx];
  if (!s || r.to === undefined) return;
  const [a, b] = r.edge === "start" ? [Math.min(r.to, s.end - 1), s.end] : [s.start, Math.max(r.to + 1, s.start + 1)];
  for (let i = a; i < b; i++) {
    const el = inst.root.querySelector(`.tok[data-side="${r.side}"][data-i="${i}"]`);
    if (el) el.classList.add("preview");
  }
}

// The middle of a span's words on one of its lines: the last line at the bottom edge (where
// a line to the translation below leaves), the first line at the top edge (where it
// arrives), so an entity that wraps onto two lines is joined where its words are.
function anchorPoint(el, bottom, box) {
  const toks = el.classList.contains("tok") ? [el] : [...el.querySelectorAll(".tok")];
  const rs = toks.map((t) => t.getBoundingClientRect());
  const ref = bottom ? rs.reduce((a, b) => (b.top > a.top + 1 ? b : a)) : rs.reduce((a, b) => (b.top < a.top - 1 ? b : a));
  const line = rs.filter((r) => Math.abs(r.top - ref.top) < 2);
  const left = Math.min(...line.map((r) => r.left));
  const right = Math.max(...line.map((r) => r.right));
  const y = bottom ? Math.max(...line.map((r) => r.bottom)) : Math.min(...line.map((r) => r.top));
  return [(left + right) / 2 - box.left, y - box.top];
}

function drawLines(inst) {
  const root = inst.root;
  const svg = root && root.querySelector("svg.lines");
  const p = current(inst);
  if (!svg || !p || !p.sides.target) return;
  const box = svg.parentElement.getBoundingClientRect();
  svg.setAttribute("width", String(box.width));
  svg.setAttribute("height", String(box.height));
  const curve = ([x1, y1], [x2, y2]) => {
    const my = (y1 + y2) / 2;
    return `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
  };
  let paths = "";
  if (inst.showLinks) {
    for (const [s, t] of p.links) {
      const a = root.querySelector(`.tok[data-side="source"][data-i="${s}"]`);
      const b = root.querySelector(`.tok[data-side="target"][data-i="${t}"]`);
      if (a && b) paths += `<path class="word" d="${curve(anchorPoint(a, true, box), anchorPoint(b, false, box))}"/>`;
    }
  }
  // Origins are computed by Python for the stored spans; while local changes wait for their
  // answer, pair spans that are still identical to the stored ones.
  const origins = p.origins || [];
  const stored = p.sides.target.spans;
  spansOf(inst, "target").forEach((t, ti) => {
    const si = stored.findIndex((x) => x.start === t.start && x.end === t.end && x.label === t.label);
    const origin = si >= 0 ? origins[si] : null;
    if (origin === null || origin === undefined) return;
    const src = p.sides.source.spans[origin];
    if (!src) return;
    const sIdx = spansOf(inst, "source").findIndex((x) => x.start === src.start && x.end === src.end && x.label === src.label);
    const a = root.querySelector(`.ent[data-side="source"][data-span="${sIdx}"]`);
    const b = root.querySelector(`.ent[data-side="target"][data-span="${ti}"]`);
    if (!a || !b) return;
    paths += `<path class="ent-link${t.pending ? " pending" : ""}" style="stroke:color-mix(in srgb, ${labelColour(inst, t.label)} 55%, #495057)" d="${curve(anchorPoint(a, true, box), anchorPoint(b, false, box))}"><title>${esc(spanTitle(t))}</title></path>`;
  });
  svg.innerHTML = paths;
}
