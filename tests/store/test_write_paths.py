"""Store.create_async / update_async / delete_async: on PostgreSQL the plain case is one audited statement over
the asynchronous pool; every other case (and SQLite) takes the unit of work. Both leave the same rows."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from tests.conftest import patient_body
from xinglin.core.errors import BadRequest, Forbidden, InvalidResource, NotFound, PreconditionFailed
from xinglin.security.principal import Principal
from xinglin.store import audit
from xinglin.store.models import INDEX_TABLES, audit_record, resource_version
from xinglin.store.repository import Store


def _doctor(hospital) -> Principal:
    return Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="dr-w", role="physician", scopes=("user/*.*",)
    )


def _run(store: Store, calls):
    """Runs `calls(store)` on an event loop of its own (in a thread of its own) with the store's pool open."""

    async def main():
        await store.open_async_pool()
        try:
            return await calls(store)
        finally:
            await store.close_async_pool()

    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, main()).result()


def _audited(database, tenant_id: int, rid: str) -> list[tuple]:
    with database.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(audit_record.c.action, audit_record.c.version_id, audit_record.c.outcome)
                .where(audit_record.c.tenant_id == tenant_id, audit_record.c.resource_id == rid)
                .order_by(audit_record.c.recorded_at, audit_record.c.lane, audit_record.c.seq)
            )
        ]


def test_create_update_delete_leave_versions_index_and_audit(database, hospital, monkeypatch):
    store = Store(database.engine, database.settings)
    doctor = _doctor(hospital)
    if database.engine.dialect.name == "postgresql":
        # the plain case must not need a unit of work at all
        def no_unit_of_work(principal):
            raise AssertionError("the one-statement path was not taken")

        monkeypatch.setattr(store, "unit_of_work", no_unit_of_work)

    async def calls(store):
        created = await store.create_async(doctor, "Patient", patient_body())
        rid = created.resource.id
        body = created.resource.as_dict() | {"gender": "male", "name": [{"text": "司马光"}]}
        updated = await store.update_async(doctor, "Patient", rid, body, if_match=1)
        deleted = await store.delete_async(doctor, "Patient", rid)
        return created, updated, deleted

    created, updated, deleted = _run(store, calls)
    monkeypatch.undo()
    rid = created.resource.id
    assert created.created and (created.resource.version_id, created.resource.pk is not None) == (1, True)
    assert updated.resource.as_dict()["meta"]["versionId"] == "2"
    assert (updated.resource.version_id, updated.resource.as_dict()["gender"]) == (2, "male")
    assert (deleted.version_id, deleted.deleted) == (3, True)
    with database.engine.connect() as conn:
        versions = conn.execute(
            select(resource_version.c.version_id, resource_version.c.method, resource_version.c.content.is_(None))
            .where(resource_version.c.id == rid)
            .order_by(resource_version.c.version_id)
        ).all()
        assert [tuple(v) for v in versions] == [(1, "POST", False), (2, "PUT", False), (3, "DELETE", True)]
        # a deleted resource keeps no index rows
        pk = created.resource.pk
        assert [
            conn.execute(select(func.count()).where(t.c.resource_pk == pk)).scalar_one() for t in INDEX_TABLES.values()
        ] == [0] * len(INDEX_TABLES)
        assert audit.verify(conn).intact
    assert _audited(database, hospital.id, rid) == [
        ("create", 1, "success"),
        ("update", 2, "success"),
        ("delete", 3, "success"),
    ]


def test_updated_index_rows_replace_the_old_ones(database, hospital):
    store = Store(database.engine, database.settings)
    doctor = _doctor(hospital)

    async def calls(store):
        created = await store.create_async(doctor, "Patient", patient_body())
        body = created.resource.as_dict() | {"name": [{"text": "诸葛亮", "family": "诸葛", "given": ["亮"]}]}
        await store.update_async(doctor, "Patient", created.resource.id, body, if_match=1)
        return created.resource.id

    rid = _run(store, calls)
    with store.unit_of_work(doctor) as repo:
        assert [m.id for m in repo.search("Patient", [("name", "诸葛")]).matches] == [rid]
        assert rid not in [m.id for m in repo.search("Patient", [("name", "欧阳")]).matches]


