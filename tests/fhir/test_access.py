"""Tenant isolation and access policies, across resource types, reads and searches."""

import pytest

from tests.conftest import patient_body

FHIR = "/fhir/R4"

# One resource of each kind the policies must cover, pointing at the patient "{pid}".
CLINICAL = {
    "Encounter": {"status": "finished", "class": {"code": "AMB"}, "subject": {"reference": "Patient/{pid}"}},
    "Condition": {"code": {"text": "高血压"}, "subject": {"reference": "Patient/{pid}"}},
    "Observation": {"status": "final", "code": {"text": "血糖"}, "subject": {"reference": "Patient/{pid}"}},
    "MedicationRequest": {
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "氨氯地平"},
        "subject": {"reference": "Patient/{pid}"},
    },
    "Appointment": {
        "status": "booked",
        "participant": [{"actor": {"reference": "Patient/{pid}"}, "status": "accepted"}],
    },
    "Consent": {
        "status": "active",
        "scope": {"text": "treatment"},
        "category": [{"text": "medical"}],
        "patient": {"reference": "Patient/{pid}"},
    },
    "DocumentReference": {
        "status": "current",
        "subject": {"reference": "Patient/{pid}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "5oiR"}}],
    },
    "DiagnosticReport": {"status": "final", "code": {"text": "血常规"}, "subject": {"reference": "Patient/{pid}"}},
    "Communication": {"status": "completed", "subject": {"reference": "Patient/{pid}"}},
    "Task": {"status": "requested", "intent": "order", "for": {"reference": "Patient/{pid}"}},
    "RiskAssessment": {"status": "final", "subject": {"reference": "Patient/{pid}"}},
}


def _fill(body, pid):
    import json

    return json.loads(json.dumps(body).replace("{pid}", pid))


@pytest.fixture
def two_patients(client, hospital):
    """Two patients of one hospital, each with one resource of every clinical type."""
    h = hospital.headers("physician")
    out = {}
    for who in ("alice", "bob"):
        pid = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()["id"]
        res = {"Patient": pid}
        for rtype, body in CLINICAL.items():
            r = client.post(f"{FHIR}/{rtype}", json={"resourceType": rtype, **_fill(body, pid)}, headers=h)
            assert r.status_code == 201, (rtype, r.text)
            res[rtype] = r.json()["id"]
        out[who] = res
    return out


TYPES = ["Patient", *CLINICAL]


@pytest.mark.parametrize("rtype", TYPES)
def test_patient_reads_only_own_compartment(client, hospital, two_patients, rtype):
    alice, bob = two_patients["alice"], two_patients["bob"]
    h = hospital.headers("patient", patient_id=alice["Patient"])
    assert client.get(f"{FHIR}/{rtype}/{alice[rtype]}", headers=h).status_code == 200
    denied = client.get(f"{FHIR}/{rtype}/{bob[rtype]}", headers=h)
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["diagnostics"] == f"{rtype}/{bob[rtype]} is not part of your own record"
    assert client.get(f"{FHIR}/{rtype}/{bob[rtype]}/_history", headers=h).status_code == 403
    assert client.get(f"{FHIR}/{rtype}/{bob[rtype]}/_history/1", headers=h).status_code == 403
    found = client.get(f"{FHIR}/{rtype}", headers=h).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [alice[rtype]]
    # asking for the other patient's data by search parameter finds nothing
    if rtype != "Patient":
        param = {"Appointment": "actor", "Communication": "subject"}.get(rtype, "patient")
        other = client.get(f"{FHIR}/{rtype}?{param}={bob['Patient']}", headers=h).json()
        assert other["total"] == 0
    else:
        assert client.get(f"{FHIR}/Patient?_id={bob['Patient']}", headers=h).json()["total"] == 0


def test_patient_include_does_not_leak(client, hospital, two_patients):
    alice, bob = two_patients["alice"], two_patients["bob"]
    # A physician links alice's observation to bob as performer; alice's _include must not return bob.
    h = hospital.headers("physician")
    obs = client.get(f"{FHIR}/Observation/{alice['Observation']}", headers=h).json()
    obs["performer"] = [{"reference": f"Patient/{bob['Patient']}"}]
    assert client.put(f"{FHIR}/Observation/{obs['id']}", json=obs, headers=h).status_code == 200
    ph = hospital.headers("patient", patient_id=alice["Patient"])
    r = client.get(f"{FHIR}/Observation?_include=Observation:performer", headers=ph).json()
    assert {e["resource"]["id"] for e in r["entry"]} == {alice["Observation"]}


