"""End to end: messy exports into the store (SQLite and PostgreSQL), with a report whose counts add up."""

from __future__ import annotations

import json

import pytest

from tests.ingest.samples import ID_WANG, ID_ZHANG, gbk_csv, hl7_file, jsonl_file, xlsx_file
from xinglin.core.errors import BadRequest
from xinglin.ingest.profile import Profile
from xinglin.ingest.readers import SourceError
from xinglin.ingest.service import ingest
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store


def _store(database) -> Store:
    return Store(database.engine, database.settings)


def _all(database, hospital, rtype: str, params: list[tuple[str, str]] | None = None) -> list[dict]:
    with _store(database).unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        page = repo.search(rtype, [*(params or []), ("_count", "1000")])
        return [m.as_dict() for m in page.matches]


def _counts(report) -> dict:
    return {
        k: getattr(report, k)
        for k in ("rows_read", "rows_stored", "rows_matched", "rows_rejected", "rows_already_ingested",
                  "patients_created", "patients_matched", "reviews_created", "resources_written")
    }  # fmt: skip


def test_gbk_csv_end_to_end(database, hospital, tmp_path):
    path = gbk_csv(tmp_path)
    report = ingest(_store(database), hospital.code, [path])
    assert _counts(report) == {
        "rows_read": 8, "rows_stored": 3, "rows_matched": 1, "rows_rejected": 4, "rows_already_ingested": 0,
        "patients_created": 3, "patients_matched": 0, "reviews_created": 0, "resources_written": 12,
    }  # fmt: skip
    assert dict(report.resources_by_type) == {"Patient": 3, "Encounter": 3, "Condition": 2, "Observation": 4}
    data = report.as_dict()
    assert [(r["row"], r["field"], r["reason"]) for r in data["rejections"]] == [
        (4, "身份证号", "id_checksum"),
        (6, "出生日期", "id_birth_date_mismatch"),
        (7, "病人姓名", "no_identity"),
        (8, "单位", "unit_unconvertible"),
    ]
    assert data["rejections"][0]["reason_zh"] == "身份证号校验位错误"
    assert data["rejections"][0]["reason_en"] == "ID number check character is wrong"
    assert data["invalid_values"]["phone_invalid"] == {"联系电话": 1}
    assert [(w["row"], w["reason"]) for w in data["warnings"]] == [(9, "phone_invalid")]
    assert data["unmapped"]["lab_item"] == {"某特殊项目": 1}
    assert data["unmapped"]["diagnosis"] == {"高血压": 1, "2型糖尿病": 1}
    assert data["completeness"]["身份证号"] == {
        "element": "Patient.identifier:id-card", "present": 4, "valid": 3, "completeness": 0.375
    }  # fmt: skip
    assert data["lab_units_converted"] == 2

    (zhang,) = _all(database, hospital, "Patient", [("identifier", f"urn:oid:2.16.156.10011.1.1|{ID_ZHANG}")])
    assert zhang["name"] == [{"use": "official", "text": "张三", "family": "张", "given": ["三"]}]
    assert zhang["gender"] == "male" and zhang["birthDate"] == "1985-03-12"
    assert zhang["telecom"] == [{"system": "phone", "value": "13912345678", "use": "mobile"}]
    assert zhang["address"][0] | {} == {
        "use": "home", "text": "广东省深圳市南山区科技园路1号", "line": ["科技园路1号"], "city": "深圳市",
        "district": "南山区", "state": "广东省", "country": "CN",
    }  # fmt: skip
    assert zhang["extension"][0]["valueCoding"]["code"] == "1"
    assert any(i["system"].startswith("https://xinglin.dev/ingest/source/hospital_a") for i in zhang["identifier"])

    obs = _all(database, hospital, "Observation", [("patient", zhang["id"])])
    by_code = {o["code"]["coding"][0]["code"]: o for o in obs}
    glu = by_code["14771-0"]  # 空腹血糖 100.8 mg/dL
    assert glu["valueQuantity"] == {
        "value": 5.6,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert glu["referenceRange"][0]["low"]["value"] == 3.89 and glu["referenceRange"][0]["high"]["value"] == 6.11
    assert glu["referenceRange"][0]["text"] == "70-110"
    assert glu["effectiveDateTime"] == "2024-03-05"
    assert by_code["14682-9"]["valueQuantity"]["value"] == 106.0
    assert by_code["14682-9"]["valueQuantity"]["unit"] == "µmol/L"
    encounters = _all(database, hospital, "Encounter", [("patient", zhang["id"])])
    assert len(encounters) == 1 and encounters[0]["period"] == {"start": "2024-03-05"}
    assert {o["encounter"]["reference"] for o in obs} == {f"Encounter/{encounters[0]['id']}"}
    conds = _all(database, hospital, "Condition", [("patient", zhang["id"])])
    assert sorted(c["code"]["text"] for c in conds) == ["2型糖尿病", "高血压"]

    (wang5,) = _all(database, hospital, "Patient", [("name", "王五")])
    assert wang5["telecom"][0]["value"] == "0755-88888888"
    (enc5,) = _all(database, hospital, "Encounter", [("patient", wang5["id"])])
    assert enc5["period"]["start"] == "2024-03-07T08:00:00+08:00"
    (sun,) = _all(database, hospital, "Patient", [("name", "孙八")])
    assert sun["gender"] == "unknown" and "telecom" not in sun
    (odd,) = _all(database, hospital, "Observation", [("patient", sun["id"])])
    assert odd["valueString"] == "阴性" and odd["code"] == {"text": "某特殊项目"}
    (enc9,) = _all(database, hospital, "Encounter", [("patient", sun["id"])])
    assert enc9["period"]["start"] == "2024-03-09"  # Excel serial 45360


def test_rerun_is_idempotent_and_dry_run_writes_nothing(database, hospital, tmp_path):
    path = gbk_csv(tmp_path)
    dry = ingest(_store(database), hospital.code, [path], dry_run=True)
    assert (dry.rows_stored, dry.rows_matched, dry.rows_rejected, dry.resources_written) == (3, 1, 4, 0)
    assert _all(database, hospital, "Patient") == []
    first = ingest(_store(database), hospital.code, [path])
    assert first.resources_written == 12
    again = ingest(_store(database), hospital.code, [path])
    assert _counts(again) == {
        "rows_read": 8, "rows_stored": 0, "rows_matched": 4, "rows_rejected": 4, "rows_already_ingested": 4,
        "patients_created": 0, "patients_matched": 3, "reviews_created": 0, "resources_written": 0,
    }  # fmt: skip
    assert len(_all(database, hospital, "Patient")) == 3
    assert len(_all(database, hospital, "Observation")) == 4


def test_small_chunks_give_the_same_result(database, hospital, tmp_path):
    report = ingest(_store(database), hospital.code, [gbk_csv(tmp_path)], chunk_rows=2)
    assert (report.rows_stored, report.rows_matched, report.rows_rejected, report.resources_written) == (3, 1, 4, 12)
    assert len(_all(database, hospital, "Encounter")) == 3


@pytest.mark.parametrize("cache", [0, 1, 200_000])
def test_encounters_found_again_across_chunks_whatever_the_cache(database, hospital, tmp_path, monkeypatch, cache):
    from xinglin.ingest import service

    monkeypatch.setattr(service, "ENCOUNTER_CACHE", cache)
    report = ingest(_store(database), hospital.code, [gbk_csv(tmp_path)], chunk_rows=1)
    assert (report.rows_stored, report.rows_matched, report.rows_rejected, report.resources_written) == (3, 1, 4, 12)
    assert len(_all(database, hospital, "Encounter")) == 3
    again = ingest(_store(database), hospital.code, [gbk_csv(tmp_path)], chunk_rows=1)
    assert again.resources_written == 0
    assert len(_all(database, hospital, "Encounter")) == 3


def test_missing_columns_and_bad_files_fail_before_writing(database, hospital, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    good = gbk_csv(tmp_path)
    with pytest.raises(BadRequest) as exc:
        ingest(_store(database), hospital.code, [good, bad])
    assert "missing required columns" in exc.value.en
    cut = tmp_path / "cut.csv"
    cut.write_text('姓名,诊断\n张三,"高血压\n', encoding="utf-8")
    with pytest.raises(SourceError):
        ingest(_store(database), hospital.code, [good, cut])
    with pytest.raises(SourceError):
        ingest(_store(database), hospital.code, [good], encoding="utf-8")
    assert _all(database, hospital, "Patient") == []


def test_xlsx_jsonl_and_hl7(database, hospital, tmp_path):
    store = _store(database)
    x = ingest(store, hospital.code, [xlsx_file(tmp_path)])
    assert (x.rows_read, x.rows_stored, x.rows_rejected) == (2, 2, 0)
    assert dict(x.resources_by_type) == {"Patient": 2, "Encounter": 2, "Condition": 1, "Observation": 3}
    (wang,) = _all(database, hospital, "Patient", [("identifier", f"urn:oid:2.16.156.10011.1.1|{ID_WANG}")])
    glu = _all(database, hospital, "Observation", [("patient", wang["id"]), ("code", "http://loinc.org|14749-6")])
    assert glu[0]["valueQuantity"]["value"] == 6.99  # 126 mg/dL
    (li,) = _all(database, hospital, "Patient", [("name", "Li Lei")])
    assert li["birthDate"] == "1988-08-08" and li["telecom"][0]["value"] == "13800000001"

    j = ingest(store, hospital.code, [jsonl_file(tmp_path)])
    assert (j.rows_read, j.rows_stored, j.rows_rejected) == (3, 2, 1)
    assert j.rejections[0].row == 2 and j.rejections[0].reason == "invalid_json"

    h = ingest(store, hospital.code, [hl7_file(tmp_path)])
    # ADT (matched by ID number to the xlsx patient), two OBX rows (matched), ADT^A03 rejected
    assert _counts(h) == {
        "rows_read": 4, "rows_stored": 0, "rows_matched": 3, "rows_rejected": 1, "rows_already_ingested": 0,
        "patients_created": 0, "patients_matched": 1, "reviews_created": 0, "resources_written": 5,
    }  # fmt: skip
    assert h.rejections[0].row == 3 and h.rejections[0].field == "MSH-9"
    (wang,) = _all(database, hospital, "Patient", [("identifier", f"urn:oid:2.16.156.10011.1.1|{ID_WANG}")])
    assert {"system": "https://xinglin.dev/ingest/source/feed", "value": "MRN001"} in wang["identifier"]
    glu = _all(database, hospital, "Observation", [("patient", wang["id"]), ("code", "http://loinc.org|14749-6")])
    assert sorted(o["valueQuantity"]["value"] for o in glu) == [6.99, 6.99]
    hl7_glu = next(o for o in glu if o.get("effectiveDateTime") == "2024-03-05T08:30:00+08:00")
    assert hl7_glu["interpretation"][0]["coding"][0]["code"] == "H"
    again = ingest(store, hospital.code, [hl7_file(tmp_path)])
    assert (again.rows_already_ingested, again.resources_written) == (3, 0)


def test_profile_yaml_round_trip_and_value_map(database, hospital, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("PNAME;SEXCODE;BIRTH\n赵一;A;05/03/1990\n钱二;B;bad\n", encoding="utf-8")
    profile = Profile.from_yaml(
        """
source: clinic-c
delimiter: ";"
columns:
  PNAME: Patient.name
  SEXCODE: {element: Patient.gender, value_map: {A: 男, B: 女}}
  BIRTH: {element: Patient.birthDate, date_formats: ["%d/%m/%Y"]}
"""
    )
    assert Profile.from_yaml(profile.to_yaml()) == profile
    report = ingest(_store(database), hospital.code, [path], profile=profile)
    assert (report.rows_stored, report.rows_rejected) == (2, 0)
    assert report.as_dict()["invalid_values"] == {"date_format": {"BIRTH": 1}}
    (zhao,) = _all(database, hospital, "Patient", [("name", "赵一")])
    assert (zhao["gender"], zhao["birthDate"]) == ("male", "1990-03-05")
    assert zhao["identifier"][0]["system"] == "https://xinglin.dev/ingest/source/clinic-c"


def test_bad_profile_is_a_clear_error():
    with pytest.raises(BadRequest) as exc:
        Profile.from_yaml("columns:\n  x: {element: Patient.shoeSize}\n")
    assert "unknown element" in exc.value.en


def test_report_html_and_json(database, hospital, tmp_path):
    report = ingest(_store(database), hospital.code, [gbk_csv(tmp_path)])
    report.write(tmp_path / "r.json")
    report.write(tmp_path / "r.html")
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["rows_read"] == data["rows_stored"] + data["rows_matched"] + data["rows_rejected"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 2 and "身份证号校验位错误" in html and '<td class="num">4</td>' in html


def test_row_the_store_refuses_is_rejected_and_the_chunk_retried(database, hospital, tmp_path, monkeypatch):
    from xinglin.ingest import service

    real = service._observation

    def broken(lab, *args):
        body = real(lab, *args)
        if lab.item == "肌酐":
            body["status"] = "not-a-status"  # the store's FHIR validation refuses it
        return body

    monkeypatch.setattr(service, "_observation", broken)
    report = ingest(_store(database), hospital.code, [gbk_csv(tmp_path)])
    assert (report.rows_read, report.rows_stored, report.rows_matched, report.rows_rejected) == (8, 3, 0, 5)
    assert (3, "fhir_invalid") in [(r.row, r.reason) for r in report.rejections]
    assert report.resources_written == 11
    assert len(_all(database, hospital, "Observation")) == 3
