"""POST /api/triage: the engine over HTTP. For a known patient the advice is also stored as a FHIR
RiskAssessment (through the store, audited), marked as machine-generated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from xinglin.api.deps import StoreDep, current_principal
from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, Forbidden
from xinglin.security.principal import Principal
from xinglin.triage import TriageResult, assess, check_request

router = APIRouter(prefix="/api", tags=["triage"])

MACHINE_GENERATED = {
    "system": "https://xinglin.dev/tags",
    "code": "machine-generated",
    "display": "机器生成 / machine-generated",
}
DEPARTMENTS = "https://xinglin.dev/CodeSystem/zlkm"
LEVELS = "https://xinglin.dev/CodeSystem/triage-level"
EXT = "https://xinglin.dev/fhir/StructureDefinition/"


def risk_assessment(result: TriageResult, patient_id: str, complaint: str) -> dict:
    """The advice as a RiskAssessment: the suggested clinic and urgency, never a diagnosis."""
    data = result.to_dict()

    def prediction(dept: dict, score: float | None) -> dict:
        p: dict[str, Any] = {
            "outcome": {
                "coding": [{"system": DEPARTMENTS, "code": dept["code"], "display": dept["name"]}],
                "text": dept["name_en"],
            }
        }
        if score is not None:
            p["probabilityDecimal"] = max(0.0, min(1.0, float(score)))
        return p

    first = prediction(data["department"], None)
    first["qualitativeRisk"] = {
        "coding": [{"system": LEVELS, "code": str(data["level"]), "display": data["level_name"]}]
    }
    first["rationale"] = data["explanation"]
    extensions = [
        {"url": EXT + "triage-escalate", "valueBoolean": data["escalate"]},
        {"url": EXT + "triage-max-wait-minutes", "valueInteger": data["max_wait_minutes"]},
    ]
    extensions += [
        {"url": EXT + "triage-red-flag", "valueString": f"{f['code']}: {f['evidence']}"} for f in data["red_flags"]
    ]
    return {
        "resourceType": "RiskAssessment",
        "meta": {"tag": [MACHINE_GENERATED]},
        "status": "preliminary",
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": fhir_instant(utcnow()),
        "method": {
            "coding": [{"system": "https://xinglin.dev/CodeSystem/triage-engine", "code": data["generated_by"]}]
        },
        "prediction": [first, *(prediction(a, a["score"]) for a in data["alternatives"])],
        "note": [
            {"text": f"主诉 / complaint: {complaint[:2000]}"},
            {"text": f"{data['label']['zh']} {data['label']['en']}"},
        ],
        "extension": extensions,
    }


def _optional_principal(request: Request) -> Principal | None:
    return current_principal(request) if request.headers.get("authorization") else None


@router.post("/triage")
async def triage(request: Request, store: StoreDep) -> dict:
    """Anyone may ask (the hospital's front door); with a token the advice is kept in the patient's record:
    a patient's own, or for staff the Patient named in `patient`."""
    principal = _optional_principal(request)
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("请求体不是合法的 JSON", "The body is not valid JSON") from None
    patient_id = body.pop("patient", None) if isinstance(body, dict) else None
    # The assessment and the database work run in the thread pool, off the event loop the worker's other
    # requests share.
    return await run_in_threadpool(_assess_and_keep, store, principal, patient_id, check_request(body))


def _assess_and_keep(store, principal: Principal | None, patient_id: str | None, kwargs: dict) -> dict:
    result = assess(**kwargs)
    out = result.to_dict()
    if principal is not None:
        if principal.role == "patient":
            if patient_id not in (None, principal.patient_id):
                raise Forbidden(
                    "患者只能为自己保存分诊结果",
                    "Patients may keep triage advice only in their own record",
                    element="patient",
                )
            patient_id = principal.patient_id
        if patient_id:
            with store.unit_of_work(principal) as repo:
                repo.read("Patient", patient_id)  # exists and is visible to the caller
                # The engine, not the caller, is the author: Xinglin writes it, audited as acting for them.
                saved = repo.as_system("triage").create(risk_assessment(result, patient_id, kwargs["text"])).resource
            out["risk_assessment"] = f"RiskAssessment/{saved.id}"
    return out
