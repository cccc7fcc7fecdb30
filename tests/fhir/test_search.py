"""FHIR search: parameters, prefixes, modifiers, paging, sorting, _summary and _include."""

import pytest

from tests.conftest import patient_body

FHIR = "/fhir/R4"


@pytest.fixture
def ward(client, hospital):
    """Three patients with observations, conditions and encounters."""
    h = hospital.headers("physician")

    def post(body):
        r = client.post(f"{FHIR}/{body['resourceType']}", json=body, headers=h)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    people = {
        "zhang": post(
            patient_body(
                name=[{"text": "张伟", "family": "张", "given": ["伟"]}],
                gender="male",
                birthDate="1975-03-02",
                identifier=[{"system": "urn:oid:2.16.156.10011.1.1", "value": "110101197503020031"}],
                telecom=[{"system": "phone", "value": "13800000001"}],
            )
        ),
        "ouyang": post(patient_body()),
        "smith": post(
            patient_body(
                name=[{"family": "Smith", "given": ["Anna", "Maria"]}],
                gender="female",
                birthDate="2001",
                identifier=[{"system": "urn:mrn", "value": "MRN-7"}],
                telecom=[{"system": "email", "value": "anna@example.org"}],
            )
        ),
    }
    for who, value, when in [
        ("zhang", 5.4, "2024-03-05T08:00:00+08:00"),
        ("zhang", 11.2, "2024-06-01T09:30:00+08:00"),
        ("ouyang", 4.1, "2024-03-06T10:00:00+08:00"),
    ]:
        post(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "葡萄糖"}]},
                "subject": {"reference": f"Patient/{people[who]}"},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": value,
                    "unit": "mmol/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "mmol/L",
                },
            }
        )
    post(
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{people['zhang']}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "高血压"}]},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
        }
    )
    post(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{people['ouyang']}"},
            "period": {"start": "2024-03-06T09:00:00+08:00", "end": "2024-03-06T09:20:00+08:00"},
        }
    )
    return people, h


def ids(client, h, query):
    r = client.get(f"{FHIR}/{query}", headers=h)
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?name=张伟", ["zhang"]),
        ("Patient?name=伟", ["zhang"]),  # any part of a Chinese name
        ("Patient?name=娜娜", ["ouyang"]),
        ("Patient?name=欧阳", ["ouyang"]),
        ("Patient?name=阳娜", ["ouyang"]),
        ("Patient?family=欧阳", ["ouyang"]),
        ("Patient?given=maria", ["smith"]),
        ("Patient?name=SMI", ["smith"]),
        ("Patient?name:exact=Smith", ["smith"]),
        ("Patient?name:exact=smith", []),
        ("Patient?name:contains=mit", ["smith"]),
        ("Patient?identifier=110101197503020031", ["zhang"]),
        ("Patient?identifier=urn:oid:2.16.156.10011.1.1|110101197503020031", ["zhang"]),
        ("Patient?identifier=urn:mrn|110101197503020031", []),
        ("Patient?identifier=urn:mrn|", ["smith"]),
        ("Patient?phone=13800000001", ["zhang"]),
        ("Patient?telecom=anna@example.org", ["smith"]),
        ("Patient?email=anna@example.org", ["smith"]),
        ("Patient?gender=male", ["zhang"]),
        ("Patient?gender:not=male", ["ouyang", "smith"]),
        ("Patient?gender=male,female", ["zhang", "ouyang", "smith"]),
        ("Patient?birthdate=1975-03-02", ["zhang"]),
        ("Patient?birthdate=1975", ["zhang"]),
        ("Patient?birthdate=lt1990", ["zhang"]),
        ("Patient?birthdate=ge1990-05-17", ["ouyang", "smith"]),
        ("Patient?birthdate=gt1990-05-17", ["smith"]),
        ("Patient?birthdate=le1990-05-17", ["zhang", "ouyang"]),
        ("Patient?birthdate=ne1990-05-17", ["zhang", "smith"]),
        ("Patient?birthdate=ge1990&gender=female", ["ouyang", "smith"]),
        ("Patient?birthdate=ge1970&birthdate=lt1995", ["zhang", "ouyang"]),
    ],
)
def test_patient_search(client, ward, query, expected):
    people, h = ward
    assert ids(client, h, query) == [people[k] for k in expected]


