"""Index rows are written with the resource, replaced on update and removed on delete, alike on both databases
(PostgreSQL writes them in one statement with the resource, SQLite statement by statement)."""

from datetime import datetime

from sqlalchemy import select

from xinglin.security.principal import system_principal
from xinglin.store.models import INDEX_TABLES, resource, resource_version

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "lab"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "葡萄糖"},
    "subject": {"reference": "Patient/p-1"},
    "effectiveDateTime": "2026-03-05",
    "valueQuantity": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
}


def _index(conn, pk: int, kind: str, *columns: str) -> list[tuple]:
    table = INDEX_TABLES[kind]
    rows = conn.execute(select(*(table.c[c] for c in ("param", *columns))).where(table.c.resource_pk == pk)).all()
    return sorted(tuple(r) for r in rows)


def test_index_rows_follow_create_update_and_delete(hospital, database):
    store = hospital.app.state.store
    principal = system_principal(hospital.id, hospital.code)
    with store.unit_of_work(principal) as repo:
        created = repo.create_many([("Observation", OBSERVATION, None), ("Observation", OBSERVATION, None)])
    first, second = (c.resource for c in created)
    assert first.pk != second.pk
    with database.engine.connect() as conn:
        for pk in (first.pk, second.pk):
            assert _index(conn, pk, "token", "system", "code") == [
                ("category", "http://terminology.hl7.org/CodeSystem/observation-category", "lab"),
                ("code", "http://loinc.org", "2345-7"),
                ("status", None, "final"),
            ]
        assert _index(conn, first.pk, "reference", "target_type", "target_id") == [
            ("patient", "Patient", "p-1"),
            ("subject", "Patient", "p-1"),
        ]
        assert _index(conn, first.pk, "date", "low", "high") == [("date", datetime(2026, 3, 5), datetime(2026, 3, 6))]
        assert _index(conn, first.pk, "quantity", "value", "code") == [("value-quantity", 6.1, "mmol/L")]

    changed = {**OBSERVATION, "id": first.id, "valueQuantity": {**OBSERVATION["valueQuantity"], "value": 7.4}}
    changed["subject"] = {"reference": "Patient/p-2"}
    with store.unit_of_work(principal) as repo:
        assert repo.update("Observation", first.id, changed).resource.version_id == 2
    with database.engine.connect() as conn:
        assert _index(conn, first.pk, "quantity", "value", "code") == [("value-quantity", 7.4, "mmol/L")]
        assert _index(conn, first.pk, "reference", "target_type", "target_id") == [
            ("patient", "Patient", "p-2"),
            ("subject", "Patient", "p-2"),
        ]
        # the other resource of the same statement kept its own rows
        assert _index(conn, second.pk, "quantity", "value", "code") == [("value-quantity", 6.1, "mmol/L")]
        versions = conn.execute(
            select(resource_version.c.version_id, resource_version.c.method)
            .where(resource_version.c.tenant_id == hospital.id, resource_version.c.id == first.id)
            .order_by(resource_version.c.version_id)
        ).all()
        assert [tuple(v) for v in versions] == [(1, "POST"), (2, "PUT")]

    with store.unit_of_work(principal) as repo:
        repo.delete("Observation", first.id)
    with database.engine.connect() as conn:
        for kind in INDEX_TABLES:
            assert _index(conn, first.pk, kind) == []
        row = conn.execute(select(resource.c.version_id, resource.c.deleted).where(resource.c.pk == first.pk)).one()
        assert tuple(row) == (3, True)
