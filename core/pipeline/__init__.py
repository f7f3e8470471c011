"""The pipeline: teacher -> translate -> (back-translate) -> align -> project, over a project.

Stages are pure batch functions (``core.pipeline.stages``); ``core.pipeline.store`` is the
thin database layer around them; ``run_pipeline`` runs them batch by batch, resumable after
any crash, locally or on Ray (``core.pipeline.ray_engine``); ``start_pipeline_job`` runs it
in a background process that the Projects page polls. CLI: ``core.pipeline.cli``.
"""

from core.pipeline.jobs import cancel_pipeline_job, refresh_jobs, start_pipeline_job
from core.pipeline.run import ENGINES, PipelineCancelled, RunReport, StageReport, run_pipeline
from core.pipeline.stages import (
    PipelineConfig,
    StageBatch,
    StageLoadError,
    StageOutput,
    StageRunner,
    StageSpec,
    plan_stages,
    projection_set_name,
    stage_key,
    teacher_set_name,
)
from core.pipeline.store import pipeline_status

__all__ = [
    "ENGINES",
    "PipelineConfig",
    "PipelineCancelled",
    "RunReport",
    "StageReport",
    "StageBatch",
    "StageLoadError",
    "StageOutput",
    "StageRunner",
    "StageSpec",
    "cancel_pipeline_job",
    "pipeline_status",
    "plan_stages",
    "projection_set_name",
    "refresh_jobs",
    "run_pipeline",
    "stage_key",
    "start_pipeline_job",
    "teacher_set_name",
]
