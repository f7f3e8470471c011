"""The student: a transformer token classifier trained on gold + projected (silver) items.

It serves two purposes: a model that tags new target-language text, and a second opinion
on each projection (``disagreement``) that ranks the review queue.

Public API::

    from core.student import TrainConfig, train_student, save_student, load_student
    from core.student import predict, predict_details, disagreement
"""

from core.student.config import TrainConfig
from core.student.data import item_is_gold, is_silver_source
from core.student.model import StudentModel, TrainedStudent, load_student, save_student
from core.student.predict import StudentPrediction, decode_iob2, disagreement, predict, predict_details, span_f1
from core.student.train import TrainingCancelled, train_student

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
