"""Decisions a review can defend: calibrate (a threshold with a recall guarantee), prioritize
(active-learning ranking, at once or as a session answered after every label) and stopping.
No model is called, so ``mock`` changes nothing: the answer is the same deterministic
computation."""

from __future__ import annotations

from fastapi import APIRouter

from crystallise.api.deps import ServicesDep
from crystallise.decisions import schemas as s
from crystallise.decisions import service
from crystallise.errors import BadInput

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
    return await service.calibrate_job(services.store, job_id, body)


@router.post("/jobs/{job_id}/agreement", response_model=s.AgreementResponse)
async def agreement(
    job_id: str, body: s.AgreementRequest, services: ServicesDep
) -> s.AgreementResponse:
    """The AI's decisions against human reviewers' labels, `{"reviewers": {name: {id: 0|1}}}`:
    pairwise Cohen's kappa (95% CI) and Gwet's AC1, sensitivity and specificity against the
    reviewers' consensus (Wilson CIs), the disagreements (missed includes first) and a report
    paragraph built from the numbers."""
    return await service.agreement_job(services.store, job_id, body)


@router.post("/prioritize", response_model=s.PrioritizeResponse)
async def prioritize(body: s.PrioritizeRequest, services: ServicesDep) -> s.PrioritizeResponse:
    """Unlabelled records, most likely include first (active learning on the labels so far)."""
    return await service.run_prioritize(services.settings, body)


@router.post("/stopping", response_model=s.StoppingResponse)
def stopping(body: s.StoppingRequest, services: ServicesDep) -> s.StoppingResponse:
    """Whether screening in ranked order may stop with the recall target met."""
    return service.run_stopping(services.settings, body)


@router.post("/prioritize/sessions", response_model=s.SessionResponse, status_code=201)
async def create_session(body: s.SessionCreateRequest, services: ServicesDep) -> s.SessionResponse:
    """A prioritised-screening session: send the records once (features are built once and
    kept), then post labels one or more at a time. Each answer has the next records to screen,
    both stopping answers and the recall estimate. Sessions belong to the caller's tenant,
    survive a restart, and expire `CRYSTALLISE_RANKING_SESSION_TTL_HOURS` after their last use."""
    return await services.ranking_sessions.create(body)


@router.post("/prioritize/sessions/{session_id}/labels", response_model=s.SessionResponse)
async def label_session(
    session_id: str, body: s.SessionLabelsRequest, services: ServicesDep
) -> s.SessionResponse:
    """New labels (`[{id, label}]`; a record labelled again takes the new label) → the next
    records, the stopping answers and the recall estimate."""
    return await services.ranking_sessions.label(session_id, body)


@router.get("/prioritize/sessions/{session_id}", response_model=s.SessionResponse)
async def get_session(
    session_id: str, services: ServicesDep, next_count: int | None = None
) -> s.SessionResponse:
    """The session's current answer, without a new label."""
    if next_count is not None and not 1 <= next_count <= 1000:
        raise BadInput("next_count: must be between 1 and 1000")
    return await services.ranking_sessions.view(session_id, next_count)


@router.delete("/prioritize/sessions/{session_id}", status_code=204)
async def delete_session(session_id: str, services: ServicesDep) -> None:
    """Forget the session and its labels now."""
    await services.ranking_sessions.delete(session_id)
