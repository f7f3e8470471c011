"""The student: a transformer token classifier trained on gold + projected (silver) items.

It serves two purposes: a model that tags new target-language text, and a second opinion
on each projection (``disagreement``) that ranks the review queue.

Public API::

    from core.student import TrainConfig, train_student, save_student, load_student
    from core.student import predict, predict_details, disagreement
"""

import importlib
from typing import Any

# Names resolve lazily (PEP 562) so that importing the config or the benchmark's argument
# parser does not import torch: `python -m core.cli --help` stays fast.
_EXPORTS = {
    "TrainConfig": "core.student.config",
    "item_is_gold": "core.student.data",
    "is_silver_source": "core.student.data",
    "StudentModel": "core.student.model",
    "TrainedStudent": "core.student.model",
    "load_student": "core.student.model",
    "save_student": "core.student.model",
    "StudentPrediction": "core.student.inference",
    "decode_iob2": "core.student.inference",
    "disagreement": "core.student.inference",
    "predict": "core.student.inference",
    "predict_details": "core.student.inference",
    "span_f1": "core.student.inference",
    "TrainingCancelled": "core.student.train",
    "train_student": "core.student.train",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.student' has no attribute {name!r}")


__all__ = [
    "StudentModel",
    "StudentPrediction",
    "TrainConfig",
    "TrainedStudent",
    "TrainingCancelled",
    "decode_iob2",
    "disagreement",
    "is_silver_source",
    "item_is_gold",
    "load_student",
    "predict",
    "predict_details",
    "save_student",
    "span_f1",
    "train_student",
]
