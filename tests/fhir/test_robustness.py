"""Hostile and malformed input never produces a 500: each gets a 4xx OperationOutcome."""

import pytest

from tests.conftest import patient_body

FHIR = "/fhir/R4"

BAD_GETS = [
    "Patient?_count=99999999999999999999",
    "Patient?_offset=99999999999999999999",
    "Patient?birthdate=2024-13-45",
    "Patient?birthdate=gt",
    "Patient?birthdate=eq2024-01-01T25:00:00Z",
    "Observation?value-quantity=gt",
    "Observation?value-quantity=abc|x",
    "Observation?value-quantity=1|2|3|4",
    "Observation?value-quantity=nan",
    "Observation?value-quantity=inf",
    "Patient?_sort=-",
    "Patient?_include=Patient",
    "Patient?_include=Patient:general-practitioner:Practitioner:extra",
    "Patient?_revinclude=Foo:bar",
    "Patient?_lastUpdated=ge",
    "_history?_since=bad",
    "Patient/_history?_count=-1",
    "AuditEvent/abc",
    "AuditEvent/1-99999999999999999999",
    "Patient?_summary=weird",
    "patient",
    "Patient/x/_history/99999999999999999999",
    "Patient/x/_history/abc",
]


@pytest.mark.parametrize("query", BAD_GETS)
def test_bad_queries_are_client_errors(client, hospital, query):
    r = client.get(f"{FHIR}/{query}", headers=hospital.headers("admin"))
    assert 400 <= r.status_code < 500, (query, r.status_code, r.text[:200])
    assert r.json()["resourceType"] == "OperationOutcome"


BAD_BODIES = [
    b"\xff\xfe",
    b'{"resourceType":"Patient","name":[{"given":[' + b"[" * 3000 + b"]" * 3000 + b"]}]}",
    b'{"resourceType":"Patient","birthDate":"0000-01-01"}',
    b'{"resourceType":"Patient","meta":"x"}',
    b'{"resourceType":"Patient","meta":{"versionId":5}}',
    b"null",
    b'"text"',
    b'{"resourceType":null}',
    b'{"resourceType":123}',
    b'{"resourceType":"Patient","contained":[{"resourceType":"Foo"}]}',
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_are_client_errors(client, hospital, body):
    r = client.post(f"{FHIR}/Patient", content=body, headers=hospital.headers("admin"))
    assert 400 <= r.status_code < 500, (body[:60], r.status_code, r.text[:200])


BAD_BUNDLES = [
    {"resourceType": "Bundle", "type": "transaction", "entry": "x"},
    {"resourceType": "Bundle", "type": "transaction", "entry": [1, 2]},
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "PUT", "url": "Patient/a/b/c"}, "resource": patient_body()}],
    },
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "Patient/x"}, "resource": patient_body()}],
    },
    {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "GET", "url": "/"}}]},
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": "Patient?birthdate=bad"}}],
    },
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "birthdate=bad"},
                "resource": patient_body(),
            }
        ],
    },
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "Observation"}, "resource": patient_body()}],
    },
]


@pytest.mark.parametrize("bundle", BAD_BUNDLES)
def test_bad_bundles_are_client_errors(client, hospital, bundle):
    r = client.post(FHIR, json=bundle, headers=hospital.headers("admin"))
    assert 400 <= r.status_code < 500, (bundle, r.status_code, r.text[:200])
    assert r.json()["resourceType"] == "OperationOutcome"