def test_observation_search(client, ward):
    people, h = ward
    z, o = people["zhang"], people["ouyang"]
    assert len(ids(client, h, f"Observation?patient=Patient/{z}")) == 2
    assert len(ids(client, h, f"Observation?subject={z}")) == 2
    assert len(ids(client, h, f"Observation?patient:Patient={o}")) == 1
    assert len(ids(client, h, "Observation?code=http://loinc.org|2345-7")) == 3
    assert len(ids(client, h, "Observation?category=laboratory")) == 3
    assert len(ids(client, h, "Observation?value-quantity=5.4")) == 1
    assert len(ids(client, h, "Observation?value-quantity=gt5")) == 2
    assert len(ids(client, h, "Observation?value-quantity=le5.4|http://unitsofmeasure.org|mmol/L")) == 2
    assert len(ids(client, h, "Observation?value-quantity=lt5|http://unitsofmeasure.org|mg/dL")) == 0
    # 2024-03-05T08:00+08:00 is 2024-03-05T00:00Z: on the 5th, in UTC
    assert len(ids(client, h, "Observation?date=2024-03-05")) == 1
    assert len(ids(client, h, "Observation?date=ge2024-03-06")) == 2
    assert len(ids(client, h, "Observation?date=2024-03")) == 2
    assert len(ids(client, h, f"Observation?patient={z}&date=gt2024-04")) == 1


def test_condition_and_encounter_search(client, ward):
    people, h = ward
    assert len(ids(client, h, "Condition?code=I10")) == 1
    assert len(ids(client, h, "Condition?clinical-status=active")) == 1
    assert len(ids(client, h, f"Condition?patient={people['zhang']}")) == 1
    assert len(ids(client, h, "Encounter?class=AMB&status=finished")) == 1
    assert len(ids(client, h, "Encounter?date=2024-03-06")) == 1
    assert len(ids(client, h, "Encounter?date=2024-03-07")) == 0


def test_id_and_last_updated(client, ward):
    people, h = ward
    assert ids(client, h, f"Patient?_id={people['smith']},{people['zhang']}") == [people["zhang"], people["smith"]]
    assert len(ids(client, h, "Patient?_lastUpdated=gt2020-01-01")) == 3
    assert len(ids(client, h, "Patient?_lastUpdated=lt2020-01-01")) == 0


def test_paging_links(client, ward):
    people, h = ward
    first = client.get(f"{FHIR}/Patient?_count=2&_sort=birthdate", headers=h).json()
    assert first["total"] == 3
    assert [e["resource"]["id"] for e in first["entry"]] == [people["zhang"], people["ouyang"]]
    rels = {link["relation"]: link["url"] for link in first["link"]}
    assert set(rels) == {"self", "first", "next"}
    second_url = rels["next"].split("/fhir/R4/", 1)[1]
    second = client.get(f"{FHIR}/{second_url}", headers=h).json()
    assert [e["resource"]["id"] for e in second["entry"]] == [people["smith"]]
    rels2 = {link["relation"] for link in second["link"]}
    assert "previous" in rels2 and "next" not in rels2


def test_sort(client, ward):
    people, h = ward
    assert ids(client, h, "Patient?_sort=-birthdate") == [people["smith"], people["ouyang"], people["zhang"]]
    # Code-point order: Latin before CJK, 张 (U+5F20) before 欧 (U+6B27).
    assert ids(client, h, "Patient?_sort=family") == [people["smith"], people["zhang"], people["ouyang"]]
    assert ids(client, h, "Patient?_sort=-_lastUpdated")[0] == people["smith"]


def test_summary_count(client, ward):
    _, h = ward
    r = client.get(f"{FHIR}/Observation?_summary=count", headers=h).json()
    assert r["total"] == 3
    assert "entry" not in r


def test_include(client, ward):
    people, h = ward
    r = client.get(f"{FHIR}/Observation?code=2345-7&_include=Observation:patient", headers=h).json()
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in r["entry"])
    assert modes == [
        ("include", "Patient"),
        ("include", "Patient"),
        ("match", "Observation"),
        ("match", "Observation"),
        ("match", "Observation"),
    ]
    rev = client.get(f"{FHIR}/Patient?_id={people['zhang']}&_revinclude=Observation:patient", headers=h).json()
    assert sorted(e["resource"]["resourceType"] for e in rev["entry"]) == ["Observation", "Observation", "Patient"]


