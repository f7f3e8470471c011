"""LabelBridge persistence: SQLAlchemy models, the one engine/session factory, queries."""
