"""POST /api/triage: advice for anyone; kept as a machine-generated RiskAssessment for a known patient."""

from tests.conftest import patient_body

CHEST = {"text": "胸口疼得厉害，出冷汗，左胳膊发麻", "age": 58, "sex": "male"}


def test_anonymous_triage_returns_advice_only(client):
    r = client.post("/api/triage", json=CHEST)
    assert r.status_code == 200
    body = r.json()
    assert body["department"] == {"code": "03.04", "name": "心血管内科", "name_en": "Cardiology"}
    assert body["level"] == 2
    assert body["escalate"] is True
    assert [f["code"] for f in body["red_flags"]] == ["chest_pain_acs"]
    assert body["generated_by"].startswith("xinglin-triage ")
    assert "risk_assessment" not in body


def test_patient_triage_is_kept_as_risk_assessment(client, hospital):
    pid = client.post("/fhir/R4/Patient", json=patient_body(), headers=hospital.headers("registrar")).json()["id"]
    r = client.post("/api/triage", json=CHEST, headers=hospital.headers("patient", patient_id=pid))
    assert r.status_code == 200
    ref = r.json()["risk_assessment"]
    ra = client.get(f"/fhir/R4/{ref}", headers=hospital.headers("patient", patient_id=pid)).json()
    assert ra["subject"] == {"reference": f"Patient/{pid}"}
    assert ra["status"] == "preliminary"
    assert ra["meta"]["tag"][0]["code"] == "machine-generated"
    assert ra["prediction"][0]["outcome"]["coding"][0]["code"] == "03.04"
    assert ra["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "2"
    assert {"url": "https://xinglin.dev/fhir/StructureDefinition/triage-escalate", "valueBoolean": True} in ra[
        "extension"
    ]
    found = client.get(f"/fhir/R4/RiskAssessment?patient={pid}", headers=hospital.headers("physician")).json()
    assert found["total"] == 1


def test_staff_triage_for_a_patient_and_patients_only_for_themselves(client, hospital):
    h = hospital.headers("registrar")
    alice = client.post("/fhir/R4/Patient", json=patient_body(), headers=h).json()["id"]
    bob = client.post("/fhir/R4/Patient", json=patient_body(), headers=h).json()["id"]
    r = client.post("/api/triage", json={**CHEST, "patient": alice}, headers=hospital.headers("nurse"))
    assert r.status_code == 200 and r.json()["risk_assessment"].startswith("RiskAssessment/")
    r = client.post(
        "/api/triage", json={**CHEST, "patient": bob}, headers=hospital.headers("patient", patient_id=alice)
    )
    assert r.status_code == 403
    r = client.post("/api/triage", json={**CHEST, "patient": "nobody"}, headers=hospital.headers("nurse"))
    assert r.status_code == 404


def test_bad_triage_input_names_the_field(client):
    r = client.post("/api/triage", json={"text": "头疼", "age": "old"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["age"]
    r = client.post("/api/triage", content=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
