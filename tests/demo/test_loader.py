"""The demo hospital loader: counts, synthetic identity numbers, idempotence, sign-in and the audit chain."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta

import pytest
from rich.console import Console

from xinglin.core.config import Settings
from xinglin.demo.loader import load_demo
from xinglin.security.principal import system_principal
from xinglin.store import audit
from xinglin.store.db import make_engine
from xinglin.store.migrate import upgrade
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy

PATIENTS = 20
ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"
MRN_SYSTEM = "https://xinglin.dev/demo/mrn"
ZLKM = "https://xinglin.dev/CodeSystem/zlkm"
TAG = "https://xinglin.dev/tags|synthetic"
TYPES = (
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Slot",
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
)


def gb11643_valid(number: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(number[:17], weights, strict=True))
    return "10X98765432"[total % 11] == number[17]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    settings = Settings(database_url=url)
    engine = make_engine(url)
    upgrade(engine, settings)
    out = io.StringIO()
    summary = load_demo(engine, settings, "demo", patients=PATIENTS, seed=7, console=Console(file=out, width=120))
    with engine.begin() as conn:
        tenant = tenancy.get_tenant(conn, "demo")
    store = Store(engine, settings)
    yield engine, settings, store, tenant, summary, out.getvalue()
    engine.dispose()


def _repo(store: Store, tenant):
    return store.unit_of_work(system_principal(tenant.id, tenant.code, name="test"))


def _count(store, tenant, rtype: str, params=()) -> int:
    with _repo(store, tenant) as repo:
        return repo.search(rtype, [*params, ("_summary", "count")]).total


def _all(store, tenant, rtype: str, params=()) -> list[dict]:
    with _repo(store, tenant) as repo:
        return [m.as_dict() for m in repo.search(rtype, [*params, ("_count", "1000")]).matches]


def test_tenant_created_with_demo_name(demo):
    _, _, _, tenant, summary, _ = demo
    assert tenant.name_zh == "杏林示范医院"
    assert tenant.name_en == "Xinglin Demo Hospital"
    assert summary.loaded


def test_exact_counts(demo):
    _, _, store, tenant, summary, _ = demo
    expected = {
        "Organization": 21,  # the hospital and 20 departments
        "Location": 20,
        "Practitioner": 30,
        "PractitionerRole": 30,
        "Schedule": 30,
        "Slot": 30 * 10 * 14,  # 14 days hold 10 weekdays; 8 morning + 6 afternoon half-hours
        "Patient": PATIENTS,
    }
    for rtype, n in expected.items():
        assert summary.counts[rtype] == n, rtype
        assert _count(store, tenant, rtype) == n, rtype
    for rtype in ("Encounter", "Condition", "Observation", "MedicationRequest"):
        assert summary.counts[rtype] == _count(store, tenant, rtype) > 0, rtype
    assert PATIENTS <= summary.counts["Encounter"] <= 4 * PATIENTS
    assert _count(store, tenant, "Organization", [("identifier", "https://xinglin.dev/demo|hospital")]) == 1


def test_every_resource_is_tagged_synthetic(demo):
    _, _, store, tenant, summary, _ = demo
    for rtype in TYPES:
        assert _count(store, tenant, rtype, [("_tag", TAG)]) == summary.counts[rtype], rtype


def test_departments_are_coded(demo):
    _, _, store, tenant, summary, _ = demo
    depts = _all(store, tenant, "Organization", [("partof", f"Organization/{summary.hospital_id}")])
    codes = {d["type"][0]["coding"][0]["code"] for d in depts if d["type"][0]["coding"][0]["system"] == ZLKM}
    assert len(depts) == 20
    required = {"03.01", "03.02", "03.03", "03.04", "03.05", "03.06", "03.07", "04.01", "04.03"}
    assert required | {"05.01", "05.02", "07", "10", "11", "12", "13", "15", "20", "50"} <= codes
    cardiology = next(d for d in depts if d["type"][0]["coding"][0]["code"] == "03.04")
    assert cardiology["type"][0]["coding"][0]["display"] == "心血管内科"


def test_patients_have_valid_identity(demo):
    _, _, store, tenant, _, _ = demo
    patients = _all(store, tenant, "Patient")
    assert len(patients) == PATIENTS
    numbers = set()
    for p in patients:
        ids = {i["system"]: i["value"] for i in p["identifier"]}
        number = ids[ID_SYSTEM]
        assert gb11643_valid(number), number
        assert number[6:14] == p["birthDate"].replace("-", "")
        assert (int(number[16]) % 2 == 1) == (p["gender"] == "male")
        assert re.fullmatch(r"XL\d{8}", ids[MRN_SYSTEM])
        numbers.add(number)
        name = p["name"][0]
        assert name["text"] == name["family"] + "".join(name["given"])
        phone = next(t["value"] for t in p["telecom"] if t["system"] == "phone")
        assert re.fullmatch(r"1[3-9]\d{9}", phone)
        address = p["address"][0]
        assert address["state"] and address["city"] and address["district"] and address["country"] == "CN"
        assert date.fromisoformat(p["birthDate"]) <= date.today()
    assert len(numbers) == PATIENTS


def test_clinical_records(demo):
    _, _, store, tenant, _, _ = demo
    two_years_ago = datetime.now().astimezone() - timedelta(days=731)
    for enc in _all(store, tenant, "Encounter"):
        assert enc["status"] == "finished"
        assert enc["class"]["code"] == "AMB"
        assert enc["serviceProvider"]["reference"].startswith("Organization/")
        assert datetime.fromisoformat(enc["period"]["start"]) > two_years_ago
    conditions = _all(store, tenant, "Condition")
    assert all(c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10" for c in conditions)
    assert {c["clinicalStatus"]["coding"][0]["code"] for c in conditions} <= {"active", "resolved"}
    observations = _all(store, tenant, "Observation")
    categories = {o["category"][0]["coding"][0]["code"] for o in observations}
    assert categories == {"vital-signs", "laboratory"}
    for o in observations:
        quantities = [o] if "valueQuantity" in o else o["component"]
        for q in quantities:
            assert q["valueQuantity"]["system"] == "http://unitsofmeasure.org"
            assert q["interpretation"][0]["coding"][0]["code"] in {"H", "L", "N"}
            assert q["referenceRange"][0]["low"]["value"] < q["referenceRange"][0]["high"]["value"]
    meds = _all(store, tenant, "MedicationRequest")
    assert {m["status"] for m in meds} <= {"active", "completed"}
    assert all(m["intent"] == "order" and m["requester"]["reference"].startswith("Practitioner/") for m in meds)
    assert all(m["encounter"]["reference"].startswith("Encounter/") for m in meds)


def test_slots_are_weekday_clinic_hours(demo):
    _, _, store, tenant, _, _ = demo
    with _repo(store, tenant) as repo:
        page = repo.search("Slot", [("_count", "1000"), ("status", "free")])
        slots = [m.as_dict() for m in page.matches]
    assert slots
    for slot in slots:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert slot["start"].endswith("+08:00")
        assert end - start == timedelta(minutes=30)
        assert start.weekday() < 5
        assert 8 <= start.hour < 12 or 14 <= start.hour < 17


def test_second_run_loads_nothing(demo):
    engine, settings, store, tenant, first, _ = demo
    before = {rtype: _count(store, tenant, rtype) for rtype in TYPES}
    out = io.StringIO()
    again = load_demo(engine, settings, "demo", patients=PATIENTS, seed=7, console=Console(file=out, width=120))
    assert not again.loaded
    assert again.counts == {}
    assert {rtype: _count(store, tenant, rtype) for rtype in TYPES} == before
    assert again.patient_id == first.patient_id
    assert again.doctor_practitioner_id == first.doctor_practitioner_id
    assert "Doctor#2026" in out.getvalue()


def test_login_details_printed(demo):
    *_, output = demo
    for text in ("admin", "Admin#2026", "his-client", "HisClient#2026", "/fhir/R4/metadata", "/auth/token"):
        assert text in output


def test_users_can_sign_in(demo):
    engine, settings, store, tenant, summary, _ = demo
    doctor = tenancy.authenticate(engine, settings, "demo", "doctor", "Doctor#2026")
    assert doctor.role == "physician"
    assert doctor.practitioner_id == summary.doctor_practitioner_id
    roles = _all(store, tenant, "PractitionerRole", [("practitioner", f"Practitioner/{doctor.practitioner_id}")])
    assert roles[0]["specialty"][0]["coding"][0]["code"] == "03.04"

    patient = tenancy.authenticate(engine, settings, "demo", "patient", "Patient#2026")
    assert patient.role == "patient"
    assert patient.patient_id == summary.patient_id
    with store.unit_of_work(patient) as repo:
        own = repo.read("Patient", patient.patient_id).as_dict()
        mrn = next(i["value"] for i in own["identifier"] if i["system"] == MRN_SYSTEM)
        assert mrn == "XL00000001"
        assert repo.search("Encounter", [("_summary", "count")]).total >= 1

    client = tenancy.authenticate(engine, settings, "demo", "his-client", "HisClient#2026", clients_only=True)
    assert client.role == "integration"
    for cred in summary.credentials:
        if cred.role != "integration":
            assert tenancy.authenticate(engine, settings, "demo", cred.username, cred.password).role == cred.role


def test_other_tenant_is_separate_and_resumable(demo):
    engine, settings, store, _, _, _ = demo
    first = load_demo(engine, settings, "ward-b", patients=3, seed=7)
    with engine.begin() as conn:
        other = tenancy.get_tenant(conn, "ward-b")
    assert other.name_zh == "杏林示范医院（ward-b）"
    assert first.counts["Patient"] == 3 and first.counts["Practitioner"] == 30
    # a run interrupted after 3 of 5 patients finishes the job; the directory is not loaded twice
    more = load_demo(engine, settings, "ward-b", patients=5, seed=7)
    assert more.counts == {"Patient": 2, **{k: v for k, v in more.counts.items() if k != "Patient"}}
    assert set(more.counts) <= {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest"}
    assert _count(store, other, "Patient") == 5
    assert _count(store, other, "Practitioner") == 30
    mrns = sorted(
        next(i["value"] for i in p["identifier"] if i["system"] == MRN_SYSTEM) for p in _all(store, other, "Patient")
    )
    assert mrns == [f"XL{i:08d}" for i in range(1, 6)]


def test_audit_chain_verifies(demo):
    engine, *_ = demo
    with engine.connect() as conn:
        report = audit.verify(conn)
    assert report.intact, report.problems
    assert report.records > 4000
