"""Research exports: consent-only cohorts, de-identified, k-anonymous, recorded, reproducible, gated abroad."""

import csv
import json
import random

import polars as pl
import pytest

from xinglin.core.errors import BadRequest, Forbidden, NotFound
from xinglin.privacy.consent import grant_consent
from xinglin.security.principal import Principal, system_principal
from xinglin.share.residency import register_destination
from xinglin.share.service import export_dataset, reproduce_export
from xinglin.store.repository import Store

PROVINCES = [("上海市", "上海市"), ("浙江省", "杭州市"), ("浙江省", "宁波市"), ("广东省", "广州市")]


@pytest.fixture
def cohort(database, hospital):
    """40 hypertension patients, 30 of whom consent to research; plus 5 diabetics with consent."""
    store = Store(database.engine, database.settings)
    rnd = random.Random(7)
    ids = {"consenting": [], "refusing": [], "names": []}
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        for i in range(45):
            province, city = PROVINCES[i % 4]
            name = f"测试{i:02d}号"
            pid = repo.create(
                {
                    "resourceType": "Patient",
                    "name": [{"text": name}],
                    "gender": "male" if i % 2 else "female",
                    "birthDate": f"{1950 + rnd.randrange(40)}-0{1 + i % 9}-1{i % 9}",
                    "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": f"ID-{i:04d}"}],
                    "address": [{"state": province, "city": city, "line": [f"幸福路{i}号"]}],
                }
            ).resource.id
            code = "I10" if i < 40 else "E11.9"
            repo.create(
                {
                    "resourceType": "Condition",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
                }
            )
            repo.create(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "period": {"start": f"2024-0{1 + i % 9}-15T09:00:00+08:00"},
                }
            )
            repo.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "14749-6"}]},
                    "effectiveDateTime": "2024-03-05",
                    "valueQuantity": {"value": 5 + i / 10, "unit": "mmol/L"},
                }
            )
            if i < 30 or i >= 40:
                grant_consent(repo, pid, "research")
                ids["consenting"].append(pid)
            else:
                ids["refusing"].append(pid)
            ids["names"].append(name)
    return store, ids


def researcher(hospital) -> Principal:
    return Principal(
        tenant_id=hospital.id,
        tenant_code=hospital.code,
        username="dr-research",
        role="researcher",
        scopes=("user/*.read",),
    )


FIELDS = ["age_band", "sex", "region", "first_visit", "visits", "diagnoses", "lab:14749-6"]


def test_export_is_consented_deidentified_and_k_anonymous(cohort, hospital, tmp_path, client):
    store, ids = cohort
    record = export_dataset(store, researcher(hospital), "Condition?code=I10", FIELDS, k=5, out_dir=tmp_path)
    assert record.patients_in_cohort == 40
    assert record.patients_with_consent == 30
    assert record.rows + record.anonymity.rows_suppressed == 30
    assert record.rows >= 25
    folder = tmp_path / hospital.code / record.export_id
    text = (folder / "data.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == record.rows
    assert list(rows[0]) == ["pseudo_id", *FIELDS]
    # nothing identifying leaves: no names, ID numbers, street lines or real ids
    for needle in [*ids["names"], "ID-0001", "幸福路", *ids["consenting"], *ids["refusing"]]:
        assert needle not in text
    # every combination of quasi-identifiers is shared by at least k rows
    classes: dict[tuple, int] = {}
    for r in rows:
        key = (r["age_band"], r["sex"], r["region"], r["first_visit"])
        classes[key] = classes.get(key, 0) + 1
    assert min(classes.values()) >= 5
    assert {r["diagnoses"] for r in rows} == {"I10"}
    parquet = pl.read_parquet(folder / "data.parquet")
    assert parquet.height == record.rows
    assert parquet.schema["lab:14749-6"] == pl.Float64
    dictionary = json.loads((folder / "dictionary.json").read_text(encoding="utf-8"))
    assert dictionary["columns"]["age_band"]["generalised_to"] == record.anonymity.levels["age_band"]
    # recorded as a Task an admin can read
    task = client.get(f"/fhir/R4/Task/{record.export_id}", headers=hospital.headers("admin")).json()
    inputs = {i["type"]["text"]: i["valueString"] for i in task["input"]}
    assert inputs == {
        "cohort": "Condition?code=I10",
        "fields": ",".join(FIELDS),
        "k": "5",
        "as-of": record.as_of,
        "destination": "domestic",
    }
    assert task["requester"]["display"] == "researcher:dr-research"


def test_export_can_be_reproduced(cohort, hospital, tmp_path):
    store, _ = cohort
    first = export_dataset(store, researcher(hospital), "Condition?code=I10", FIELDS, k=5, out_dir=tmp_path)
    again = reproduce_export(store, researcher(hospital), first.export_id, out_dir=tmp_path)
    assert again.files == first.files
    other = export_dataset(store, researcher(hospital), "Condition?code=I10", FIELDS, k=5, out_dir=tmp_path)
    assert other.files["data.csv"] != first.files["data.csv"]  # a new export gets new pseudonyms


def test_withdrawn_consent_is_honoured_at_once(cohort, hospital, tmp_path):
    from xinglin.privacy.consent import withdraw_consent

    store, ids = cohort
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        for pid in ids["consenting"][:5]:
            withdraw_consent(repo, pid, "research")
    record = export_dataset(store, researcher(hospital), "Patient?gender=male,female", ["sex"], k=2, out_dir=tmp_path)
    assert record.patients_with_consent == 30


def test_who_may_export_and_bad_requests(cohort, hospital, tmp_path):
    store, _ = cohort
    physician = Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="doc", role="physician", scopes=("user/*.*",)
    )
    with pytest.raises(Forbidden):
        export_dataset(store, physician, "Condition?code=I10", ["sex"], out_dir=tmp_path)
    with pytest.raises(BadRequest) as e:
        export_dataset(store, researcher(hospital), "Condition?code=I10", ["name"], out_dir=tmp_path)
    assert e.value.element == "fields"
    with pytest.raises(BadRequest) as e:
        export_dataset(store, researcher(hospital), "Organization?name=x", ["sex"], out_dir=tmp_path)
    assert e.value.element == "cohort"
    with pytest.raises(NotFound):
        reproduce_export(store, researcher(hospital), "no-such-export", out_dir=tmp_path)