def test_post_search(client, ward):
    people, h = ward
    r = client.post(
        f"{FHIR}/Patient/_search",
        content="name=张伟",
        headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [people["zhang"]]


def test_missing_modifier(client, ward):
    people, h = ward
    assert ids(client, h, "Patient?email:missing=false") == [people["smith"]]
    assert ids(client, h, "Patient?email:missing=true") == [people["zhang"], people["ouyang"]]


def test_chained_search(client, ward, other_hospital):
    people, h = ward
    z = people["zhang"]
    zhang_obs = set(ids(client, h, f"Observation?patient={z}"))
    assert set(ids(client, h, "Observation?subject:Patient.name=张伟")) == zhang_obs
    assert set(ids(client, h, "Observation?patient.identifier=110101197503020031")) == zhang_obs
    assert set(ids(client, h, "Observation?patient.birthdate=lt1980")) == zhang_obs
    assert len(ids(client, h, "Observation?subject.name=欧阳")) == 1  # every type that has `name`
    assert len(ids(client, h, "Condition?subject:Patient.gender=male")) == 1
    assert ids(client, h, "Condition?subject:Patient.gender=female") == []
    assert ids(client, h, "Observation?subject:Patient.name=无此人") == []
    assert len(ids(client, h, "Observation?subject:Patient.name=张伟&date=gt2024-04")) == 1
    # a chain ending in a reference parameter (index subqueries of the same table, nested)
    gp = client.post(
        f"{FHIR}/Patient", json=patient_body(generalPractitioner=[{"reference": "Practitioner/dr-1"}]), headers=h
    ).json()["id"]
    obs = client.post(
        f"{FHIR}/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "体温"},
            "subject": {"reference": f"Patient/{gp}"},
        },
        headers=h,
    ).json()["id"]
    assert ids(client, h, "Observation?subject:Patient.general-practitioner=Practitioner/dr-1") == [obs]
    # another hospital's 张伟 is not reached through the chain
    oh = other_hospital.headers("physician")
    twin = client.post(
        f"{FHIR}/Patient", json=patient_body(name=[{"text": "张伟", "family": "张", "given": ["伟"]}]), headers=oh
    ).json()
    assert ids(client, oh, "Observation?subject:Patient.name=张伟") == []
    assert twin["id"] not in ids(client, h, "Patient?name=张伟")
    for query, element, message in [
        (
            "Observation?code.name=x",
            "code.name",
            "'code' is not a reference parameter of Observation, so it cannot be chained",
        ),
        (
            "Observation?subject:Patient.colour=x",
            "subject:Patient.colour",
            "No target type of 'subject:Patient.colour' has the search parameter 'colour'",
        ),
        (
            "Observation?subject.organization.name=x",
            "subject.organization.name",
            "Only one level of chaining is supported",
        ),
    ]:
        r = client.get(f"{FHIR}/{query}", headers=h)
        assert r.status_code == 400, query
        issue = r.json()["issue"][0]
        assert (issue["expression"], issue["diagnostics"]) == ([element], message)


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def test_summary_and_elements(client, ward):
    people, h = ward
    z = people["zhang"]
    full = client.get(f"{FHIR}/Patient/{z}", headers=h).json()
    assert "tag" not in full["meta"]

    elements = client.get(f"{FHIR}/Patient/{z}?_elements=name,gender", headers=h).json()
    assert set(elements) == {"resourceType", "id", "meta", "name", "gender"}
    assert elements["meta"]["tag"] == [SUBSETTED] and elements["meta"]["versionId"] == "1"

    summary = client.get(f"{FHIR}/Patient/{z}?_summary=true", headers=h).json()
    assert set(summary) == {"resourceType", "id", "meta", "name", "gender", "birthDate", "identifier", "telecom"}
    assert set(client.get(f"{FHIR}/Patient/{z}?_summary=false", headers=h).json()) == set(full)

    bundle = client.get(f"{FHIR}/Observation?patient={z}&_elements=valueQuantity", headers=h).json()
    assert bundle["total"] == 2
    for entry in bundle["entry"]:
        # status is mandatory, so it comes even when not asked for
        assert set(entry["resource"]) == {"resourceType", "id", "meta", "status", "valueQuantity"}
        assert entry["resource"]["meta"]["tag"] == [SUBSETTED]
    assert "_elements=valueQuantity" in bundle["link"][0]["url"]
    data = client.get(f"{FHIR}/Observation?patient={z}&_summary=data", headers=h).json()
    assert all("code" in e["resource"] and "text" not in e["resource"] for e in data["entry"])

    for query, element, message in [
        (f"Patient/{z}?_summary=brief", "_summary", "Unsupported _summary value 'brief'"),
        ("Patient?_elements=name,<b>", "_elements", "'<b>' in _elements is not an element name"),
    ]:
        r = client.get(f"{FHIR}/{query}", headers=h)
        assert r.status_code == 400, query
        issue = r.json()["issue"][0]
        assert (issue["expression"], issue["diagnostics"]) == ([element], message)
