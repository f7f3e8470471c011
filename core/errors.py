"""The base of every error a user can cause (bad input, a setting that cannot work).

Each domain has its own subclass (FormatError, SpanError, TagError, TeacherError,
TranslationError, AlignError, ProjectionError, TrainingError, QueryError, ...), so callers
catch the domain they handle; the command line prints any of them as one line. They
subclass ValueError too, so code written against ValueError keeps working.
"""

from __future__ import annotations

__all__ = ["LabelBridgeError", "ConfigError", "BenchError"]


class LabelBridgeError(ValueError):
    """A request LabelBridge refuses, with a message that says what to change."""


class ConfigError(LabelBridgeError):
    """A setting or option that cannot work (unknown name, value out of range)."""


class BenchError(LabelBridgeError):
    """A benchmark asked for something it cannot measure (missing file, unparallel corpora)."""
