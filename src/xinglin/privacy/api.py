"""HTTP routes of the privacy module: POST /api/deid."""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.core.errors import Forbidden
from xinglin.fhir.outcome import fhir_response
from xinglin.privacy import consent, requests
from xinglin.privacy.deid import mask

router = APIRouter(prefix="/api", tags=["privacy"])


class DeidRequest(BaseModel):
    text: str = Field(max_length=1_000_000, description="Clinical text to de-identify")
    mode: Literal["tag", "pseudonym"] = "tag"
    date_shift_days: int = Field(default=0, ge=-3650, le=3650)


class DeidEntity(BaseModel):
    type: str
    start: int
    end: int


class DeidResponse(BaseModel):
    masked: str
    entities: list[DeidEntity]


@router.post("/deid")
def deidentify(body: DeidRequest, principal: CurrentPrincipal, store: StoreDep) -> DeidResponse:
    """Masks identifiers in a text. Pseudonym mode uses a fresh key per request (consistent within it)."""
    key = secrets.token_bytes(32) if body.mode == "pseudonym" else None
    result = mask(body.text, mode=body.mode, key=key, date_shift_days=body.date_shift_days)
    with store.unit_of_work(principal) as repo:
        repo.record_event("deid", detail=f"{len(body.text)} characters, {len(result.entities)} entities")
    return DeidResponse(
        masked=result.masked, entities=[DeidEntity(type=e.type, start=e.start, end=e.end) for e in result.entities]
    )


class RequestIn(BaseModel):
    kind: Literal["access", "correction", "deletion", "explanation"]
    description: str = Field(default="", max_length=4000)
    focus: str | None = Field(default=None, description="The resource concerned, e.g. Observation/123")


class ResolveIn(BaseModel):
    decision: Literal["completed", "rejected"]
    answer: str = Field(max_length=4000)


def _own_patient(principal) -> str:
    if principal.role != "patient" or not principal.patient_id:
        raise Forbidden("只有患者本人可以提出个人信息请求", "Only the patient may make a personal-information request")
    return principal.patient_id


@router.post("/privacy/requests", status_code=201)
def submit_request(body: RequestIn, principal: CurrentPrincipal, store: StoreDep) -> Response:
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        task = requests.submit_request(repo, patient_id, body.kind, description=body.description, focus=body.focus)
    return fhir_response(task.content, 201)


@router.get("/privacy/requests")
def list_requests(principal: CurrentPrincipal, store: StoreDep) -> Response:
    with store.unit_of_work(principal) as repo:
        page = repo.search(
            "Task", [("code", f"{requests.REQUEST_SYSTEM}|"), ("_count", "200"), ("_sort", "-authored-on")]
        )
        tasks = [m.as_dict() for m in page.matches]
    return fhir_response(
        {"resourceType": "Bundle", "type": "searchset", "total": len(tasks), "entry": [{"resource": t} for t in tasks]}
    )


@router.post("/privacy/requests/{task_id}/resolve")
def resolve_request(task_id: str, body: ResolveIn, principal: CurrentPrincipal, store: StoreDep) -> Response:
    with store.unit_of_work(principal) as repo:
        task = requests.resolve_request(repo, task_id, decision=body.decision, answer=body.answer)
    return fhir_response(task.content)


@router.get("/privacy/my-data")
def my_data(principal: CurrentPrincipal, store: StoreDep) -> Response:
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        return fhir_response(requests.my_data_bundle(repo, patient_id))


@router.get("/privacy/my-data/summary")
def my_data_summary(principal: CurrentPrincipal, store: StoreDep) -> HTMLResponse:
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        return HTMLResponse(requests.my_data_summary(repo, patient_id))


class ConsentIn(BaseModel):
    guardian: dict | None = Field(default=None, description="For a child under 14: {reference} or {name, relationship}")


@router.get("/privacy/consents")
def my_consents(principal: CurrentPrincipal, store: StoreDep) -> dict:
    """Whether each purpose is consented to now."""
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        return {
            purpose: {"granted": consent.has_consent(repo, patient_id, purpose), "zh": zh, "en": en}
            for purpose, (zh, en) in consent.PURPOSES.items()
        }


@router.post("/privacy/consents/{purpose}", status_code=201)
def grant(purpose: str, body: ConsentIn, principal: CurrentPrincipal, store: StoreDep) -> Response:
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        stored = consent.grant_consent(repo, patient_id, purpose, guardian=body.guardian)
    return fhir_response(stored.content, 201)


@router.delete("/privacy/consents/{purpose}")
def withdraw(purpose: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    patient_id = _own_patient(principal)
    with store.unit_of_work(principal) as repo:
        withdrawn = consent.withdraw_consent(repo, patient_id, purpose)
    return {"purpose": purpose, "withdrawn": len(withdrawn)}
