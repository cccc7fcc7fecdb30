"""Bad input of every kind gets an OperationOutcome with the right status, never a 500."""

import pytest

from tests.conftest import patient_body

FHIR = "/fhir/R4"


def _issue(r):
    assert r.headers["content-type"] == "application/fhir+json"
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def test_malformed_json_is_400(client, hospital):
    r = client.post(f"{FHIR}/Patient", content=b'{"resourceType": "Patient",', headers=hospital.headers())
    assert r.status_code == 400
    issue = _issue(r)
    assert issue["diagnostics"].startswith("The body is not valid JSON")
    assert "JSON" in issue["details"]["text"]


@pytest.mark.parametrize(
    ("body", "element"),
    [
        ({"resourceType": "Patient", "gender": "boy"}, "Patient.gender"),
        ({"resourceType": "Patient", "birthDate": "1990-02-30"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "name": [{"family": 42}]}, "Patient.name[0].family"),
        ({"resourceType": "Patient", "shoeSize": 42}, "Patient.shoeSize"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
        ({"resourceType": "Observation", "status": "guessed", "code": {"text": "x"}}, "Observation.status"),
        (
            {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {"code": "AMB"},
                "period": {"start": "yesterday"},
            },
            "Encounter.period.start",
        ),
    ],
)
def test_invalid_content_is_422_naming_the_element(client, hospital, body, element):
    rtype = body["resourceType"]
    r = client.post(f"{FHIR}/{rtype}", json=body, headers=hospital.headers())
    assert r.status_code == 422
    issue = _issue(r)
    assert issue["expression"] == [element]
    assert element in issue["diagnostics"]
    assert element in issue["details"]["text"]


def test_required_binding_message_in_both_languages(client, hospital):
    r = client.post(f"{FHIR}/Patient", json={"resourceType": "Patient", "gender": "boy"}, headers=hospital.headers())
    issue = _issue(r)
    assert (
        issue["diagnostics"] == "Patient.gender: 'boy' is not in the required value set (female, male, other, unknown)"
    )
    assert (
        issue["details"]["text"] == "Patient.gender 的取值 “boy” 不在规定的值集中（可选：female, male, other, unknown）"
    )


def test_body_type_must_match_url(client, hospital):
    r = client.post(f"{FHIR}/Observation", json=patient_body(), headers=hospital.headers())
    assert r.status_code == 422
    assert _issue(r)["expression"] == ["resourceType"]


def test_body_must_be_an_object(client, hospital):
    r = client.post(f"{FHIR}/Patient", content=b"[1, 2]", headers=hospital.headers())
    assert r.status_code == 422


def test_unknown_resource_type_is_404(client, hospital):
    assert client.get(f"{FHIR}/Spaceship/1", headers=hospital.headers()).status_code == 404
    assert client.get(f"{FHIR}/Spaceship", headers=hospital.headers()).status_code == 404
    r = client.post(f"{FHIR}/Spaceship", json={"resourceType": "Spaceship"}, headers=hospital.headers())
    assert r.status_code == 404


def test_missing_resource_is_404(client, hospital):
    r = client.get(f"{FHIR}/Patient/does-not-exist", headers=hospital.headers())
    assert r.status_code == 404
    assert _issue(r)["diagnostics"] == "Patient/does-not-exist was not found"


def test_no_token_is_401_with_challenge(client):
    r = client.get(f"{FHIR}/Patient")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert _issue(r)["code"] == "login"


def test_forged_token_is_401(client):
    r = client.get(f"{FHIR}/Patient", headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401
    assert _issue(r)["diagnostics"] == "The access token is not valid"


def test_bad_search_input_is_400(client, hospital):
    h = hospital.headers()
    for query, element in [
        ("shoe-size=42", "shoe-size"),
        ("birthdate=yesterday", "birthdate"),
        ("_count=lots", "_count"),
        ("name:fuzzy=x", "name:fuzzy"),
        ("_sort=managingOrganization", "_sort"),
    ]:
        r = client.get(f"{FHIR}/Patient?{query}", headers=h)
        assert r.status_code == 400, query
        assert _issue(r)["expression"] == [element], query


def test_unknown_search_parameter_ignored_when_lenient(client, hospital):
    r = client.get(f"{FHIR}/Patient?shoe-size=42", headers={**hospital.headers(), "Prefer": "handling=lenient"})
    assert r.status_code == 200


def test_bad_if_match_is_400(client, hospital):
    h = hospital.headers()
    r = client.put(f"{FHIR}/Patient/x1", json=patient_body(id="x1"), headers={**h, "If-Match": "yesterday"})
    assert r.status_code == 400


def test_if_match_on_missing_resource_is_412(client, hospital):
    r = client.put(
        f"{FHIR}/Patient/x2", json=patient_body(id="x2"), headers={**hospital.headers(), "If-Match": 'W/"3"'}
    )
    assert r.status_code == 412


def test_wrong_content_type_is_415(client, hospital):
    r = client.post(
        f"{FHIR}/Patient", content=b"<Patient/>", headers={**hospital.headers(), "Content-Type": "application/xml"}
    )
    assert r.status_code == 415


def test_audit_events_cannot_be_written(client, hospital):
    r = client.post(f"{FHIR}/AuditEvent", json={"resourceType": "AuditEvent"}, headers=hospital.headers("admin"))
    assert r.status_code == 405
    assert client.delete(f"{FHIR}/AuditEvent/0-1", headers=hospital.headers("admin")).status_code == 405


def test_patch_is_405(client, hospital):
    assert client.patch(f"{FHIR}/Patient/x", json=[], headers=hospital.headers()).status_code == 405


def test_unknown_endpoint_is_operation_outcome(client):
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert _issue(r)["code"] == "not-found"
