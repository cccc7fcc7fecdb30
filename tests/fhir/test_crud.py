"""Create, read, vread, update, delete and history through the FHIR REST API."""

from tests.conftest import patient_body

FHIR = "/fhir/R4"


def test_metadata_needs_no_token_and_lists_search_parameters(client):
    r = client.get(f"{FHIR}/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/fhir+json"
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    by_type = {res["type"]: res for res in cs["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Appointment", "Slot", "Consent", "RiskAssessment"} <= set(by_type)
    patient_params = {p["name"] for p in by_type["Patient"]["searchParam"]}
    assert {"identifier", "name", "family", "given", "birthdate", "gender", "phone", "telecom"} <= patient_params


def test_create_assigns_id_version_and_headers(client, hospital):
    r = client.post(f"{FHIR}/Patient", json=patient_body(id="client-chosen"), headers=hospital.headers("registrar"))
    assert r.status_code == 201
    body = r.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/R4/Patient/{body['id']}/_history/1")
    assert r.headers["content-type"] == "application/fhir+json"
    assert body["name"][0]["text"] == "欧阳娜娜"


def test_read_returns_what_was_stored(client, hospital):
    h = hospital.headers("physician")
    created = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    r = client.get(f"{FHIR}/Patient/{created['id']}", headers=h)
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["etag"] == 'W/"1"'


def test_update_versions_and_if_match(client, hospital):
    h = hospital.headers("physician")
    created = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    pid = created["id"]
    changed = {**created, "gender": "other"}
    r = client.put(f"{FHIR}/Patient/{pid}", json=changed, headers={**h, "If-Match": 'W/"1"'})
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    stale = client.put(f"{FHIR}/Patient/{pid}", json=changed, headers={**h, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["diagnostics"] == f"Version conflict: Patient/{pid} is at version 2, not 1"
    assert "版本冲突" in stale.json()["issue"][0]["details"]["text"]
    old = client.get(f"{FHIR}/Patient/{pid}/_history/1", headers=h)
    assert old.status_code == 200 and old.json()["gender"] == "female"


def test_update_creates_with_client_id(client, hospital):
    h = hospital.headers("physician")
    r = client.put(f"{FHIR}/Patient/my-own-id", json=patient_body(id="my-own-id"), headers=h)
    assert r.status_code == 201
    assert r.json()["id"] == "my-own-id"


def test_update_with_mismatched_id_is_400(client, hospital):
    h = hospital.headers("physician")
    r = client.put(f"{FHIR}/Patient/abc", json=patient_body(id="xyz"), headers=h)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Patient.id"]


def test_delete_then_read_is_gone_and_history_shows_it(client, hospital):
    h = hospital.headers("physician")
    pid = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()["id"]
    assert client.delete(f"{FHIR}/Patient/{pid}", headers=h).status_code == 204
    assert client.get(f"{FHIR}/Patient/{pid}", headers=h).status_code == 410
    assert client.delete(f"{FHIR}/Patient/{pid}", headers=h).status_code == 204  # idempotent
    hist = client.get(f"{FHIR}/Patient/{pid}/_history", headers=h).json()
    assert hist["type"] == "history"
    assert hist["total"] == 2
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    assert client.get(f"{FHIR}/Patient/{pid}/_history/2", headers=h).status_code == 410
    search = client.get(f"{FHIR}/Patient?_id={pid}", headers=h).json()
    assert search["total"] == 0


def test_type_history_lists_all_versions(client, hospital):
    h = hospital.headers("physician")
    a = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    client.put(f"{FHIR}/Patient/{a['id']}", json={**a, "active": True}, headers=h)
    client.post(f"{FHIR}/Patient", json=patient_body(), headers=h)
    hist = client.get(f"{FHIR}/Patient/_history", headers=h).json()
    assert hist["total"] == 3


def test_conditional_create(client, hospital):
    h = hospital.headers("registrar")
    cond = {**h, "If-None-Exist": "identifier=urn:oid:2.16.156.10011.1.1|110101199005170024"}
    first = client.post(f"{FHIR}/Patient", json=patient_body(), headers=cond)
    assert first.status_code == 201
    again = client.post(f"{FHIR}/Patient", json=patient_body(), headers=cond)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    client.post(f"{FHIR}/Patient", json=patient_body(), headers=h)  # a second match, unconditionally
    ambiguous = client.post(f"{FHIR}/Patient", json=patient_body(), headers=cond)
    assert ambiguous.status_code == 412


def test_prefer_return_minimal(client, hospital):
    r = client.post(f"{FHIR}/Patient", json=patient_body(), headers={**hospital.headers(), "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert "/Patient/" in r.headers["location"]


def test_any_r4_resource_type_can_be_stored(client, hospital):
    h = hospital.headers("physician")
    body = {
        "resourceType": "NutritionOrder",
        "status": "active",
        "intent": "order",
        "patient": {"reference": "Patient/p1"},
        "dateTime": "2024-03-05",
    }
    r = client.post(f"{FHIR}/NutritionOrder", json=body, headers=h)
    assert r.status_code == 201
    assert client.get(f"{FHIR}/NutritionOrder/{r.json()['id']}", headers=h).status_code == 200
