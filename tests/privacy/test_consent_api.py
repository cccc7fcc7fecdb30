"""Consent over HTTP: a patient grants and withdraws each purpose separately; it takes effect at once."""

from tests.conftest import patient_body


def test_grant_and_withdraw_each_purpose(client, hospital):
    pid = client.post("/fhir/R4/Patient", json=patient_body(), headers=hospital.headers("registrar")).json()["id"]
    h = hospital.headers("patient", patient_id=pid)
    assert {k: v["granted"] for k, v in client.get("/api/privacy/consents", headers=h).json().items()} == {
        "treatment": False,
        "online-consultation": False,
        "research": False,
        "cross-border": False,
    }
    r = client.post("/api/privacy/consents/research", json={}, headers=h)
    assert r.status_code == 201
    assert r.json()["resourceType"] == "Consent"
    assert r.json()["patient"] == {"reference": f"Patient/{pid}"}
    state = client.get("/api/privacy/consents", headers=h).json()
    assert state["research"]["granted"] is True and state["treatment"]["granted"] is False
    assert client.delete("/api/privacy/consents/research", headers=h).json() == {"purpose": "research", "withdrawn": 1}
    assert client.get("/api/privacy/consents", headers=h).json()["research"]["granted"] is False


def test_child_under_14_needs_a_guardian(client, hospital):
    child = patient_body(birthDate="2020-01-01")
    pid = client.post("/fhir/R4/Patient", json=child, headers=hospital.headers("registrar")).json()["id"]
    h = hospital.headers("patient", patient_id=pid)
    r = client.post("/api/privacy/consents/treatment", json={}, headers=h)
    assert r.status_code == 422
    assert "guardian" in r.json()["issue"][0]["diagnostics"]
    ok = client.post(
        "/api/privacy/consents/treatment", json={"guardian": {"name": "欧阳明", "relationship": "父亲"}}, headers=h
    )
    assert ok.status_code == 201


def test_unknown_purpose_and_staff_are_refused(client, hospital):
    h = hospital.headers("patient", patient_id="p-x")
    r = client.post("/api/privacy/consents/marketing", json={}, headers=h)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["purpose"]
    assert client.get("/api/privacy/consents", headers=hospital.headers("physician")).status_code == 403
