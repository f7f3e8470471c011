"""The pipeline's pure part: teacher -> translate -> (back-translate) -> align -> project as
batch functions (``core.pipeline.stages``). Running them over a project's items, resumable
and on Ray, is services.pipeline's job."""

from core.pipeline.stages import (
    PipelineConfig,
    StageBatch,
    StageLoadError,
    StageOutput,
    StageRunner,
    StageSpec,
    plan_stages,
    projection_set_name,
    run_batch,
    stage_key,
    teacher_set_name,
)

__all__ = [
    "PipelineConfig",
    "StageBatch",
    "StageLoadError",
    "StageOutput",
    "StageRunner",
    "StageSpec",
    "plan_stages",
    "projection_set_name",
    "run_batch",
    "stage_key",
    "teacher_set_name",
]
