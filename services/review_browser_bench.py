"""``bench review-browser``: what a person waits for on the Review page, in a real browser.

    python -m core.cli bench review-browser --items 100000 --cycles 100 --json

Generates a project of N items (services.review_bench.generate_project) in a throw-away
database, starts the real app (``streamlit run app.py``), opens the Review page in headless
Chromium and presses Enter ("Accept & next") ``--cycles`` times, as a person would, with a
short pause between presses (``--think-ms``). Timed in the page: from the key event's
timestamp to the frame after the next item's text is on screen (``p50_ms``, ``p95_ms``,
``max_ms``), and to the moment the editor says every change is saved (``saved_*``). After
the run, ``lost_edits`` = accepts sent minus accepts stored (must be 0) and
``duplicate_edits`` = accepts stored more than once. ``filter_ms``: from choosing another
queue order to the first item of the new queue on screen (a full page run).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["bench_review_browser"]

# Finds the editor inside the component's shadow root.
_ROOT = "[...document.querySelectorAll('[data-testid=stBidiComponentIsolated]')].map((h) => h.shadowRoot && h.shadowRoot.querySelector('.lb-editor')).find(Boolean)"
_PROBE = """() => {
  const root = () => %s;
  // The editor's own key handler runs first (registered earlier): the item shown before the
  // press is remembered after each measurement instead of read in this handler.
  window.__lb = { shown: [], saved: [], last: root().dataset.item };
  window.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    const t0 = e.timeStamp, before = window.__lb.last;
    const shown = () => {
      const r = root();
      const text = r && r.querySelector('.tokens[data-side=target]');
      if (r && r.dataset.item !== before && r.dataset.waiting === '0' && text && text.innerText.length) {
        window.__lb.last = r.dataset.item;
        requestAnimationFrame(() => window.__lb.shown.push(performance.now() - t0));
      } else requestAnimationFrame(shown);
    };
    const saved = () => {
      const r = root();
      if (r && r.dataset.outbox === '0') window.__lb.saved.push(performance.now() - t0);
      else setTimeout(saved, 5);
    };
    requestAnimationFrame(shown);
    setTimeout(saved, 0);
  }, true);
}""" % _ROOT


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _stats(values: list[float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}p50_ms": round(statistics.median(values), 1), f"{prefix}p95_ms": round(_percentile(values, 0.95), 1), f"{prefix}max_ms": round(max(values), 1)}


def _accepts(url: str, project_id: int, user: str) -> tuple[int, int]:
    """(items this person accepted, accept actions stored) in the project."""
    from sqlalchemy import func, select

    from db import models as orm
    from db import review_models as rm
    from db.engine import session_scope

    with session_scope(url) as s:
        reviewed = s.scalar(select(func.count()).select_from(rm.ReviewState).where(rm.ReviewState.project_id == project_id, rm.ReviewState.user_name == user, rm.ReviewState.status == "reviewed"))
        actions = s.scalar(
            select(func.count(func.distinct(orm.Edit.item_id)))
            .join(orm.Item, orm.Item.id == orm.Edit.item_id)
            .where(orm.Item.project_id == project_id, orm.Edit.user_name == user, orm.Edit.action == "accept", orm.Edit.side == "target")
        )
        rows = s.scalar(
            select(func.count()).select_from(orm.Edit).join(orm.Item, orm.Item.id == orm.Edit.item_id)
            .where(orm.Item.project_id == project_id, orm.Edit.user_name == user, orm.Edit.action == "accept", orm.Edit.side == "target")
        )  # fmt: skip
    return int(reviewed or 0), int(rows or 0) - int(actions or 0)


def bench_review_browser(n_items: int = 100_000, cycles: int = 100, think_ms: int = 300, seed: int = 0, keep: str | None = None) -> dict[str, Any]:
    """Generate the project, run the app, press Enter ``cycles`` times (module docstring)."""
    from playwright.sync_api import sync_playwright

    from db.engine import dispose_engine, init_db, session_scope
    from services.app_runner import CHROMIUM, CHROMIUM_ARGS, running_app, wait_for_app
    from services.queue import refresh_stats
    from services.review_bench import generate_project

    user = "reviewer"  # single-user mode: the name the app records
    with tempfile.TemporaryDirectory(prefix="labelbridge-browser-bench-") as tmp:
        data = Path(keep) if keep else Path(tmp) / "data"
        data.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{data / 'labelbridge.db'}"
        init_db(url)
        t0 = time.perf_counter()
        with session_scope(url) as s:
            project_id = generate_project(s, n_items, seed)
            refresh_stats(s, project_id)
        prepare_s = time.perf_counter() - t0
        dispose_engine(url)
        with running_app(data) as app, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            t0 = time.perf_counter()
            page.goto(f"{app}/review?project={project_id}")
            wait_for_app(page)
            page.wait_for_function(f"() => {{ const e = {_ROOT}; return !!e && e.dataset.item; }}")
            open_s = time.perf_counter() - t0
            page.evaluate(_PROBE)
            page.evaluate(f"() => {_ROOT}.focus()")
            for k in range(cycles):
                page.keyboard.press("Enter")
                page.wait_for_function(f"() => window.__lb.shown.length > {k}")
                time.sleep(think_ms / 1000)
                if k % 20 == 19:
                    print(f"review-browser: {k + 1}/{cycles}", file=sys.stderr)
            page.wait_for_function(f"() => window.__lb.saved.length >= {cycles} && {_ROOT}.dataset.outbox === '0'", timeout=120_000)
            shown = page.evaluate("() => window.__lb.shown")
            saved = page.evaluate("() => window.__lb.saved")
            # A full page run: another queue order, until its first item is on screen.
            before = page.evaluate(f"() => {_ROOT}.dataset.item")
            t0 = time.perf_counter()
            order = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Order")
            order.locator("input").click()
            page.keyboard.type("Original order")
            page.keyboard.press("Enter")
            page.wait_for_function(f"() => {{ const e = {_ROOT}; return !!e && e.dataset.item !== '{before}' && e.dataset.waiting === '0'; }}")
            filter_ms = (time.perf_counter() - t0) * 1000
            browser.close()
        reviewed, duplicates = _accepts(url, project_id, user)
        dispose_engine(url)
    return {
        "items": n_items,
        "cycles": cycles,
        "think_ms": think_ms,
        **_stats(shown),
        **_stats(saved, "saved_"),
        "lost_edits": cycles - reviewed,
        "duplicate_edits": duplicates,
        "filter_ms": round(filter_ms, 1),
        "open_s": round(open_s, 2),
        "prepare_s": round(prepare_s, 1),
    }
