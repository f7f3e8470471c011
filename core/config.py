"""Settings read from the environment, resolved when asked (so tests can change them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path  # LABELBRIDGE_DATA: media, models, caches
    db_url: str  # LABELBRIDGE_DB: any SQLAlchemy URL

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def encoder(self) -> str:
        """Default multilingual encoder: LABELBRIDGE_ENCODER (HF id or path) or the converted e5-small."""
        return os.environ.get("LABELBRIDGE_ENCODER") or str(self.models_dir / "multilingual-e5-small")

    @property
    def align_precision(self) -> str:
        """Products of the embedding aligner: LABELBRIDGE_ALIGN_PRECISION = auto (bf16 on CPUs
        with native bf16), float32 (simalign's links exactly) or bfloat16."""
        return os.environ.get("LABELBRIDGE_ALIGN_PRECISION") or "auto"


def settings() -> Settings:
    data_dir = Path(os.environ.get("LABELBRIDGE_DATA") or REPO_ROOT / "data").resolve()
    db_url = os.environ.get("LABELBRIDGE_DB") or f"sqlite:///{data_dir / 'labelbridge.db'}"
    return Settings(data_dir=data_dir, db_url=db_url)
