"""Slots from weekly templates; booking, cancelling, rescheduling; a slot is never booked twice."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest

from tests.conftest import patient_body
from xinglin.core.errors import BadRequest
from xinglin.scheduling import service
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store

FHIR = "/fhir/R4"


@pytest.fixture
def clinic(client, hospital, database):
    """A practitioner with a schedule and two weeks of Monday/Wednesday morning slots."""
    h = hospital.headers("admin")
    doc = client.post(
        f"{FHIR}/Practitioner", json={"resourceType": "Practitioner", "name": [{"text": "李医生"}]}, headers=h
    ).json()
    schedule = client.post(
        f"{FHIR}/Schedule",
        json={
            "resourceType": "Schedule",
            "actor": [{"reference": f"Practitioner/{doc['id']}"}],
            "specialty": [{"coding": [{"system": "https://xinglin.dev/CodeSystem/zlkm", "code": "03.04"}]}],
        },
        headers=h,
    ).json()
    store = Store(database.engine, database.settings)
    template = service.parse_template({"mon": ["08:00-12:00"], "wed": ["14:00-15:30"]}, slot_minutes=30)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        # 2026-11-30 is a Monday: two Mondays (8 slots each) and two Wednesdays (3 each)
        slots = service.generate_slots(repo, schedule["id"], date(2026, 11, 30), date(2026, 12, 13), template)
    patients = [client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()["id"] for _ in range(2)]
    return {
        "practitioner": doc["id"],
        "schedule": schedule["id"],
        "slots": [s.as_dict() for s in slots],
        "patients": patients,
    }


def _appointment(slot_id: str, patient_id: str, status: str = "booked") -> dict:
    return {
        "resourceType": "Appointment",
        "status": status,
        "slot": [{"reference": f"Slot/{slot_id}"}],
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }


def test_slots_follow_the_weekly_template(clinic):
    slots = clinic["slots"]
    assert len(slots) == 22
    starts = [s["start"] for s in slots]
    assert starts[:2] == ["2026-11-30T08:00:00+08:00", "2026-11-30T08:30:00+08:00"]
    assert "2026-12-02T15:00:00+08:00" in starts
    assert "2026-12-02T15:30:00+08:00" not in starts  # a slot must end within its session
    assert {s["status"] for s in slots} == {"free"}
    assert slots[0]["specialty"][0]["coding"][0]["code"] == "03.04"


@pytest.mark.parametrize(
    ("spec", "element"),
    [
        ({"funday": ["08:00-12:00"]}, "template.funday"),
        ({"mon": ["8点-12点"]}, "template.mon"),
        ({"mon": ["12:00-08:00"]}, "template.mon"),
    ],
)
def test_bad_templates(spec, element):
    with pytest.raises(BadRequest) as info:
        service.parse_template(spec)
    assert info.value.element == element


def test_booking_marks_the_slot_busy_and_a_second_booking_is_409(client, hospital, clinic):
    slot = clinic["slots"][0]["id"]
    alice, bob = clinic["patients"]
    r = client.post(
        f"{FHIR}/Appointment", json=_appointment(slot, alice), headers=hospital.headers("patient", patient_id=alice)
    )
    assert r.status_code == 201
    assert client.get(f"{FHIR}/Slot/{slot}", headers=hospital.headers()).json()["status"] == "busy"
    again = client.post(
        f"{FHIR}/Appointment", json=_appointment(slot, bob), headers=hospital.headers("patient", patient_id=bob)
    )
    assert again.status_code == 409
    issue = again.json()["issue"][0]
    assert issue["diagnostics"] == f"Slot/{slot} is already booked; choose another time"
    assert issue["details"]["text"] == "该号源已被预约，请选择其他时间"
    assert issue["expression"] == ["Appointment.slot"]
    # the free-slot search no longer offers it
    free = client.get(f"{FHIR}/Slot?schedule={clinic['schedule']}&status=free", headers=hospital.headers()).json()
    assert free["total"] == 21


def test_cancel_frees_and_reschedule_moves(client, hospital, clinic, database):
    first, second = clinic["slots"][0]["id"], clinic["slots"][1]["id"]
    alice = clinic["patients"][0]
    store = Store(database.engine, database.settings)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        appt = service.book_slot(repo, first, alice, practitioner_id=clinic["practitioner"])
        service.reschedule(repo, appt.id, second)
    h = hospital.headers()
    assert client.get(f"{FHIR}/Slot/{first}", headers=h).json()["status"] == "free"
    assert client.get(f"{FHIR}/Slot/{second}", headers=h).json()["status"] == "busy"
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        cancelled = service.cancel_appointment(repo, appt.id, reason="患者临时有事").as_dict()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["text"] == "患者临时有事"
    assert client.get(f"{FHIR}/Slot/{second}", headers=h).json()["status"] == "free"
    # the slot history shows who changed it, on whose behalf
    events = client.get(f"{FHIR}/AuditEvent?entity=Slot/{second}", headers=hospital.headers("admin")).json()
    agents = {e["resource"]["agent"][0]["who"]["display"] for e in events["entry"]}
    assert "system:slot booking for system:system" in agents


def test_deleting_an_appointment_frees_its_slot(client, hospital, clinic):
    slot = clinic["slots"][2]["id"]
    h = hospital.headers("registrar")
    appt = client.post(f"{FHIR}/Appointment", json=_appointment(slot, clinic["patients"][0]), headers=h).json()
    assert client.delete(f"{FHIR}/Appointment/{appt['id']}", headers=h).status_code == 204
    assert client.get(f"{FHIR}/Slot/{slot}", headers=h).json()["status"] == "free"


def test_appointment_on_a_missing_slot_is_422(client, hospital, clinic):
    r = client.post(
        f"{FHIR}/Appointment",
        json=_appointment("no-such-slot", clinic["patients"][0]),
        headers=hospital.headers("registrar"),
    )
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Appointment.slot"]


def test_transaction_booking_one_slot_twice_rolls_back(client, hospital, clinic):
    slot = clinic["slots"][3]["id"]
    alice, bob = clinic["patients"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _appointment(slot, alice), "request": {"method": "POST", "url": "Appointment"}},
            {"resource": _appointment(slot, bob), "request": {"method": "POST", "url": "Appointment"}},
        ],
    }
    r = client.post(FHIR, json=bundle, headers=hospital.headers("registrar"))
    assert r.status_code == 409
    assert client.get(f"{FHIR}/Slot/{slot}", headers=hospital.headers()).json()["status"] == "free"
    assert client.get(f"{FHIR}/Appointment?slot={slot}", headers=hospital.headers()).json()["total"] == 0


def test_a_patient_cannot_book_for_someone_else(client, hospital, clinic):
    alice, bob = clinic["patients"]
    r = client.post(
        f"{FHIR}/Appointment",
        json=_appointment(clinic["slots"][4]["id"], bob),
        headers=hospital.headers("patient", patient_id=alice),
    )
    assert r.status_code == 403


@pytest.mark.slow
def test_hundred_simultaneous_bookings_of_one_slot(live_server, hospital, clinic):
    slot = clinic["slots"][5]["id"]
    patients = clinic["patients"]
    headers = [{"Authorization": f"Bearer {hospital.token('patient', patient_id=patients[i % 2])}"} for i in range(100)]

    def attempt(i: int) -> int:
        with httpx.Client(base_url=live_server, timeout=120) as http:
            r = http.post(f"{FHIR}/Appointment", json=_appointment(slot, patients[i % 2]), headers=headers[i])
            return r.status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(attempt, range(100)))
    assert statuses.count(201) == 1, sorted(statuses)
    assert statuses.count(409) == 99
    with httpx.Client(base_url=live_server) as http:
        booked = http.get(
            f"{FHIR}/Appointment?slot={slot}", headers={"Authorization": f"Bearer {hospital.token('admin')}"}
        )
    assert booked.json()["total"] == 1
