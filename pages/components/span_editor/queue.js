// LabelBridge span editor, part 1 of 4: the browser's queue and the outbox.
//
// The editor holds the item shown now and the next few of the person's queue (sent by
// Python as data.items), so Enter / Skip / Flag / N show the next sentence at once. Every
// change becomes an event {action, item, head, client, seq, current, ...} in the outbox;
// events go to Python one at a time through setTriggerValue("event", ...), and each is
// taken off the outbox only when Python's answer (data.ack with the same client and seq)
// says the database has it. An answer that does not come is retried with the same seq
// (Python applies an event at most once), then shown as "Not saved · Retry".
// (The four parts are concatenated into one module by span_editor/__init__.py.)

const CLIENT = (globalThis.crypto && crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36)).slice(0, 24);
const instances = new Map();
const ANSWER_TIMEOUT_MS = 8000;
const RETRIES = 3;
const SIDES = ["source", "target"];
const LEAVING = ["accept_all", "skip", "flag"];

function newInstance() {
  return {
    data: null, // the last payload (labels, user, flags)
    cache: new Map(), // item id -> item payload as Python last sent it
    local: new Map(), // item id -> {source, target}: spans as shown, changes not yet answered included
    heads: new Map(), // item id -> this person's newest edit id on it (the base of the next write)
    status: new Map(), // item id -> this person's status as shown
    notes: new Map(), // item id -> {kind, text}
    savedItems: new Set(), // items with an answered change
    left: new Set(), // items accepted / skipped / flagged here (until Python's queue drops them)
    upcoming: [], // the browser's queue after the current item
    history: [], // items shown before (P goes back)
    cur: null,
    waiting: false, // the browser's queue ran out: waiting for Python's next items
    outbox: [],
    seq: 0,
    tries: 0,
    timer: null,
    failed: false,
    reset: null,
    sel: null, // {side, anchor, focus, cursor}
    cursorSide: "target",
    drag: null,
    resize: null,
    note: null, // a message of the moment {kind, text}
    showHelp: false,
    showLinks: false,
    flagOpen: false,
    enlarged: false,
    root: null,
    listening: false,
  };
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

function current(inst) {
  return inst.cur === null ? null : inst.cache.get(inst.cur) || null;
}

function spansOf(inst, side) {
  const local = inst.local.get(inst.cur);
  return local ? local[side] : [];
}

function setSpans(inst, side, spans) {
  const local = inst.local.get(inst.cur);
  if (local) local[side] = spans;
}

function sidesOf(inst) {
  const p = current(inst);
  return p ? SIDES.filter((s) => p.sides[s]) : [];
}

function user(inst) {
  return `human:${inst.data.user}`;
}

function fromPayload(p) {
  const out = {};
  for (const side of SIDES) out[side] = p.sides[side] ? cloneSpans(p.sides[side].spans) : [];
  return out;
}

function pendingFor(inst, id) {
  return inst.outbox.some((e) => e.item === id);
}

// ----------------------------------------------------------------------------- the outbox

function enqueue(inst, event) {
  inst.seq += 1;
  inst.outbox.push({ ...event, item: event.item === undefined ? inst.cur : event.item, client: CLIENT, seq: inst.seq });
  sendNext(inst);
}

function sendNext(inst) {
  const ev = inst.outbox[0];
  if (!ev || ev.sent) return;
  const base = inst.cache.get(ev.item);
  ev.head = inst.heads.has(ev.item) ? inst.heads.get(ev.item) : base ? base.item.head : 0;
  ev.current = inst.cur === null ? ev.item : inst.cur;
  ev.sent = true;
  transmit(inst, ev);
}

function transmit(inst, ev) {
  ev.attempt = (ev.attempt || 0) + 1;
  clearTimeout(inst.timer);
  inst.timer = setTimeout(() => onTimeout(inst, ev), ANSWER_TIMEOUT_MS);
  const { sent, ...wire } = ev;
  inst.setTriggerValue("event", wire);
}

function onTimeout(inst, ev) {
  if (inst.outbox[0] !== ev) return;
  inst.tries += 1;
  if (inst.tries < RETRIES) return transmit(inst, ev); // the same seq: applied at most once
  inst.failed = true;
  render(inst);
}

function retry(inst) {
  const ev = inst.outbox[0];
  if (!ev) return;
  inst.failed = false;
  inst.tries = 0;
  transmit(inst, ev);
  render(inst);
}

function processAck(inst, ack) {
  const ev = inst.outbox[0];
  if (!ack || !ev || ack.client !== CLIENT || ack.seq !== ev.seq) return;
  clearTimeout(inst.timer);
  inst.outbox.shift();
  inst.tries = 0;
  inst.failed = false;
  const id = ack.item === undefined || ack.item === null ? ev.item : ack.item;
  if (ack.ok !== false) {
    if (typeof ack.head === "number") inst.heads.set(ev.item, ack.head);
    if (ack.status && !inst.left.has(ev.item)) inst.status.set(ev.item, ack.status);
    inst.savedItems.add(ev.item);
    if (ack.message) inst.notes.set(ev.item, ack.message);
  } else {
    // Refused (a conflict, a span the server will not take): drop what was built on it and
    // show what is stored; an item that was left goes back to the front so nothing is lost.
    inst.outbox = inst.outbox.filter((e) => e.item !== ev.item);
    const stored = inst.cache.get(ev.item);
    if (stored) inst.local.set(ev.item, fromPayload(stored));
    inst.notes.set(ev.item, ack.message || { kind: "error", text: "Not saved." });
    if (inst.left.has(ev.item)) {
      inst.left.delete(ev.item);
      if (inst.cur !== ev.item) {
        if (inst.cur !== null) inst.upcoming.unshift(inst.cur);
        moveTo(inst, ev.item);
      }
    }
  }
  if (id !== ev.item && ack.message) inst.notes.set(id, ack.message);
}

// ----------------------------------------------------------------------------- receiving data

function receive(inst, data) {
  inst.data = data;
  processAck(inst, data.ack);
  const items = data.items || [];
  for (const p of items) {
    const id = p.item.id;
    inst.cache.set(id, p);
    if (!pendingFor(inst, id)) {
      inst.local.set(id, fromPayload(p));
      inst.heads.set(id, p.item.head);
      if (!inst.left.has(id)) inst.status.set(id, p.item.status);
    }
  }
  if (data.prefetch === false) {
    // A page without a queue in the browser (Adjudicate): Python says which item to show.
    inst.reset = data.reset;
    inst.upcoming = [];
    const shown = items.length ? items[0].item.id : null;
    if (!inst.outbox.length || inst.waiting) {
      inst.waiting = false;
      inst.left.clear();
      if (shown !== inst.cur) moveTo(inst, shown);
    }
  } else if (data.reset !== inst.reset) {
    const first = inst.reset === null;
    inst.reset = data.reset;
    inst.left.clear();
    inst.history = [];
    inst.upcoming = items.slice(1).map((p) => p.item.id);
    inst.waiting = false;
    moveTo(inst, items.length ? items[0].item.id : null);
    if (!first && inst.root) setTimeout(() => inst.root.focus({ preventScroll: true }), 0); // keys go to the editor again
  } else {
    const ids = items.map((p) => p.item.id).filter((id) => !inst.left.has(id));
    const at = ids.indexOf(inst.cur);
    inst.upcoming = at >= 0 ? ids.slice(at + 1) : ids.filter((id) => id !== inst.cur);
    if (inst.waiting || inst.cur === null) {
      const next = inst.upcoming.shift();
      if (next !== undefined) {
        inst.waiting = false;
        moveTo(inst, next);
      } else if (!inst.outbox.length) {
        inst.waiting = false; // nothing more in this queue: stay, the note says so
      }
    }
  }
  if (typeof data.show_links === "boolean" && data.show_links) inst.showLinks = true;
  sendNext(inst);
}

// ----------------------------------------------------------------------------- navigation

function moveTo(inst, id) {
  inst.cur = id;
  inst.sel = null;
  inst.flagOpen = false;
  inst.enlarged = false;
  inst.note = null;
  const p = current(inst);
  if (!p) return;
  if (!inst.local.has(id)) inst.local.set(id, fromPayload(p));
  if (!p.sides[inst.cursorSide]) inst.cursorSide = "source";
  if (inst.data.binary) selectNextQuestion(inst);
}

function advance(inst, action, extra) {
  const id = inst.cur;
  if (id === null || inst.waiting) return;
  inst.note = null;
  if (action === "prev") {
    if (inst.history.length && inst.data.prefetch !== false) {
      inst.upcoming.unshift(id);
      moveTo(inst, inst.history.pop());
    } else {
      inst.waiting = true;
      enqueue(inst, { action: "prev", item: id });
    }
    return render(inst);
  }
  if (LEAVING.includes(action) && inst.data.readonly && action !== "accept_all") return refuse(inst, "This view is read-only.");
  inst.history.push(id);
  const next = inst.data.prefetch === false ? undefined : inst.upcoming.shift();
  if (next !== undefined) moveTo(inst, next);
  else inst.waiting = true;
  // The event leaves after the move, so it tells Python which item the browser shows now.
  if (LEAVING.includes(action)) {
    inst.left.add(id);
    inst.status.set(id, action === "accept_all" ? "reviewed" : action === "skip" ? "skipped" : "flagged");
    if (action === "accept_all") {
      const local = inst.local.get(id);
      if (local) for (const side of SIDES) local[side] = local[side].map((s) => ({ ...s, pending: false }));
    }
    enqueue(inst, { action, item: id, ...(extra || {}) });
  } else if (next === undefined && action === "next") {
    enqueue(inst, { action: "next", item: id });
  }
  render(inst);
}

function commit(inst, side, spans, op) {
  if (inst.data.readonly) return refuse(inst, "This view is read-only.");
  const before = cloneSpans(spansOf(inst, side));
  setSpans(inst, side, sorted(spans));
  inst.note = null;
  enqueue(inst, { action: "edit", side, op, spans: cloneSpans(spansOf(inst, side)), before });
  if (inst.data.binary) selectNextQuestion(inst);
  render(inst);
}

function enqueueSimple(inst, action) {
  if (inst.data.readonly || inst.cur === null) return;
  inst.note = null;
  enqueue(inst, { action });
  render(inst);
}

function refuse(inst, text) {
  inst.note = { kind: "warning", text };
  render(inst);
}
