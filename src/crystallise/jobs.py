"""Wires each async job kind to its pipeline (kept out of the runner to avoid cycles)."""

from __future__ import annotations

from crystallise.services import Services


def register_job_handlers(services: Services) -> None:
    """Register the screening and indexer job functions with the runner."""
    from crystallise.indexer.jobs import make_indexer_job
    from crystallise.screening.jobs import make_screening_job

    services.runner.register("screening", make_screening_job(services))
    services.runner.register("indexer", make_indexer_job(services))
