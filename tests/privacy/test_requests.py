"""Data-subject requests: view and copy, correction, deletion with legal retention, explanation."""

import pytest

from tests.conftest import patient_body

FHIR = "/fhir/R4"


@pytest.fixture
def record(client, hospital):
    """A patient with a visit, a diagnosis, a lab result, a triage advice and a future appointment."""
    staff = hospital.headers("physician")
    pid = client.post(f"{FHIR}/Patient", json=patient_body(), headers=staff).json()["id"]
    subject = {"reference": f"Patient/{pid}"}
    ids = {"Patient": pid}
    for body in [
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": subject,
            "period": {"start": "2025-03-01T09:00:00+08:00", "end": "2025-03-01T09:20:00+08:00"},
        },
        {"resourceType": "Condition", "subject": subject, "code": {"text": "高血压"}},
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "血糖"},
            "subject": subject,
            "valueQuantity": {"value": 6.1, "unit": "mmol/L"},
        },
        {"resourceType": "Appointment", "status": "booked", "participant": [{"actor": subject, "status": "accepted"}]},
    ]:
        ids[body["resourceType"]] = client.post(f"{FHIR}/{body['resourceType']}", json=body, headers=staff).json()["id"]
    patient = hospital.headers("patient", patient_id=pid)
    triage = client.post("/api/triage", json={"text": "头疼三天", "age": 35}, headers=patient).json()
    ids["RiskAssessment"] = triage["risk_assessment"].split("/")[1]
    return pid, ids, patient


def test_view_and_copy(client, record):
    patient = record[2]
    bundle = client.get("/api/privacy/my-data", headers=patient).json()
    assert bundle["type"] == "collection"
    types = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert types == ["Appointment", "Condition", "Encounter", "Observation", "Patient", "RiskAssessment"]
    page = client.get("/api/privacy/my-data/summary", headers=patient)
    assert page.status_code == 200
    assert "我的个人信息 / My personal information" in page.text
    assert "高血压" in page.text
    r = client.post("/api/privacy/requests", json={"kind": "access"}, headers=patient)
    assert r.status_code == 201
    task = r.json()
    assert task["status"] == "completed"
    assert task["restriction"]["period"]["end"] > task["authoredOn"]
    assert "my-data" in task["output"][0]["valueString"]


def test_correction_goes_to_a_clinician_who_answers_or_refuses(client, hospital, record):
    _, ids, patient = record
    bad = client.post("/api/privacy/requests", json={"kind": "correction"}, headers=patient)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["description"]
    r = client.post(
        "/api/privacy/requests",
        json={"kind": "correction", "description": "血糖应为 5.1", "focus": f"Observation/{ids['Observation']}"},
        headers=patient,
    )
    task = r.json()
    assert task["status"] == "requested"
    assert (
        client.post(
            f"/api/privacy/requests/{task['id']}/resolve", json={"decision": "rejected", "answer": "x"}, headers=patient
        ).status_code
        == 403
    )
    refused = client.post(
        f"/api/privacy/requests/{task['id']}/resolve",
        json={"decision": "rejected", "answer": "化验单原件为 6.1，记录无误 / the lab report says 6.1"},
        headers=hospital.headers("physician"),
    )
    assert refused.status_code == 200
    assert refused.json()["status"] == "rejected"
    assert refused.json()["statusReason"]["text"].startswith("化验单原件为 6.1")
    again = client.post(
        f"/api/privacy/requests/{task['id']}/resolve",
        json={"decision": "completed", "answer": "ok"},
        headers=hospital.headers("physician"),
    )
    assert again.status_code == 409
    mine = client.get("/api/privacy/requests", headers=patient).json()
    assert [t["resource"]["status"] for t in mine["entry"]] == ["rejected"]


def test_deletion_deletes_what_it_may_and_locks_the_rest(client, hospital, record):
    pid, ids, patient = record
    r = client.post("/api/privacy/requests", json={"kind": "deletion"}, headers=patient)
    assert r.status_code == 201
    answer = r.json()["output"][0]["valueString"]
    assert "deleted: Appointment 1, RiskAssessment 1" in answer
    assert "locked and hidden: Condition 1, Encounter 1, Observation 1, Patient 1" in answer
    staff = hospital.headers("physician")
    assert client.get(f"{FHIR}/Appointment/{ids['Appointment']}", headers=staff).status_code == 410
    locked = client.get(f"{FHIR}/Observation/{ids['Observation']}", headers=staff)
    assert locked.status_code == 410
    assert "kept only as the law requires" in locked.json()["issue"][0]["diagnostics"]
    assert client.get(f"{FHIR}/Observation?patient={pid}", headers=staff).json()["total"] == 0
    assert client.get(f"{FHIR}/Observation/{ids['Observation']}/_history/1", headers=staff).status_code == 410
    assert client.get(f"{FHIR}/Observation/{ids['Observation']}/_history", headers=staff).status_code == 410
    # the locked record's earlier versions are not listed in its type's or the system's history either
    type_history = client.get(f"{FHIR}/Observation/_history", headers=staff).json()
    assert ids["Observation"] not in {e["resource"]["id"] for e in type_history.get("entry", []) if "resource" in e}
    integration = hospital.headers("integration")
    system_history = client.get(f"{FHIR}/_history?_count=500", headers=integration).json()
    assert pid not in {e["resource"]["id"] for e in system_history.get("entry", []) if "resource" in e}
    admin_view = client.get(f"{FHIR}/Observation/{ids['Observation']}/_history", headers=hospital.headers("admin"))
    assert admin_view.status_code == 200 and admin_view.json()["total"] == 2
    kept = client.get(f"{FHIR}/Observation/{ids['Observation']}", headers=hospital.headers("admin")).json()
    retention = next(e for e in kept["extension"] if e["url"].endswith("/retention"))
    assert {p["url"] for p in retention["extension"]} == {"until", "reason"}
    assert kept["meta"]["security"][0]["code"] == "retention-locked"


def test_explanation_of_automated_decisions(client, record):
    _, ids, patient = record
    r = client.post(
        "/api/privacy/requests",
        json={"kind": "explanation", "focus": f"RiskAssessment/{ids['RiskAssessment']}"},
        headers=patient,
    )
    answer = r.json()["output"][0]["valueString"]
    assert "not a diagnosis" in answer
    assert "xinglin-triage" in answer
    assert "ask a clinician to review" in answer


def test_only_patients_make_requests(client, hospital):
    r = client.post("/api/privacy/requests", json={"kind": "access"}, headers=hospital.headers("physician"))
    assert r.status_code == 403
    r = client.post(
        "/api/privacy/requests", json={"kind": "forget-me"}, headers=hospital.headers("patient", patient_id="x")
    )
    assert r.status_code == 400
