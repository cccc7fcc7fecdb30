"""HTTP routes of the online follow-up consultation (thin: each calls one service function in one unit of work).

POST /api/consults                          patient (or staff) requests a follow-up consult
GET  /api/consults?queue=03.04|state=...    a department's queue (staff) / the consults the caller sees
GET  /api/consults/{id}                     the consult, its prescriptions and summary
POST /api/consults/{id}/confirm             physician re-authenticates by real name (password again)
POST /api/consults/{id}/accept              physician accepts (needs the confirmation)
POST /api/consults/{id}/cancel              patient cancels a request not yet accepted
GET|POST /api/consults/{id}/messages        messages (text, images)
POST /api/consults/{id}/close               physician closes with a summary (+ follow-up reminder)
POST /api/consults/{id}/prescriptions       physician prescribes (draft, signed)
GET  /api/prescriptions/{id}                status: review, dispensing, delivery
POST /api/prescriptions/{id}/approve|reject pharmacist review
POST /api/prescriptions/{id}/dispense       pharmacist dispenses an approved prescription
POST /api/prescriptions/{id}/delivery       pharmacy or courier moves the delivery on
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.core.errors import BadRequest
from xinglin.telehealth import service
from xinglin.telehealth.models import REAL_NAME, sub_values

router = APIRouter(prefix="/api", tags=["telehealth"])


class GuardianIn(BaseModel):
    reference: str | None = Field(default=None, description="RelatedPerson/<id>")
    name: str | None = Field(default=None, max_length=200)
    relationship: str | None = Field(default=None, max_length=100)


class ConsultRequest(BaseModel):
    patient_id: str | None = Field(default=None, description="Defaults to the signed-in patient")
    department: str = Field(description="诊疗科目 code, e.g. 03.04")
    follow_up_of: str | None = Field(
        default=None, description="Encounter/<id>, Condition/<id> or DocumentReference/<id> of the earlier visit"
    )
    condition_changed: bool = False
    guardian: GuardianIn | None = None
    reason: str | None = Field(default=None, max_length=2000)


class Confirmation(BaseModel):
    password: str = Field(min_length=1, max_length=256)


class ImageIn(BaseModel):
    content_type: str
    data: str = Field(description="base64", max_length=8_000_000)
    title: str | None = None


class MessageIn(BaseModel):
    text: str | None = Field(default=None, max_length=10_000)
    image: ImageIn | None = None


class CloseIn(BaseModel):
    summary: str | None = Field(default=None, max_length=50_000)
    follow_up_days: int | None = None


class CodingIn(BaseModel):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class MedicationIn(BaseModel):
    text: str | None = None
    coding: list[CodingIn] = Field(default_factory=list)


class QuantityIn(BaseModel):
    value: float
    unit: str | None = None


class PrescriptionIn(BaseModel):
    medication: MedicationIn
    dosage: str | None = Field(default=None, max_length=2000)
    quantity: QuantityIn | None = None
    note: str | None = Field(default=None, max_length=2000)
    generated_by: str | None = Field(default=None, description="Set by machine clients: always refused")
    tags: list[CodingIn] = Field(default_factory=list)


class RejectIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class DeliveryIn(BaseModel):
    status: str
    note: str | None = Field(default=None, max_length=500)


def _dump(model: BaseModel | None) -> dict | None:
    return model.model_dump(exclude_none=True) if model is not None else None


def _medication(m: MedicationIn) -> dict:
    out: dict = {"coding": [c.model_dump(exclude_none=True) for c in m.coding if c.code or c.display]}
    if m.text:
        out["text"] = m.text
    return {k: v for k, v in out.items() if v}


@router.post("/consults", status_code=201)
def request_consult(body: ConsultRequest, principal: CurrentPrincipal, store: StoreDep) -> dict:
    patient_id = body.patient_id or principal.patient_id
    if not patient_id:
        raise BadRequest("请指定患者（patient_id）", "patient_id is required", element="patient_id")
    with store.unit_of_work(principal) as repo:
        stored = service.request_consult(
            repo,
            patient_id=patient_id,
            department=body.department,
            follow_up_of=body.follow_up_of,
            condition_changed=body.condition_changed,
            guardian=_dump(body.guardian),
            reason=body.reason,
        )
        return service.consult_view(stored)


@router.get("/consults")
def list_consults(
    principal: CurrentPrincipal, store: StoreDep, queue: str | None = None, state: str | None = None
) -> dict:
    with store.unit_of_work(principal) as repo:
        found = service.list_consults(repo, queue=queue, state=state)
        return {"total": len(found), "consults": [service.consult_view(s) for s in found]}


@router.get("/consults/{consult_id}")
def read_consult(consult_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        view = service.consult_view(service.get_consult(repo, consult_id))
        view["prescriptions"] = [
            {"id": p.id, "status": p.as_dict().get("status")} for p in service.consult_prescriptions(repo, consult_id)
        ]
        return view


@router.post("/consults/{consult_id}/confirm")
def confirm_real_name(consult_id: str, body: Confirmation, principal: CurrentPrincipal, store: StoreDep) -> dict:
    verified = service.reauthenticate(store, principal, body.password)  # its own transaction: lockout, audit
    with store.unit_of_work(principal) as repo:
        stored = service.confirm_real_name(repo, consult_id, verified)
        mine = [
            sub_values(e)
            for e in stored.as_dict().get("extension") or []
            if e.get("url") == REAL_NAME and sub_values(e).get("account") == principal.label
        ]
        return {"id": stored.id, "confirmed": True, "expires": mine[0].get("expires") if mine else None}


@router.post("/consults/{consult_id}/accept")
def accept_consult(consult_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        return service.consult_view(service.accept_consult(repo, consult_id))


@router.post("/consults/{consult_id}/cancel")
def cancel_consult(consult_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        return service.consult_view(service.cancel_consult(repo, consult_id))


@router.post("/consults/{consult_id}/messages", status_code=201)
def post_message(consult_id: str, body: MessageIn, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        return service.post_message(repo, consult_id, text=body.text, image=_dump(body.image)).as_dict()


@router.get("/consults/{consult_id}/messages")
def list_messages(consult_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        found = service.list_messages(repo, consult_id)
        return {"total": len(found), "messages": [m.as_dict() for m in found]}


@router.post("/consults/{consult_id}/close")
def close_consult(consult_id: str, body: CloseIn, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        done = service.close_consult(repo, consult_id, summary=body.summary, follow_up_days=body.follow_up_days)
        view = service.consult_view(done["consult"])
        view["summary_document"] = done["summary"].id
        view["follow_up_task"] = done["reminder"].id if done["reminder"] else None
        return view


@router.post("/consults/{consult_id}/prescriptions", status_code=201)
def prescribe(
    consult_id: str, body: PrescriptionIn, principal: CurrentPrincipal, store: StoreDep, request: Request
) -> dict:
    with store.unit_of_work(principal) as repo:
        made = service.prescribe(
            repo,
            consult_id,
            medication=_medication(body.medication),
            dosage=body.dosage,
            quantity=_dump(body.quantity),
            note=body.note,
            generated_by=body.generated_by,
            tags=[t.model_dump(exclude_none=True) for t in body.tags],
            signing_secret=request.app.state.signing_key,
        )
        return {"prescription": made["prescription"].as_dict(), "provenance": made["provenance"].id}


@router.get("/prescriptions/{prescription_id}")
def read_prescription(prescription_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        return service.prescription_status(repo, prescription_id)


@router.post("/prescriptions/{prescription_id}/approve")
def approve(prescription_id: str, principal: CurrentPrincipal, store: StoreDep, request: Request) -> dict:
    with store.unit_of_work(principal) as repo:
        service.approve_prescription(repo, prescription_id, signing_secret=request.app.state.signing_key)
        return service.prescription_status(repo, prescription_id)


@router.post("/prescriptions/{prescription_id}/reject")
def reject(prescription_id: str, body: RejectIn, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        service.reject_prescription(repo, prescription_id, reason=body.reason)
        return service.prescription_status(repo, prescription_id)


@router.post("/prescriptions/{prescription_id}/dispense", status_code=201)
def dispense(prescription_id: str, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        service.dispense(repo, prescription_id)
        return service.prescription_status(repo, prescription_id)


@router.post("/prescriptions/{prescription_id}/delivery")
def update_delivery(prescription_id: str, body: DeliveryIn, principal: CurrentPrincipal, store: StoreDep) -> dict:
    with store.unit_of_work(principal) as repo:
        service.update_delivery(repo, prescription_id, step=body.status, note=body.note)
        return service.prescription_status(repo, prescription_id)
