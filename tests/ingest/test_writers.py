"""Chunks written by other processes (planned here, committed in order) store what one process stores."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from tests.ingest.samples import gbk_csv, messy_csv
from tests.ingest.test_resume import _counts
from xinglin.ingest.service import ingest, writer_processes
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy

COUNTS = (
    "rows_read", "rows_stored", "rows_matched", "rows_rejected", "rows_already_ingested",
    "patients_created", "patients_matched", "patients_updated", "reviews_created", "resources_written",
)  # fmt: skip


def _store(database) -> Store:
    return Store(database.engine, database.settings)


def _tenant(database, prefix: str):
    with database.engine.begin() as conn:
        return tenancy.create_tenant(conn, f"{prefix}-{secrets.token_hex(3)}", "测试医院")


def _summary(report) -> tuple:
    data = report.as_dict()
    return (
        {k: getattr(report, k) for k in COUNTS},
        dict(report.resources_by_type),
        [(r["row"], r["reason"]) for r in data["rejections"]],
        [(w["row"], w["reason"]) for w in data["warnings"]],
        data["completeness"],
        data["unmapped"],
    )


@pytest.mark.slow
def test_writer_processes_store_what_one_process_stores(database, tmp_path):
    path = messy_csv(tmp_path, 900, seed=5, people=150)
    store = _store(database)
    one, many = _tenant(database, "one"), _tenant(database, "many")
    kw = {"chunk_rows": 60, "coder": lambda _text: []}
    by_one = ingest(store, one.code, [path], writers=0, **kw)
    by_many = ingest(store, many.code, [path], writers=2, **kw)
    assert _summary(by_many) == _summary(by_one)
    assert by_one.rows_read == by_one.rows_stored + by_one.rows_matched + by_one.rows_rejected == 900
    assert _counts(database, many.id) == _counts(database, one.id) == Counter(dict(by_one.resources_by_type))
    # and again: nothing new, the same way
    again = ingest(store, many.code, [path], writers=2, **kw)
    assert again.resources_written == 0 and again.patients_created == 0
    assert _summary(again) == _summary(ingest(store, one.code, [path], writers=0, **kw))
    assert _counts(database, many.id) == _counts(database, one.id)


def test_row_the_store_refuses_is_rejected_and_later_chunks_planned_again(database, tmp_path, monkeypatch):
    from xinglin.ingest import service

    real = service._observation

    def broken(lab, *args):
        body = real(lab, *args)
        if lab.item == "肌酐":
            body["status"] = "not-a-status"  # the store's FHIR validation (in a writer process) refuses it
        return body

    monkeypatch.setattr(service, "_observation", broken)
    path = gbk_csv(tmp_path)
    store = _store(database)
    one, many = _tenant(database, "one"), _tenant(database, "many")
    by_one = ingest(store, one.code, [path], writers=0, chunk_rows=2)
    by_many = ingest(store, many.code, [path], writers=2, chunk_rows=2)
    assert (3, "fhir_invalid") in [(r.row, r.reason) for r in by_many.rejections]
    assert _summary(by_many) == _summary(by_one)
    assert _counts(database, many.id) == _counts(database, one.id)


def test_how_many_writers(database):
    store = _store(database)
    postgres = database.engine.dialect.name == "postgresql"
    assert writer_processes(store, None, 100_000, 2000, False) == (2 if postgres else 0)
    assert writer_processes(store, None, 3000, 2000, False) == 0  # a file of one or two chunks: not worth it
    assert writer_processes(store, 3, 100_000, 2000, True) == 0  # a dry run writes nothing
    assert writer_processes(store, 3, 100_000, 2000, False) == (3 if postgres else 1)  # SQLite: one writer
