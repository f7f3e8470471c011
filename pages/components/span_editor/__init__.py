"""The span editor: a Streamlit Custom Component v2 (``st.components.v2.component``).

The frontend is plain ES-module JavaScript and CSS committed next to this file (no npm
build): four parts (queue.js: the browser's queue and the outbox; edit.js: editing, keys,
mouse; draw.js: drawing; main.js: the entry point) concatenated into one module. Python
sends one JSON payload (core.annotations.editor.editor_data) and receives one event per
user action through the ``event`` trigger; see queue.js for the protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import streamlit as st

_HERE = Path(__file__).resolve().parent
JS_PARTS = ("queue.js", "edit.js", "draw.js", "main.js")

_COMPONENT = st.components.v2.component(
    "labelbridge.span_editor",
    css=(_HERE / "editor.css").read_text(encoding="utf-8"),
    js="\n".join((_HERE / part).read_text(encoding="utf-8") for part in JS_PARTS),
)


def span_editor(data: dict[str, Any], *, key: str, on_event: Callable[[], None]) -> Any:
    """Mount the editor; ``on_event`` runs (before the script) when it sends an event,
    which is then ``st.session_state[key]["event"]``."""
    return _COMPONENT(key=key, data=data, on_event_change=on_event, height="content")


def pending_event(key: str) -> dict[str, Any] | None:
    """The event the editor just sent (inside the ``on_event`` callback), else None."""
    state = st.session_state.get(key)
    if state is None:
        return None
    event = state.get("event") if hasattr(state, "get") else None
    return event if isinstance(event, dict) else None
