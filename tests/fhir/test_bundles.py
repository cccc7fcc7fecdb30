"""Batch and transaction bundles."""

from tests.conftest import patient_body

FHIR = "/fhir/R4"


def _observation(subject_ref: str, value: float = 5.4) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "血糖"},
        "subject": {"reference": subject_ref},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }


def test_transaction_resolves_urn_uuid_references(client, hospital):
    h = hospital.headers("physician")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b6c1f2e-1111-4a4a-9a9a-000000000001",
                "resource": _observation("urn:uuid:0b6c1f2e-1111-4a4a-9a9a-000000000002"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:0b6c1f2e-1111-4a4a-9a9a-000000000002",
                "resource": patient_body(),
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    r = client.post(FHIR, json=bundle, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    obs, patient = out["entry"][0]["resource"], out["entry"][1]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{patient['id']}"
    assert out["entry"][1]["response"]["location"] == f"Patient/{patient['id']}/_history/1"
    found = client.get(f"{FHIR}/Observation?patient={patient['id']}", headers=h).json()
    assert found["total"] == 1


def test_transaction_is_atomic(client, hospital):
    h = hospital.headers("physician")
    before = client.get(f"{FHIR}/Patient?_summary=count", headers=h).json()["total"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient_body(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "gender": "boy"}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    r = client.post(FHIR, json=bundle, headers=h)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["diagnostics"].startswith("Bundle entry 1: Patient.gender: 'boy'")
    assert issue["details"]["text"].startswith("Bundle 第 1 个条目：")
    assert client.get(f"{FHIR}/Patient?_summary=count", headers=h).json()["total"] == before


def test_transaction_put_delete_get_and_conditional_create(client, hospital):
    h = hospital.headers("physician")
    existing = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    doomed = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
            {
                "resource": {**existing, "gender": "other"},
                "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"1"'},
            },
            {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
            {
                "fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001",
                "resource": patient_body(),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"_id={existing['id']}"},
            },
            {
                "resource": _observation("urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    r = client.post(FHIR, json=bundle, headers=h)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["200 OK", "200 OK", "204 No Content", "200 OK", "201 Created"]
    # GETs run after the writes
    assert entries[0]["resource"]["gender"] == "other"
    assert entries[4]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert client.get(f"{FHIR}/Patient/{doomed['id']}", headers=h).status_code == 410


def test_transaction_with_stale_if_match_rolls_back(client, hospital):
    h = hospital.headers("physician")
    existing = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient_body(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": existing,
                "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"9"'},
            },
        ],
    }
    assert client.post(FHIR, json=bundle, headers=h).status_code == 412
    assert client.get(f"{FHIR}/Patient?_summary=count", headers=h).json()["total"] == 1


def test_batch_entries_are_independent(client, hospital):
    h = hospital.headers("physician")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient_body(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "gender": "boy"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/nope"}},
            {"request": {"method": "GET", "url": "Patient?gender=female"}},
        ],
    }
    r = client.post(FHIR, json=bundle, headers=h)
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "422", "404", "200 OK"]
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"] == ["Patient.gender"]
    assert entries[3]["resource"]["type"] == "searchset"
    assert entries[3]["resource"]["total"] == 1


def test_bundle_shape_errors(client, hospital):
    h = hospital.headers("physician")
    for body, element in [
        ({"resourceType": "Bundle", "type": "collection"}, "Bundle.type"),
        (
            {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "FETCH", "url": "x"}}]},
            "Bundle.entry[0].request.method",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "POST", "url": "Patient"}}],
            },
            "Bundle.entry[0].resource",
        ),
    ]:
        r = client.post(FHIR, json=body, headers=h)
        assert r.status_code == 400, body
        assert r.json()["issue"][0]["expression"] == [element]


def test_transaction_respects_access_policy(client, hospital):
    h = hospital.headers("researcher")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient_body(), "request": {"method": "POST", "url": "Patient"}}],
    }
    assert client.post(FHIR, json=bundle, headers=h).status_code == 403