def test_cases_the_statement_does_not_take_end_as_the_unit_of_work_decides(database, hospital):
    store = Store(database.engine, database.settings)
    doctor = _doctor(hospital)
    patient = Principal(
        tenant_id=hospital.id,
        tenant_code=hospital.code,
        username="pt-w",
        role="patient",
        scopes=("patient/*.*",),
        patient_id="someone-else",
    )

    async def calls(store):
        created = await store.create_async(doctor, "Patient", patient_body())
        rid = created.resource.id
        body = created.resource.as_dict()
        outcomes = {}
        for name, call in {
            "stale": store.update_async(doctor, "Patient", rid, body, if_match=7),
            "wrong id": store.update_async(doctor, "Patient", "other-id", body, if_match=1),
            "missing": store.delete_async(doctor, "Patient", "nobody-here"),
            "other patient": store.update_async(patient, "Patient", rid, body, if_match=1),
            "bad gender": store.create_async(doctor, "Patient", patient_body(gender="女")),
        }.items():
            try:
                await call
            except (PreconditionFailed, BadRequest, InvalidResource, NotFound, Forbidden) as exc:
                outcomes[name] = (type(exc).__name__, exc.en)
        no_version = await store.update_async(doctor, "Patient", rid, body)  # no If-Match: the unit of work
        first = await store.delete_async(doctor, "Patient", rid)
        again = await store.delete_async(doctor, "Patient", rid)
        return rid, outcomes, no_version, first, again

    rid, outcomes, no_version, first, again = _run(store, calls)
    assert outcomes["stale"] == (
        "PreconditionFailed",
        f"Version conflict: Patient/{rid} is at version 1, not 7",
    )
    assert outcomes["wrong id"] == (
        "BadRequest",
        f"The resource id ({rid}) does not match the id in the URL (other-id)",
    )
    assert outcomes["missing"] == ("NotFound", "Patient/nobody-here was not found")
    assert _audited(database, hospital.id, "nobody-here") == [("delete", None, "failed")]
    assert outcomes["other patient"][0] == "Forbidden"
    assert outcomes["bad gender"] == (
        "InvalidResource",
        "Patient.gender: '女' is not in the required value set (female, male, other, unknown)",
    )
    assert (no_version.resource.version_id, first.version_id, again) == (2, 3, None)
    assert _audited(database, hospital.id, rid) == [
        ("create", 1, "success"),
        ("update", 1, "failed"),  # the stale If-Match: refused attempts are audited too
        ("update", None, "denied"),
        ("update", 2, "success"),
        ("delete", 3, "success"),
        ("delete", 3, "success"),  # the second delete finds it deleted already
    ]
    with database.engine.connect() as conn:
        assert audit.verify(conn).intact


def test_a_write_while_every_audit_lane_is_busy_waits_for_one(database, hospital):
    """The one-statement update takes its row first and then, without waiting, a lane; with none free it
    aborts (nothing written) and the unit of work waits for a lane instead."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("lane locks exist on PostgreSQL only")
    store = Store(database.engine, database.settings)
    doctor = _doctor(hospital)
    with store.unit_of_work(doctor) as repo:
        rid = repo.create(patient_body()).resource.id
    holder = database.engine.connect()
    holder.begin()
    holder.execute(text("SELECT lane FROM audit_lane FOR UPDATE")).all()
    released = threading.Event()

    def release_later():
        time.sleep(0.5)
        released.set()
        holder.rollback()
        holder.close()

    async def calls(store):
        body = {**patient_body(), "id": rid, "gender": "other"}
        threading.Thread(target=release_later).start()
        result = await store.update_async(doctor, "Patient", rid, body, if_match=1)
        return result, released.is_set()

    result, waited = _run(store, calls)
    assert waited and result.resource.version_id == 2
    with database.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(resource_version.c.id == rid)).scalar_one() == 2
        assert audit.verify(conn).intact
    assert _audited(database, hospital.id, rid) == [("create", 1, "success"), ("update", 2, "success")]
