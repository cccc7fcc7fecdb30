"""Store.read and Store.read_async (the asynchronous pool on PostgreSQL) give the same answers and audit alike."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tests.conftest import patient_body
from xinglin.core.errors import Gone, NotFound
from xinglin.security.principal import Principal, system_principal
from xinglin.store.models import audit_record
from xinglin.store.repository import Store


def _reads(database, tenant_id: int) -> list[tuple]:
    with database.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(audit_record.c.resource_id, audit_record.c.version_id, audit_record.c.outcome)
                .where(audit_record.c.tenant_id == tenant_id, audit_record.c.action == "read")
                .order_by(audit_record.c.recorded_at)
            )
        ]


def test_read_and_read_async_agree(database, hospital):
    store = Store(database.engine, database.settings)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        pid = repo.create(patient_body()).resource.id
        gone = repo.create(patient_body()).resource.id
        repo.delete("Patient", gone)
    doctor = Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="dr-a", role="physician", scopes=("user/*.*",)
    )

    async def reads():
        await store.open_async_pool()
        try:
            if database.engine.dialect.name == "postgresql":
                assert store._async_pool is not None
            found = await store.read_async(doctor, "Patient", pid)
            with pytest.raises(NotFound):
                await store.read_async(doctor, "Patient", "nobody")
            with pytest.raises(Gone):
                await store.read_async(doctor, "Patient", gone)
            return found
        finally:
            await store.close_async_pool()

    # a loop of its own, in a thread of its own (other tests may leave one running in this thread)
    with ThreadPoolExecutor(1) as runner:
        found = runner.submit(asyncio.run, reads()).result()
    assert found.content == store.read(doctor, "Patient", pid).content
    assert (found.id, found.version_id) == (pid, 1)
    assert _reads(database, hospital.id) == [
        (pid, 1, "success"),
        ("nobody", None, "failed"),
        (gone, 2, "failed"),
        (pid, 1, "success"),
    ]
