"""Stable, readable OpenAPI operation ids (``createScreeningJob``, ``parseRecords``): what a
generated client names its methods. One table, checked for uniqueness by a test; a route
missing from it falls back to its function name in camelCase."""

from __future__ import annotations

from fastapi.routing import APIRoute

# (function name, kind or "") -> operation id; {Kind} is Screening or Indexer
_NAMES: dict[str, str] = {
    "create_job": "create{Kind}Job",
    "list_jobs": "list{Kind}Jobs",
    "get_job": "get{Kind}Job",
    "results_page": "get{Kind}JobResults",
    "estimate": "estimate{Kind}Job",
    "active_job": "getActive{Kind}Job",
    "cancel_job": "cancel{Kind}Job",
    "retry": "retry{Kind}Job",
    "job_provenance": "get{Kind}JobProvenance",
    "job_events_stream": "stream{Kind}JobEvents",
    "export": "export{Kind}Job",
    "calibrate": "calibrateThreshold",
    "calibrate_job": "calibrate{Kind}Job",
    "agreement": "compare{Kind}JobWithReviewers",
    "prisma": "get{Kind}JobPrisma",
    "update_job": "update{Kind}Job",
    "prioritize": "prioritizeRecords",
    "stopping": "testStopping",
    "create_session": "createPrioritizationSession",
    "label_session": "labelPrioritizationSession",
    "get_session": "getPrioritizationSession",
    "delete_session": "deletePrioritizationSession",
    "run": "runIndexer",
    "suggest_fields": "suggestIndexerFields",
    "refine_fields": "refineIndexerFields",
    "group_tags": "groupIndexerTags",
    "parse": "parseRecords",
    "usage": "getUsage",
    "health": "getHealth",
    "ready": "getReadiness",
    "list_services": "listServiceConfigs",
    "get_service": "getServiceConfig",
    "update_service": "updateServiceConfig",
    "prompts": "listPrompts",
    "get_model": "getModelInfo",
    "analyze_question": "analyzeQuestion",
    "generate": "generateCriteria",
    "picos": "checkPicos",
    "refine_context": "refineContext",
    "refine": "refineCriteria",
    "consolidate": "consolidateCriteria",
}


def operation_id(route: APIRoute) -> str:
    kind = "Indexer" if "/indexer" in route.path else "Screening"
    template = _NAMES.get(route.name)
    if template is None:
        head, *rest = route.name.split("_")
        return head + "".join(part.title() for part in rest)
    return template.replace("{Kind}", kind)
