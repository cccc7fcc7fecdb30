"""Data-subject requests (PIPL arts. 44-50): view and copy, correction, deletion, explanation.

Each request is a FHIR Task for the patient (code system REQUEST_SYSTEM), with a deadline in
Task.restriction.period.end and the answer in Task.output; a refusal gives its reason in Task.statusReason.
Deletion is honoured at once, except for records under a legal retention period, which are locked and
hidden (security label RETENTION_LOCK) with the reason and the date they may go.
"""

from __future__ import annotations

import html
from datetime import date, timedelta

import orjson

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, Conflict, Forbidden
from xinglin.store.repository import Repository, StoredResource
from xinglin.store.search_params import PATIENT_COMPARTMENT

REQUEST_SYSTEM = "https://xinglin.dev/CodeSystem/data-subject-request"
KINDS = {
    "access": ("查阅、复制我的个人信息", "View and copy my personal information", "PIPL art. 45"),
    "correction": ("更正、补充我的个人信息", "Correct or complete my personal information", "PIPL art. 46"),
    "deletion": ("删除我的个人信息", "Delete my personal information", "PIPL art. 47"),
    "explanation": ("解释自动化决策", "Explain an automated decision", "PIPL arts. 24, 48"),
}
DEADLINE_DAYS = 15
SECURITY_SYSTEM = "https://xinglin.dev/security"
RETENTION_LOCK = {
    "system": SECURITY_SYSTEM,
    "code": "retention-locked",
    "display": "依法保存，已锁定 / retained by law, locked",
}
RETENTION_EXT = "https://xinglin.dev/fhir/StructureDefinition/retention"

# Records the law keeps after a deletion request (DESIGN.md: EMR rules, internet-diagnosis rules).
RETENTION_YEARS = {
    "Patient": 15,
    "Encounter": 15,
    "Condition": 15,
    "Observation": 15,
    "MedicationRequest": 15,
    "MedicationDispense": 15,
    "MedicationStatement": 15,
    "DiagnosticReport": 15,
    "DocumentReference": 15,
    "Procedure": 15,
    "AllergyIntolerance": 15,
    "Immunization": 15,
    "ServiceRequest": 15,
    "CarePlan": 15,
    "Specimen": 15,
    "ImagingStudy": 15,
    "Provenance": 15,
    "Consent": 15,
    "EpisodeOfCare": 15,
    "Claim": 15,
    "Communication": 3,
}
INPATIENT_YEARS = 30


def _task_code(kind: str) -> dict:
    zh, en, _ = KINDS[kind]
    return {"coding": [{"system": REQUEST_SYSTEM, "code": kind, "display": f"{zh} / {en}"}]}


def submit_request(
    repo: Repository, patient_id: str, kind: str, *, description: str = "", focus: str | None = None
) -> StoredResource:
    """Records a request; access, deletion and explanation are answered at once, correction goes to a clinician."""
    if kind not in KINDS:
        raise BadRequest(
            f"未知的请求类型 {kind}（可选：{', '.join(KINDS)}）",
            f"Unknown request kind {kind} (one of {', '.join(KINDS)})",
            element="kind",
        )
    if kind == "correction" and not description.strip():
        raise BadRequest(
            "更正请求需要说明哪里不对、应如何更正",
            "A correction request must say what is wrong and how",
            element="description",
        )
    now = utcnow()
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": _task_code(kind),
        "for": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": f"Patient/{patient_id}"},
        "authoredOn": fhir_instant(now),
        "description": description[:4000] or KINDS[kind][1],
        "restriction": {"period": {"end": fhir_instant(now + timedelta(days=DEADLINE_DAYS))}},
    }
    if focus:
        task["focus"] = {"reference": focus}
    if kind == "correction":
        task["owner"] = {"display": "主治医生 / treating clinicians"}
    stored = repo.create(task).resource
    if kind == "access":
        return _complete(
            repo,
            stored,
            "已提供：GET /api/privacy/my-data（FHIR Bundle）与 /api/privacy/my-data/summary"
            " / Provided: GET /api/privacy/my-data (FHIR Bundle) and its summary page",
        )
    if kind == "deletion":
        summary = delete_my_data(repo, patient_id)
        return _complete(repo, stored, summary)
    if kind == "explanation":
        return _complete(repo, stored, explain_decisions(repo, patient_id, focus))
    return stored


