"""Start a worker process: load the model, build the app, hand it to Faust's worker."""

from __future__ import annotations

import logging
import time

from streams.errors import ModelLoadError
from streams.ops.logs import configure_logging, logging_config
from streams.ops.memory import Allocator, register_memory_trim
from streams.scoring.scorer import Scorer
from streams.settings import Settings

log = logging.getLogger(__name__)


def load_model(settings: Settings) -> Scorer | None:
    """The configured model, or None when ``STREAMREC_MODEL_DIR`` is unset."""
    if settings.model_dir is None:
        if settings.model_registry is not None:
            log.info("serving the version promoted in the registry %s (control topic %s)",
                     settings.model_registry, settings.topic_control)
        else:
            log.warning("neither STREAMREC_MODEL_DIR nor STREAMREC_MODEL_REGISTRY is set: "
                        "serving trending items only")
        return None
    from models.serving import load_scorer

    try:
        return load_scorer(
            settings.model_dir,
            device=settings.model_device,
            intra_op_threads=settings.model_threads,
            retrieval=settings.model_retrieval,
            candidates=settings.model_candidates,
        )
    except Exception as exc:  # any failure to load is the same operator problem
        raise ModelLoadError(f"cannot serve model dir {settings.model_dir}: {exc}") from exc


def run_worker(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    import faust

    from streams.app import create_worker
    from streams.kafka.embedded import broker_keeps_data

    configure_logging(settings.log_level, settings.log_format)
    allocator = Allocator.load()
    allocator.tune()  # before any thread starts: the arena cap applies to new threads
    scorer = load_model(settings)
    worker = create_worker(settings, scorer=scorer,
                           broker_keeps_data=broker_keeps_data(settings))
    register_memory_trim(worker.app, allocator, settings.memory_trim_interval_s)
    if scorer is not None:
        worker.metrics.model_info.info(
            {"name": scorer.name, "version": scorer.version,
             "provider": str(getattr(scorer, "provider", "unknown"))}
        )
        worker.metrics.model_loaded_timestamp_seconds.set(time.time())
    faust_worker = faust.Worker(
        worker.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level, settings.log_format),
        override_logging=True,
        redirect_stdouts=False,
        quiet=True,
    )
    faust_worker.execute_from_commandline()
    return 0
