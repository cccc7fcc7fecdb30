"""The audit chain: every access is recorded, and any alteration or removal is detected."""

import os
import subprocess
import sys
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from tests.conftest import make_hospital, patient_body
from xinglin.app import create_app
from xinglin.store import audit
from xinglin.store.models import audit_lane, audit_record

FHIR = "/fhir/R4"


@pytest.fixture
def busy(fresh_database):
    """A fresh database after some clinical work: creates, reads, searches, updates, deletes."""
    app = create_app(fresh_database.settings)
    client = TestClient(app)
    hosp = make_hospital(app, fresh_database)
    h = hosp.headers("physician", username="dr-li")
    for _ in range(6):
        p = client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).json()
        client.get(f"{FHIR}/Patient/{p['id']}", headers=h)
        client.get(f"{FHIR}/Patient?name=娜娜", headers=h)
        client.put(f"{FHIR}/Patient/{p['id']}", json={**p, "active": True}, headers=h)
    client.delete(f"{FHIR}/Patient/{p['id']}", headers=h)
    return fresh_database, client, hosp, p


def _cli_verify(db) -> subprocess.CompletedProcess:
    env = {**os.environ, "XINGLIN_DATABASE_URL": db.url}
    return subprocess.run(
        [sys.executable, "-m", "xinglin.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_action_is_recorded(busy):
    db, client, hosp, last = busy
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(audit_record.c.action, func.count())
            .where(audit_record.c.tenant_id == hosp.id)
            .group_by(audit_record.c.action)
        ).all()
    assert dict(rows) == {
        "create": 7,  # 6 patients + the tenant itself
        "read": 6,
        "search": 6,
        "update": 6,
        "delete": 1,
    }
    events = client.get(f"{FHIR}/AuditEvent?entity=Patient/{last['id']}", headers=hosp.headers("admin")).json()
    actions = sorted(e["resource"]["subtype"][0]["code"] for e in events["entry"])
    assert actions == ["create", "delete", "read", "update"]
    event = events["entry"][0]["resource"]
    assert event["agent"][0]["who"]["display"] == "physician:dr-li"
    assert event["agent"][0]["network"]["address"] == "testclient"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"


def test_a_read_record_names_the_reader_and_the_version_read(busy):
    db, _, _, last = busy
    with db.engine.connect() as conn:
        reads = conn.execute(
            select(audit_record.c.principal, audit_record.c.resource_id, audit_record.c.version_id)
            .where(audit_record.c.action == "read")
            .order_by(audit_record.c.recorded_at)
        ).all()
    assert len(reads) == 6
    assert {(r.principal, r.version_id) for r in reads} == {("physician:dr-li", 1)}  # each was read before its update
    assert reads[-1].resource_id == last["id"]


def test_reads_of_deleted_and_unknown_resources_are_audited(busy):
    db, client, hosp, last = busy
    h = hosp.headers("physician", username="dr-li")
    assert client.get(f"{FHIR}/Patient/{last['id']}", headers=h).status_code == 410
    assert client.get(f"{FHIR}/Patient/no-such-patient", headers=h).status_code == 404
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(audit_record.c.resource_id, audit_record.c.version_id, audit_record.c.outcome, audit_record.c.detail)
            .where(audit_record.c.outcome == "failed")
            .order_by(audit_record.c.recorded_at)
        ).all()
        report = audit.verify(conn)
    # attempts that fail are audited too, though their unit of work is rolled back; the deletion is version 3
    assert [tuple(r) for r in rows] == [
        (last["id"], 3, "failed", f"Patient/{last['id']} has been deleted"),
        ("no-such-patient", None, "failed", "Patient/no-such-patient was not found"),
    ]
    assert report.intact and report.records == 28


def test_search_audit_records_parameter_names_not_values(busy):
    db = busy[0]
    with db.engine.connect() as conn:
        details = set(conn.execute(select(audit_record.c.detail).where(audit_record.c.action == "search")).scalars())
    assert details == {"name"}


def test_intact_chain_verifies(busy):
    db = busy[0]
    with db.engine.connect() as conn:
        report = audit.verify(conn)
    assert report.intact, report.problems
    assert report.records == 26  # 25 clinical actions + the tenant creation
    result = _cli_verify(db)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact: 26 records" in result.stdout


