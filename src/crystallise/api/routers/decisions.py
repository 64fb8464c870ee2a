"""Decisions a review can defend: calibrate (a threshold with a recall guarantee), prioritize
(active-learning ranking) and stopping (a statistical stopping rule). Stateless; no model is
called, so ``mock`` changes nothing: the answer is the same deterministic computation."""

from __future__ import annotations

from fastapi import APIRouter

from crystallise.api.deps import ServicesDep
from crystallise.decisions import schemas as s
from crystallise.decisions import service

router = APIRouter(prefix="/screening", tags=["decisions"])


@router.post("/calibrate", response_model=s.CalibrateResponse)
def calibrate(body: s.CalibrateRequest, services: ServicesDep) -> s.CalibrateResponse:
    """The score threshold that meets `target_recall` with `confidence`, from a labelled
    simple random sample (labels only on the sample)."""
    return service.run_calibrate(services.settings, body)


@router.post("/jobs/{job_id}/calibrate", response_model=s.CalibrateResponse)
async def calibrate_job(
    job_id: str, body: s.JobCalibrateRequest, services: ServicesDep
) -> s.CalibrateResponse:
    """The same for a finished job: send only the sample's labels, `{id: 0|1}`."""
    return await service.calibrate_job(services, job_id, body)


@router.post("/jobs/{job_id}/agreement", response_model=s.AgreementResponse)
async def agreement(
    job_id: str, body: s.AgreementRequest, services: ServicesDep
) -> s.AgreementResponse:
    """The AI's decisions against human reviewers' labels, `{"reviewers": {name: {id: 0|1}}}`:
    pairwise Cohen's kappa (95% CI) and Gwet's AC1, sensitivity and specificity against the
    reviewers' consensus (Wilson CIs), the disagreements (missed includes first) and a report
    paragraph built from the numbers."""
    return await service.agreement_job(services, job_id, body)


@router.post("/prioritize", response_model=s.PrioritizeResponse)
async def prioritize(body: s.PrioritizeRequest, services: ServicesDep) -> s.PrioritizeResponse:
    """Unlabelled records, most likely include first (active learning on the labels so far)."""
    return await service.run_prioritize(services.settings, body)


@router.post("/stopping", response_model=s.StoppingResponse)
def stopping(body: s.StoppingRequest, services: ServicesDep) -> s.StoppingResponse:
    """Whether screening in ranked order may stop with the recall target met."""
    return service.run_stopping(services.settings, body)
