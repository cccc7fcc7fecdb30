"""De-identification of structured FHIR resources."""

from __future__ import annotations

import copy
import json

from xinglin.privacy.deid import deidentify_resource

PATIENT = {
    "resourceType": "Patient",
    "id": "p-001",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/Patient"]},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">王建国，电话13812345678</div>'},
    "identifier": [
        {"system": "urn:oid:2.16.156.10011.1.1", "value": "110101199003074514"},
        {"system": "http://hospital.example/mrn", "value": "ZY20240001"},
    ],
    "name": [{"use": "official", "family": "王", "given": ["建国"], "text": "王建国"}],
    "telecom": [{"system": "phone", "value": "13812345678"}, {"system": "email", "value": "wjg@163.com"}],
    "gender": "male",
    "birthDate": "1990-03-07",
    "address": [
        {
            "line": ["文三路90号3栋2单元501室"],
            "district": "西湖区",
            "city": "杭州市",
            "state": "浙江省",
            "postalCode": "310012",
            "country": "CN",
        }
    ],
    "photo": [{"contentType": "image/jpeg", "data": "AAAA"}],
    "contact": [{"name": {"text": "李芳"}, "telecom": [{"system": "phone", "value": "13900001111"}]}],
}

OBSERVATION = {
    "resourceType": "Observation",
    "id": "obs-9",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
    "subject": {"reference": "Patient/p-001", "display": "王建国"},
    "effectiveDateTime": "2024-03-05T08:30:00+08:00",
    "issued": "2024-03-05T10:00:00Z",
    "valueQuantity": {"value": 135, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    "note": [{"text": "患者王建国复查，张医生已告知，2024年3月12日再查。"}],
}

REPORT = {
    "resourceType": "DiagnosticReport",
    "id": "dr-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "Chest CT"}], "text": "胸部CT"},
    "subject": {"reference": "Patient/p-001"},
    "effectivePeriod": {"start": "2024-03-05", "end": "2024-03-06"},
    "conclusion": "患者王建国，影像号CT889900，考虑帕金森病相关改变。",
}


def test_patient_identifying_elements_are_replaced() -> None:
    original = copy.deepcopy(PATIENT)
    out = deidentify_resource(PATIENT, key=b"export-1", date_shift_days=-10)
    assert original == PATIENT  # input untouched
    dumped = json.dumps(out, ensure_ascii=False)
    for secret in (
        "王建国",
        "建国",
        "110101199003074514",
        "ZY20240001",
        "13812345678",
        "wjg@163.com",
        "文三路",
        "西湖区",
        "杭州市",
        "310012",
        "李芳",
        "13900001111",
        "p-001",
        "AAAA",
    ):
        assert secret not in dumped, secret
    assert out["gender"] == "male"
    assert out["birthDate"] == "1990-02-25"
    assert out["address"][0]["state"] == "浙江省" and out["address"][0]["country"] == "CN"
    assert out["identifier"][0]["value"].startswith("[ID_NUMBER-")
    assert out["identifier"][1]["value"].startswith("[RECORD_NUMBER-")
    assert out["telecom"][0]["value"].startswith("[PHONE-")
    assert out["telecom"][1]["value"].startswith("[EMAIL-")
    assert out["name"][0]["text"].startswith("[PERSON-")
    assert "photo" not in out
    assert out["meta"]["profile"] == PATIENT["meta"]["profile"]
    assert out["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


def test_clinical_values_and_codes_are_kept_and_references_still_resolve() -> None:
    key = b"export-1"
    patient = deidentify_resource(PATIENT, key=key, date_shift_days=-10)
    obs = deidentify_resource(OBSERVATION, key=key, date_shift_days=-10)
    assert obs["code"] == OBSERVATION["code"]
    assert obs["valueQuantity"] == OBSERVATION["valueQuantity"]
    assert obs["status"] == "final"
    assert obs["subject"]["reference"] == f"Patient/{patient['id']}"
    assert "王建国" not in obs["subject"]["display"]
    assert obs["subject"]["display"] == patient["name"][0]["text"]  # same person, same pseudonym
    assert obs["effectiveDateTime"] == "2024-02-24T08:30:00+08:00"
    assert obs["issued"] == "2024-02-24T10:00:00Z"
    note = obs["note"][0]["text"]
    assert "王建国" not in note and "张" not in note
    assert "2024年3月2日" in note  # shifted by the same offset: the 7-day interval is kept


def test_free_text_fields_are_masked_and_medical_words_kept() -> None:
    out = deidentify_resource(REPORT, key=b"k", date_shift_days=3)
    assert "王建国" not in out["conclusion"] and "CT889900" not in out["conclusion"]
    assert "帕金森病" in out["conclusion"]
    assert out["code"]["text"] == "胸部CT"
    assert out["effectivePeriod"] == {"start": "2024-03-08", "end": "2024-03-09"}


def test_other_key_gives_other_pseudonyms() -> None:
    a = deidentify_resource(PATIENT, key=b"export-1", date_shift_days=0)
    b = deidentify_resource(PATIENT, key=b"export-2", date_shift_days=0)
    assert a["id"] != b["id"]
    assert a["name"][0]["text"] != b["name"][0]["text"]


def test_bundle_entries_are_processed() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": PATIENT}, {"resource": OBSERVATION}],
    }
    out = deidentify_resource(bundle, key=b"k", date_shift_days=1)
    assert "王建国" not in json.dumps(out, ensure_ascii=False)
    assert out["entry"][1]["resource"]["valueQuantity"]["value"] == 135