def test_patient_cannot_write_for_someone_else(client, hospital, two_patients):
    alice, bob = two_patients["alice"], two_patients["bob"]
    h = hospital.headers("patient", patient_id=alice["Patient"])
    body = {
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": f"Patient/{bob['Patient']}"},
    }
    assert client.post(f"{FHIR}/Communication", json=body, headers=h).status_code == 403
    mine = {**body, "subject": {"reference": f"Patient/{alice['Patient']}"}}
    assert client.post(f"{FHIR}/Communication", json=mine, headers=h).status_code == 201
    # nor take over someone else's resource by updating it, nor write clinical findings
    bobs = client.get(f"{FHIR}/Communication/{bob['Communication']}", headers=hospital.headers()).json()
    assert (
        client.put(
            f"{FHIR}/Communication/{bobs['id']}", json={**bobs, "subject": mine["subject"]}, headers=h
        ).status_code
        == 403
    )
    cond = {"resourceType": "Condition", "code": {"text": "x"}, "subject": {"reference": f"Patient/{alice['Patient']}"}}
    assert client.post(f"{FHIR}/Condition", json=cond, headers=h).status_code == 403
    assert client.delete(f"{FHIR}/Patient/{bob['Patient']}", headers=h).status_code == 403


def test_patient_sees_directory_but_not_audit(client, hospital, two_patients):
    h = hospital.headers("patient", patient_id=two_patients["alice"]["Patient"])
    assert client.get(f"{FHIR}/Practitioner", headers=h).status_code == 200
    assert client.get(f"{FHIR}/Slot", headers=h).status_code == 200
    assert client.get(f"{FHIR}/AuditEvent", headers=h).status_code == 403
    assert client.get(f"{FHIR}/Patient/_history", headers=h).status_code == 403
    assert client.get(f"{FHIR}/_history", headers=h).status_code == 403


@pytest.mark.parametrize("rtype", TYPES)
def test_other_tenant_sees_nothing(client, hospital, other_hospital, two_patients, rtype):
    rid = two_patients["alice"][rtype]
    h = other_hospital.headers("admin")
    assert client.get(f"{FHIR}/{rtype}/{rid}", headers=h).status_code == 404
    assert client.get(f"{FHIR}/{rtype}/{rid}/_history/1", headers=h).status_code == 404
    assert client.get(f"{FHIR}/{rtype}?_id={rid}", headers=h).json()["total"] == 0
    assert client.get(f"{FHIR}/{rtype}", headers=h).json()["total"] == 0
    assert client.get(f"{FHIR}/{rtype}/_history", headers=h).json()["total"] == 0
    assert client.delete(f"{FHIR}/{rtype}/{rid}", headers=h).status_code == 404
    # writing with the same id in the other tenant creates an unrelated resource there
    mine = client.get(f"{FHIR}/{rtype}/{rid}", headers=hospital.headers()).json()
    assert client.put(f"{FHIR}/{rtype}/{rid}", json=mine, headers=h).status_code == 201
    assert client.get(f"{FHIR}/{rtype}/{rid}", headers=hospital.headers()).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize("rtype", TYPES)
def test_researcher_sees_no_identified_data(client, hospital, two_patients, rtype):
    h = hospital.headers("researcher")
    rid = two_patients["alice"][rtype]
    assert client.get(f"{FHIR}/{rtype}/{rid}", headers=h).status_code == 403
    assert client.get(f"{FHIR}/{rtype}", headers=h).status_code == 403
    assert client.get(f"{FHIR}/{rtype}/{rid}/_history", headers=h).status_code == 403


def test_staff_roles(client, hospital, two_patients):
    alice = two_patients["alice"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{alice['Patient']}"},
    }
    assert client.post(f"{FHIR}/Observation", json=obs, headers=hospital.headers("nurse")).status_code == 201
    assert client.post(f"{FHIR}/Observation", json=obs, headers=hospital.headers("pharmacist")).status_code == 403
    assert client.get(f"{FHIR}/Observation", headers=hospital.headers("pharmacist")).status_code == 200
    assert client.get(f"{FHIR}/Observation", headers=hospital.headers("registrar")).status_code == 403
    assert client.get(f"{FHIR}/Appointment", headers=hospital.headers("registrar")).status_code == 200
    assert client.get(f"{FHIR}/AuditEvent", headers=hospital.headers("physician")).status_code == 403
    assert client.get(f"{FHIR}/AuditEvent", headers=hospital.headers("admin")).status_code == 200


def test_read_only_integration_client(client, hospital):
    h = hospital.headers("integration", scopes=("system/*.read",))
    assert client.get(f"{FHIR}/Patient", headers=h).status_code == 200
    assert client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).status_code == 403


def test_denied_attempts_are_audited(client, hospital, two_patients):
    bob = two_patients["bob"]
    h = hospital.headers("patient", patient_id=two_patients["alice"]["Patient"], username="alice")
    client.get(f"{FHIR}/Condition/{bob['Condition']}", headers=h)
    events = client.get(
        f"{FHIR}/AuditEvent?entity=Condition/{bob['Condition']}", headers=hospital.headers("admin")
    ).json()
    denied = [e["resource"] for e in events["entry"] if e["resource"]["outcome"] == "4"]
    assert len(denied) == 1
    assert denied[0]["agent"][0]["who"]["display"] == "patient:alice"
    assert denied[0]["entity"][0]["what"]["reference"] == f"Condition/{bob['Condition']}"