def _complete(
    repo: Repository, stored: StoredResource, answer: str, *, status: str = "completed", reason: str | None = None
) -> StoredResource:
    task = stored.as_dict()
    task["status"] = status
    task["lastModified"] = fhir_instant(utcnow())
    task["output"] = [{"type": {"text": "answer"}, "valueString": answer}]
    if reason:
        task["statusReason"] = {"text": reason}
    return repo.as_system("data-subject request").update("Task", task["id"], task).resource


def resolve_request(repo: Repository, task_id: str, *, decision: str, answer: str) -> StoredResource:
    """A clinician or admin answers a correction request: done, or refused with its reason."""
    if repo.principal.role not in ("physician", "admin", "system"):
        raise Forbidden("只有医生或管理员可以处理更正请求", "Only clinicians or admins may answer correction requests")
    stored = repo.read("Task", task_id)
    task = stored.as_dict()
    if task.get("code", {}).get("coding", [{}])[0].get("system") != REQUEST_SYSTEM:
        raise BadRequest(
            f"Task/{task_id} 不是个人信息请求", f"Task/{task_id} is not a data-subject request", element="task"
        )
    if task["status"] in ("completed", "rejected", "cancelled"):
        raise Conflict("该请求已处理", "This request has already been answered")
    if decision not in ("completed", "rejected"):
        raise BadRequest(
            "decision 应为 completed 或 rejected", "decision must be completed or rejected", element="decision"
        )
    if not answer.strip():
        raise BadRequest("请填写处理结果或拒绝理由", "Give the outcome, or the reason for refusing", element="answer")
    return _complete(repo, stored, answer, status=decision, reason=answer if decision == "rejected" else None)


def my_resources(repo: Repository, patient_id: str) -> list[StoredResource]:
    """Everything in the patient's compartment, through the store (each search audited)."""
    found = [repo.read("Patient", patient_id)]
    for rtype, params in PATIENT_COMPARTMENT.items():
        if rtype == "Patient":
            continue
        seen: set[str] = set()
        for param in params:
            for match in repo.search_all(rtype, [(param, f"Patient/{patient_id}")]):
                if match.id not in seen:
                    seen.add(match.id)
                    found.append(match)
    return found


def my_data_bundle(repo: Repository, patient_id: str) -> dict:
    entries = [
        {"fullUrl": f"{r.resource_type}/{r.id}", "resource": orjson.Fragment(r.content)}
        for r in my_resources(repo, patient_id)
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": fhir_instant(utcnow()),
        "total": len(entries),
        "entry": entries,
    }


def my_data_summary(repo: Repository, patient_id: str) -> str:
    """A readable HTML page of the same data (Chinese and English headings)."""
    rows = []
    for r in my_resources(repo, patient_id):
        doc = r.as_dict()
        label = _label(doc)
        rows.append(
            f"<tr><td>{html.escape(r.resource_type)}</td><td>{html.escape(label)}</td>"
            f"<td>{html.escape(doc.get('meta', {}).get('lastUpdated', ''))}</td></tr>"
        )
    return (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>我的个人信息 / My data</title>'
        "<h1>我的个人信息 / My personal information</h1>"
        f"<p>共 {len(rows)} 条记录 / {len(rows)} records. 生成时间 / generated {fhir_instant(utcnow())}</p>"
        "<table><thead><tr><th>类型 Type</th><th>内容 Content</th><th>更新 Updated</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></html>"
    )


def _label(doc: dict) -> str:
    for key in ("code", "medicationCodeableConcept", "type", "vaccineCode"):
        value = doc.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            coding = (value.get("coding") or [{}])[0]
            return value.get("text") or coding.get("display") or coding.get("code") or ""
    if doc.get("resourceType") == "Patient":
        return (doc.get("name") or [{}])[0].get("text", "")
    return doc.get("status", "")