def _busiest_lane(db) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(audit_lane.c.lane).order_by(audit_lane.c.seq.desc()).limit(1)).scalar_one()


@pytest.mark.parametrize("tampering", ["alter", "delete-middle", "delete-last", "rehash"])
def test_tampering_is_detected(busy, tampering):
    db = busy[0]
    lane = _busiest_lane(db)
    with db.engine.begin() as conn:
        if tampering == "alter":
            conn.execute(
                update(audit_record)
                .where(audit_record.c.lane == lane, audit_record.c.seq == 2)
                .values(principal="physician:someone-else")
            )
        elif tampering == "delete-middle":
            conn.execute(delete(audit_record).where(audit_record.c.lane == lane, audit_record.c.seq == 2))
        elif tampering == "delete-last":
            last = conn.execute(select(audit_lane.c.seq).where(audit_lane.c.lane == lane)).scalar_one()
            conn.execute(delete(audit_record).where(audit_record.c.lane == lane, audit_record.c.seq == last))
        else:  # alter a record and recompute its own hash: the next record no longer links to it
            row = conn.execute(select(audit_record).where(audit_record.c.lane == lane, audit_record.c.seq == 2)).one()
            changed = {**row._asdict(), "action": "export"}
            conn.execute(
                update(audit_record)
                .where(audit_record.c.lane == lane, audit_record.c.seq == 2)
                .values(action="export", hash=audit.record_hash(changed))
            )
    result = _cli_verify(db)
    assert result.returncode == 1
    expected = {
        "alter": f"lane {lane} record 2: content was altered",
        "delete-middle": f"lane {lane} record 2: missing (next found is 3)",
        "delete-last": f"lane {lane} record",
        "rehash": f"lane {lane} record 3: does not link to the record before it",
    }[tampering]
    assert expected in result.stderr.replace("\n", " ")


def test_concurrent_writers_keep_every_lane_intact(fresh_database):
    app = create_app(fresh_database.settings)
    client = TestClient(app)
    hosp = make_hospital(app, fresh_database)
    h = hosp.headers("physician")

    def work():
        for _ in range(15):
            assert client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).status_code == 201

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with fresh_database.engine.connect() as conn:
        report = audit.verify(conn)
        used = conn.execute(select(func.count()).select_from(audit_lane).where(audit_lane.c.seq > 0)).scalar_one()
    assert report.intact, report.problems
    assert report.records == 91  # 90 creates + the tenant
    if fresh_database.backend == "postgresql":
        assert used > 1  # concurrent transactions spread over lanes instead of queueing on one


def test_audit_event_search_parameters(busy):
    _, client, hosp, last = busy
    h = hosp.headers("admin")

    def search(query: str):
        return client.get(f"{FHIR}/AuditEvent?{query}", headers=h)

    def codes(query: str) -> list[str]:
        bundle = search(query).json()
        return sorted(e["resource"]["subtype"][0]["code"] for e in bundle["entry"])

    assert codes(f"entity=Patient/{last['id']}&subtype=read") == ["read"]
    assert codes(f"entity=Patient/{last['id']}&action=U") == ["update"]
    assert search("subtype=update").json()["total"] == 6
    assert search("outcome=0&subtype=delete").json()["total"] == 1
    assert search("outcome=4").json()["total"] == 0
    # six patients and the tenant itself
    assert search("date=ge2000-01-01&date=lt2100-01-01&subtype=create").json()["total"] == 7
    assert search("date=lt2000-01-01").json()["total"] == 0
    assert search("date=gt2100").json()["total"] == 0
    assert len(search("_count=2&subtype=read").json()["entry"]) == 2
    for query, element, message in [
        ("_count=many", "_count", "_count must be a non-negative integer"),
        ("_offset=-1", "_offset", "_offset must be a non-negative integer"),
        ("date=yesterday", "date", "date 'yesterday' is not a valid date"),
        ("outcome=9", "outcome", "outcome '9' is not a valid code"),
        ("colour=red", "colour", "AuditEvent has no search parameter 'colour'"),
    ]:
        r = search(query)
        assert r.status_code == 400, query
        issue = r.json()["issue"][0]
        assert (issue["expression"], issue["diagnostics"]) == ([element], message)
    lenient = client.get(f"{FHIR}/AuditEvent?colour=red&subtype=delete", headers={**h, "Prefer": "handling=lenient"})
    assert lenient.json()["total"] == 1
