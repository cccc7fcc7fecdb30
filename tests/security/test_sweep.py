"""A sweep across every resource type the server knows and the non-FHIR endpoints: researchers never reach
identified data, patients never reach someone else's, and nothing crosses tenants."""

import pytest

from tests.conftest import patient_body
from xinglin.fhir.capability import resource_types
from xinglin.store.search_params import DIRECTORY_TYPES, PATIENT_COMPARTMENT

TYPES = [t for t in resource_types() if t != "AuditEvent"]


@pytest.fixture
def people(client, hospital):
    h = hospital.headers("physician")
    alice = client.post("/fhir/R4/Patient", json=patient_body(), headers=h).json()["id"]
    bob = client.post("/fhir/R4/Patient", json=patient_body(), headers=h).json()["id"]
    for pid in (alice, bob):
        client.post(
            "/fhir/R4/Observation",
            headers=h,
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "血压"},
                "subject": {"reference": f"Patient/{pid}"},
            },
        )
    return alice, bob


def test_every_type_is_closed_to_researchers_and_other_tenants(client, hospital, other_hospital, people):
    researcher = hospital.headers("researcher")
    outsider = other_hospital.headers("admin")
    for rtype in TYPES:
        assert client.get(f"/fhir/R4/{rtype}", headers=researcher).status_code == 403, rtype
        found = client.get(f"/fhir/R4/{rtype}?_summary=count", headers=outsider)
        assert found.status_code == 200 and found.json()["total"] == 0, rtype


def test_every_type_gives_a_patient_only_their_own(client, hospital, people):
    alice, bob = people
    h = hospital.headers("patient", patient_id=alice)
    for rtype in TYPES:
        r = client.get(f"/fhir/R4/{rtype}?_count=50", headers=h)
        if rtype in DIRECTORY_TYPES:
            assert r.status_code == 200, rtype
        elif rtype == "Patient" or rtype in PATIENT_COMPARTMENT:
            assert r.status_code == 200, rtype
            assert bob not in r.text, rtype
        else:
            assert r.status_code == 403, rtype


def test_other_endpoints_keep_patients_apart(client, hospital, people):
    alice, bob = people
    h = hospital.headers("patient", patient_id=alice)
    bundle = client.get("/api/privacy/my-data", headers=h)
    assert bundle.status_code == 200 and bob not in bundle.text
    assert client.post("/api/triage", json={"text": "头疼", "patient": bob}, headers=h).status_code == 403
    assert (
        client.post(
            "/api/share/exports", json={"cohort": "Patient?gender=female", "fields": ["sex"]}, headers=h
        ).status_code
        == 403
    )
    assert client.get("/api/consults", headers=h).status_code == 200
    assert bob not in client.get("/api/consults", headers=h).text
    assert client.get("/fhir/R4/AuditEvent", headers=h).status_code == 403
    assert client.get("/api/privacy/consents", headers=hospital.headers("researcher")).status_code == 403