def _retained_until(doc: dict) -> date | None:
    years = RETENTION_YEARS.get(doc["resourceType"])
    if years is None:
        return None
    if doc["resourceType"] == "Encounter" and (doc.get("class") or {}).get("code") == "IMP":
        years = INPATIENT_YEARS
    last = (doc.get("meta") or {}).get("lastUpdated", "")[:10]
    for key in ("period", "effectivePeriod"):
        end = (doc.get(key) or {}).get("end") or (doc.get(key) or {}).get("start")
        if end:
            last = max(last, end[:10])
    base = date.fromisoformat(last) if last else utcnow().date()
    return (
        base.replace(year=base.year + years)
        if not (base.month == 2 and base.day == 29)
        else date(base.year + years, 3, 1)
    )


def delete_my_data(repo: Repository, patient_id: str) -> str:
    """Deletes what the law lets go; locks and hides what it keeps, recording why and until when."""
    system = repo.as_system("data-subject request")
    deleted: dict[str, int] = {}
    locked: dict[str, int] = {}
    for res in my_resources(system, patient_id):
        doc = res.as_dict()
        rtype = res.resource_type
        if rtype == "Task" and (doc.get("code", {}).get("coding") or [{}])[0].get("system") == REQUEST_SYSTEM:
            continue  # the requests themselves are the record of how the patient's rights were handled
        until = _retained_until(doc)
        if until is None or until <= utcnow().date():
            system.delete(rtype, res.id)
            deleted[rtype] = deleted.get(rtype, 0) + 1
            continue
        meta = doc.setdefault("meta", {})
        if RETENTION_LOCK["code"] not in {s.get("code") for s in meta.get("security", [])}:
            meta.setdefault("security", []).append(RETENTION_LOCK)
            doc.setdefault("extension", []).append(
                {
                    "url": RETENTION_EXT,
                    "extension": [
                        {"url": "until", "valueDate": until.isoformat()},
                        {
                            "url": "reason",
                            "valueString": "病历依法保存（门诊≥15年，住院≥30年，互联网诊疗聊天记录≥3年）/ "
                            "medical records kept by law (outpatient ≥15 y, inpatient ≥30 y, "
                            "online-consult chat ≥3 y)",
                        },
                    ],
                }
            )
            system.update(rtype, res.id, doc)
        locked[rtype] = locked.get(rtype, 0) + 1

    def fmt(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"

    return (
        f"已删除 / deleted: {fmt(deleted)}。依法保存并锁定、不再显示 / kept by law, locked and hidden: "
        f"{fmt(locked)}（理由：病历保存期限 / reason: legal retention of medical records）"
    )


def explain_decisions(repo: Repository, patient_id: str, focus: str | None) -> str:
    """Explains machine-generated advice in the patient's record (triage), and the right to human review."""
    system = repo.as_system("data-subject request")
    params = [("patient", f"Patient/{patient_id}"), ("_tag", "https://xinglin.dev/tags|machine-generated")]
    if focus and focus.startswith("RiskAssessment/"):
        params.append(("_id", focus.split("/", 1)[1]))
    parts = []
    for match in system.search("RiskAssessment", params).matches:
        doc = match.as_dict()
        method = (doc.get("method", {}).get("coding") or [{}])[0].get("code", "")
        rationale = (doc.get("prediction") or [{}])[0].get("rationale", "")
        parts.append(f"{doc.get('occurrenceDateTime', '')[:10]} {method}: {rationale}")
    intro = (
        "以下建议由机器按公开的分诊规则生成，仅供参考，不是诊断；您可以拒绝仅由自动化作出的决定并要求医生复核。"
        " / The advice below was generated by a machine from published triage rules; it is not a diagnosis. "
        "You may refuse decisions made solely by automation and ask a clinician to review."
    )
    return intro + ("\n" + "\n".join(parts) if parts else "\n没有机器生成的决定 / no machine-generated decisions.")
