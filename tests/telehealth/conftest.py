"""A hospital with a physician, a pharmacist and a patient who saw the physician in person before.

The telehealth router is mounted on the shared test app here until app.py includes it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import pytest
from tests.conftest import patient_body

import xinglin.telehealth.rules  # noqa: F401  (registers the store rules, as store/hooks.py PLUGINS will)
from xinglin.privacy import consent
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal
from xinglin.store.repository import Store
from xinglin.telehealth import api as telehealth_api
from xinglin.tenancy import service as tenancy

FHIR = "/fhir/R4"
PASSWORD = "correct-horse-battery"
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d4944415478da6364f8ffbf1e0005fe02fea70d3ee40000000049454e44ae426082"
    )
).decode()


@pytest.fixture(autouse=True)
def telehealth_routes(app):
    if not any(getattr(r, "path", "").startswith("/api/consults") for r in app.router.routes):
        app.include_router(telehealth_api.router)
    return app


@dataclass
class World:
    client: object
    hospital: object
    store: Store
    patient: str
    practitioner: str
    visit: str  # an earlier, finished in-person Encounter
    condition: str
    physician_name: str

    # --- headers --------------------------------------------------------------------------------------
    def patient_headers(self, patient: str | None = None) -> dict:
        return self.hospital.headers("patient", patient_id=patient or self.patient)

    def physician(self, username: str | None = None) -> dict:
        return self.hospital.headers("physician", username=username or self.physician_name)

    def pharmacist(self) -> dict:
        return self.hospital.headers("pharmacist", username="pharm-wang")

    # --- set-up helpers -------------------------------------------------------------------------------
    def new_patient(self, *, consented: bool = True, **extra) -> str:
        pid = self.client.post(f"{FHIR}/Patient", json=patient_body(**extra), headers=self.hospital.headers()).json()[
            "id"
        ]
        if consented:
            self.consent(pid)
        return pid

    def consent(self, pid: str, purpose: str = "online-consultation", guardian: dict | None = None) -> None:
        principal = Principal(
            tenant_id=self.hospital.id,
            tenant_code=self.hospital.code,
            username="patient-user",
            role="patient",
            patient_id=pid,
            scopes=ROLE_SCOPES["patient"],
        )
        with self.store.unit_of_work(principal) as repo:
            consent.grant_consent(repo, pid, purpose, guardian=guardian)

    def in_person_visit(self, pid: str, *, cls: str = "AMB", status: str = "finished") -> str:
        body = {
            "resourceType": "Encounter",
            "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": "2025-03-01T09:00:00+08:00", "end": "2025-03-01T09:20:00+08:00"},
        }
        return self.client.post(f"{FHIR}/Encounter", json=body, headers=self.hospital.headers("physician")).json()["id"]

    def request(self, *, patient: str | None = None, expect: int | None = 201, **body) -> dict:
        pid = patient or self.patient
        payload = {"department": "03.04", "follow_up_of": f"Encounter/{self.visit}", **body}
        r = self.client.post("/api/consults", json=payload, headers=self.patient_headers(pid))
        if expect is not None:
            assert r.status_code == expect, r.text
        return r.json()

    def confirm(self, consult_id: str, username: str | None = None, password: str = PASSWORD):
        return self.client.post(
            f"/api/consults/{consult_id}/confirm", json={"password": password}, headers=self.physician(username)
        )

    def accept(self, consult_id: str, username: str | None = None) -> dict:
        assert self.confirm(consult_id, username).status_code == 200
        r = self.client.post(f"/api/consults/{consult_id}/accept", headers=self.physician(username))
        assert r.status_code == 200, r.text
        return r.json()

    def in_progress(self) -> str:
        cid = self.request()["id"]
        self.accept(cid)
        return cid

    def prescribe(self, consult_id: str, expect: int | None = 201, headers: dict | None = None, **body) -> dict:
        payload = {
            "medication": {
                "text": "氨氯地平片 5mg",
                "coding": [{"system": "http://www.whocc.no/atc", "code": "C08CA01", "display": "amlodipine"}],
            },
            "dosage": "每日一次，每次一片，口服",
            "quantity": {"value": 28, "unit": "片"},
            **body,
        }
        r = self.client.post(
            f"/api/consults/{consult_id}/prescriptions", json=payload, headers=headers or self.physician()
        )
        if expect is not None:
            assert r.status_code == expect, r.text
        return r.json()


def add_physician(database, hospital, client, username: str) -> str:
    """A physician account linked to a real-name Practitioner; returns the Practitioner id."""
    practitioner = client.post(
        f"{FHIR}/Practitioner",
        json={"resourceType": "Practitioner", "name": [{"text": "李医生"}]},
        headers=hospital.headers("admin"),
    ).json()["id"]
    with database.engine.begin() as conn:
        tenancy.create_user(conn, hospital.code, username, PASSWORD, "physician", practitioner_id=practitioner)
    return practitioner


@pytest.fixture
def world(client, hospital, database) -> World:
    store = Store(database.engine, database.settings)
    name = "dr-" + secrets.token_hex(3)
    practitioner = add_physician(database, hospital, client, name)
    w = World(client, hospital, store, "", practitioner, "", "", name)
    w.patient = w.new_patient()
    w.visit = w.in_person_visit(w.patient)
    w.condition = client.post(
        f"{FHIR}/Condition",
        json={
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{w.patient}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}], "text": "高血压"},
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
        },
        headers=hospital.headers("physician"),
    ).json()["id"]
    return w


def error(response) -> tuple[int, str, str]:
    """(status, Chinese text, English text) of an OperationOutcome response."""
    issue = response.json()["issue"][0]
    return response.status_code, issue["details"]["text"], issue["diagnostics"]