def test_cross_border_gate_names_what_is_missing(cohort, hospital, tmp_path):
    store, ids = cohort
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        register_destination(repo, "partner-sg", abroad=True)
        register_destination(repo, "partner-bj", abroad=False)
    args = dict(k=2, out_dir=tmp_path)
    assert (
        export_dataset(
            store, researcher(hospital), "Condition?code=E11.9", ["sex"], destination="partner-bj", **args
        ).rows
        == 5
    )
    with pytest.raises(Forbidden) as e:
        export_dataset(store, researcher(hospital), "Condition?code=E11.9", ["sex"], destination="partner-sg", **args)
    assert e.value.en == (
        "Export to partner-sg (abroad) refused: the tenant has recorded no legal basis (security "
        "assessment, standard contract or certification, with its reference); 5 of 5 patients have "
        "not given separate cross-border consent"
    )
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        register_destination(
            repo, "partner-sg", abroad=True, basis="standard-contract", basis_reference="沪网信备 2026-001"
        )
    with pytest.raises(Forbidden) as e:
        export_dataset(store, researcher(hospital), "Condition?code=E11.9", ["sex"], destination="partner-sg", **args)
    assert (
        e.value.en == "Export to partner-sg (abroad) refused: 5 of 5 patients have not given separate "
        "cross-border consent"
    )
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        for pid in ids["consenting"][-5:]:
            grant_consent(repo, pid, "cross-border")
    record = export_dataset(
        store, researcher(hospital), "Condition?code=E11.9", ["sex"], destination="partner-sg", **args
    )
    assert record.rows == 5
    with pytest.raises(NotFound):
        export_dataset(store, researcher(hospital), "Condition?code=E11.9", ["sex"], destination="nowhere", **args)


def test_export_over_http_and_download(cohort, hospital, client, app, tmp_path, monkeypatch):
    monkeypatch.setattr(app.state.settings, "export_dir", str(tmp_path))
    h = hospital.headers("researcher", username="dr-research")
    r = client.post(
        "/api/share/exports", json={"cohort": "Condition?code=I10", "fields": ["sex", "age_band"], "k": 5}, headers=h
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["patients_with_consent"] == 30
    csv_text = client.get(body["download"][0], headers=h)
    assert csv_text.status_code == 200
    assert csv_text.text.splitlines()[0] == "pseudo_id,sex,age_band"
    other = hospital.headers("researcher", username="someone-else")
    assert client.get(body["download"][0], headers=other).status_code == 403
    assert (
        client.post(
            "/api/share/exports",
            json={"cohort": "Condition?code=I10", "fields": ["sex"]},
            headers=hospital.headers("physician"),
        ).status_code
        == 403
    )


def test_share_export_command(cohort, hospital, database, tmp_path):
    import os
    import subprocess
    import sys

    from xinglin.tenancy import service as tenancy

    with database.engine.begin() as conn:
        tenancy.create_user(conn, hospital.code, "res-cli", "Research#2026", "researcher")
    env = {**os.environ, "XINGLIN_DATABASE_URL": database.url, "XINGLIN_SECRET_KEY": database.settings.secret_key}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "xinglin.cli",
            "share",
            "export",
            "--tenant",
            hospital.code,
            "--as",
            "res-cli",
            "--cohort",
            "Condition?code=I10",
            "--fields",
            "sex,region",
            "--k",
            "5",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "(队列 cohort 40, 同意 consented 30," in r.stdout
