"""Consent per purpose: separate, withdrawable at once, a guardian for a child under 14, one check."""

from datetime import date

import pytest

from tests.conftest import patient_body
from xinglin.core.errors import BadRequest, Forbidden, InvalidResource
from xinglin.privacy import consent
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal, system_principal
from xinglin.store.repository import Store

FHIR = "/fhir/R4"


@pytest.fixture
def store(database):
    return Store(database.engine, database.settings)


def _patient(client, hospital, **extra) -> str:
    return client.post(f"{FHIR}/Patient", json=patient_body(**extra), headers=hospital.headers()).json()["id"]


def _as_patient(hospital, patient_id: str) -> Principal:
    return Principal(
        tenant_id=hospital.id,
        tenant_code=hospital.code,
        username="patient-user",
        role="patient",
        patient_id=patient_id,
        scopes=ROLE_SCOPES["patient"],
    )


def _child_birth_date(years: int) -> str:
    return date(consent.today_in_china().year - years, 1, 1).isoformat()


def test_grant_is_per_purpose_and_stored_as_fhir_consent(client, hospital, store):
    pid = _patient(client, hospital)
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        granted = consent.grant_consent(repo, pid, "online-consultation").as_dict()
        assert consent.has_consent(repo, pid, "online-consultation")
        assert not consent.has_consent(repo, pid, "research")
        assert not consent.has_consent(repo, pid, "treatment")
        # granting again returns the consent in force
        assert consent.grant_consent(repo, pid, "online-consultation").id == granted["id"]
    assert granted["status"] == "active"
    assert granted["category"][0]["coding"][0]["system"] == consent.PURPOSE_SYSTEM
    assert granted["provision"]["purpose"][0]["code"] == "online-consultation"
    assert granted["performer"] == [{"reference": f"Patient/{pid}"}]
    # and it is an ordinary FHIR resource, searchable by purpose
    found = client.get(
        f"{FHIR}/Consent?patient=Patient/{pid}&purpose={consent.PURPOSE_SYSTEM}|online-consultation",
        headers=hospital.headers("patient", patient_id=pid),
    ).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [granted["id"]]


def test_withdrawal_takes_effect_at_once(client, hospital, store):
    pid = _patient(client, hospital)
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        consent.grant_consent(repo, pid, "research")
        consent.grant_consent(repo, pid, "treatment")
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        withdrawn = consent.withdraw_consent(repo, pid, "research")
    assert [w.as_dict()["status"] for w in withdrawn] == ["inactive"]
    assert withdrawn[0].as_dict()["provision"]["period"]["end"]
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        assert not consent.has_consent(repo, pid, "research")
        assert consent.has_consent(repo, pid, "treatment")  # the other purpose is untouched
        with pytest.raises(Forbidden) as info:
            consent.require_consent(repo, pid, "research")
    assert info.value.status == 403
    assert info.value.zh == "患者尚未同意“科研数据共享”（research），或已撤回同意：请先取得患者的单独同意"
    assert info.value.en == (
        "The patient has not consented to research sharing (research), or has withdrawn consent: "
        "obtain the patient's separate consent first"
    )
    # consent can be given again later
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        consent.grant_consent(repo, pid, "research")
        consent.require_consent(repo, pid, "research")


def test_require_consent_names_each_missing_purpose(client, hospital, store):
    pid = _patient(client, hospital)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        for purpose in consent.PURPOSES:
            with pytest.raises(Forbidden) as info:
                consent.require_consent(repo, pid, purpose)
            assert f"({purpose})" in info.value.en
            assert f"（{purpose}）" in info.value.zh


def test_unknown_purpose_is_400(client, hospital, store):
    pid = _patient(client, hospital)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo, pytest.raises(BadRequest) as info:
        consent.grant_consent(repo, pid, "marketing")
    assert info.value.element == "purpose"
    assert info.value.en.startswith("Unknown consent purpose 'marketing'")


def test_child_under_14_needs_a_guardian(client, hospital, store):
    pid = _patient(client, hospital, birthDate=_child_birth_date(10))
    with store.unit_of_work(_as_patient(hospital, pid)) as repo, pytest.raises(InvalidResource) as info:
        consent.grant_consent(repo, pid, "treatment")
    assert info.value.status == 422
    assert info.value.element == "guardian"
    assert info.value.zh == (
        "未满 14 周岁的患者须由监护人同意：请提供监护人（guardian：RelatedPerson 引用，或姓名和关系）"
    )
    assert info.value.en == (
        "A patient under 14 needs a guardian's consent: give the guardian "
        "(guardian: a RelatedPerson reference, or name and relationship)"
    )
    with store.unit_of_work(_as_patient(hospital, pid)) as repo, pytest.raises(InvalidResource) as info:
        consent.grant_consent(repo, pid, "treatment", guardian={"name": "王芳"})
    assert "guardian.relationship" in info.value.en
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        granted = consent.grant_consent(repo, pid, "treatment", guardian={"name": "王芳", "relationship": "母亲"})
        assert consent.has_consent(repo, pid, "treatment")
    body = granted.as_dict()
    assert body["performer"] == [{"display": "王芳"}]
    parts = {e["url"]: e["valueString"] for e in body["extension"][0]["extension"]}
    assert body["extension"][0]["url"] == consent.GUARDIAN_EXTENSION
    assert parts == {"name": "王芳", "relationship": "母亲"}


def test_guardian_as_related_person(client, hospital, store):
    pid = _patient(client, hospital, birthDate=_child_birth_date(8))
    other = _patient(client, hospital)
    h = hospital.headers("registrar")
    mother = client.post(
        f"{FHIR}/RelatedPerson",
        json={"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{pid}"}, "name": [{"text": "王芳"}]},
        headers=h,
    ).json()["id"]
    stranger = client.post(
        f"{FHIR}/RelatedPerson",
        json={"resourceType": "RelatedPerson", "patient": {"reference": f"Patient/{other}"}},
        headers=h,
    ).json()["id"]
    with store.unit_of_work(_as_patient(hospital, pid)) as repo, pytest.raises(InvalidResource) as info:
        consent.grant_consent(repo, pid, "research", guardian={"reference": f"RelatedPerson/{stranger}"})
    assert info.value.en == "The guardian is not related to this patient"
    with store.unit_of_work(_as_patient(hospital, pid)) as repo:
        granted = consent.grant_consent(
            repo, pid, "research", guardian=consent.Guardian(reference=f"RelatedPerson/{mother}")
        )
    assert granted.as_dict()["performer"] == [{"reference": f"RelatedPerson/{mother}"}]


def test_age_from_birth_date():
    assert consent.age_on("2000-06-15", date(2014, 6, 14)) == 13
    assert consent.age_on("2000-06-15", date(2014, 6, 15)) == 14
    assert consent.age_on("2000", date(2014, 6, 15)) == 14
    assert consent.age_on(None) is None


def test_a_patient_cannot_consent_for_someone_else(client, hospital, store):
    alice, bob = _patient(client, hospital), _patient(client, hospital)
    with store.unit_of_work(_as_patient(hospital, alice)) as repo, pytest.raises(Forbidden):
        consent.grant_consent(repo, bob, "research")
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        assert not consent.has_consent(repo, bob, "research")
