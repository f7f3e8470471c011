"""LabelBridge persistence: SQLAlchemy models, the one engine/session factory, and the
queries by area (projects, items, span sets, edits, review state, ...), Session first."""
