"""Whole writes in one PostgreSQL statement.

A create or an update touches the current row, the history row and up to five index tables. Sent one by
one that is up to seven round trips, and on a busy two-core server each round trip costs far more in
waiting than the work itself. Data-modifying CTEs do it all in one statement: the rows travel as arrays
(`unnest`), and the index rows find their resource's primary key by joining on (type, id) to the row the
same statement inserted or updated. All parts of one statement see the same snapshot, so the update can
delete a resource's old index rows and insert its new ones without either seeing the other.

SQLite keeps the statement-by-statement path in the repository.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import orjson
from sqlalchemy import DateTime, Float, TextClause, text
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from xinglin.store import audit
from xinglin.store.models import INDEX_TABLES

_KEY_COLUMNS = ("resource_pk", "tenant_id", "resource_type")

# The value columns of each index table (after resource_pk, tenant_id, resource_type), `param` first.
_COLUMNS = {kind: [c.name for c in table.columns if c.name not in _KEY_COLUMNS] for kind, table in INDEX_TABLES.items()}
_TYPES = {
    kind: {
        c.name: "float8" if isinstance(c.type, Float) else "timestamp" if isinstance(c.type, DateTime) else "text"
        for c in table.columns
        if c.name not in _KEY_COLUMNS
    }
    for kind, table in INDEX_TABLES.items()
}


def _index_ctes(kinds: tuple[str, ...], target: str) -> str:
    """One INSERT per index table with rows, each row joined to `target` (pk, resource_type, id).

    The rows of a table travel as one JSON array (`:{kind}_rows`), which PostgreSQL unpacks in C: psycopg dumps
    Python lists into arrays element by element, which cost more than the rest of a write."""
    parts = []
    for kind in kinds:
        cols = _COLUMNS[kind]
        record = ", ".join(["t text", "i text"] + [f"{c} {_TYPES[kind][c]}" for c in cols])
        parts.append(
            f", i_{kind} AS (INSERT INTO {INDEX_TABLES[kind].name} ({', '.join(_KEY_COLUMNS)}, {', '.join(cols)}) "
            f"SELECT r.pk, :tenant, x.t, {', '.join('x.' + c for c in cols)} "
            f"FROM json_to_recordset(CAST(:{kind}_rows AS json)) AS x({record}) "
            f"JOIN {target} r ON r.resource_type = x.t AND r.id = x.i)"
        )
    return "".join(parts)


def index_params(resources: list[tuple[str, str, dict]]) -> tuple[tuple[str, ...], dict]:
    """The kinds that have rows and the parameters of their inserts, for (type, id, rows) resources."""
    params: dict[str, str] = {}
    for kind in INDEX_TABLES:
        rows = [{"t": rtype, "i": rid, **entry} for rtype, rid, by_kind in resources for entry in by_kind.get(kind, ())]
        if rows:
            params[f"{kind}_rows"] = orjson.dumps(rows).decode()
    return tuple(kind for kind in INDEX_TABLES if f"{kind}_rows" in params), params


_NEW_ROWS = (
    "unnest(CAST(:rtypes AS text[]), CAST(:rids AS text[]), CAST(:contents AS bytea[])) AS x(rtype, rid, content)"
)


# The audited variants below are whole transactions in one autocommitted statement: the write and its audit
# record (`audit.chained_insert_ctes`, parameters from `audit.one_statement_params`). A create takes a free audit
# lane first and inserts only if it got one (no row back: nothing written, take the general path). A change of
# an existing row takes the row first (it may wait for another writer) and only then a lane, without waiting,
# so it never holds a lane while it waits; when no lane is free, `1 / 0` in its result aborts the statement.
_AUDITED = f"WITH {audit.COMMIT_MODE_CTE}, "
_LANE_AFTER_ROW = dict(guard="AND EXISTS (SELECT FROM upd)")
_ABORT_UNLESS_AUDITED = "1 / (SELECT count(*)::int FROM moved) AS audited"


@lru_cache(maxsize=64)
def create_statement(kinds: tuple[str, ...], audited: bool = False) -> TextClause:
    """Inserts new resources at version 1 with their history and index rows; returns (pk, type, id) rows.
    Audited: one new resource and its audit record."""
    head = f"{_AUDITED}{audit.chained_insert_ctes(version=':version_id', body=':body')}, " if audited else "WITH "
    lane = " WHERE EXISTS (SELECT FROM l)" if audited else ""
    return text(
        head + "r AS (INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, deleted, content) "
        f"SELECT :tenant, x.rtype, x.rid, 1, :now, false, x.content FROM {_NEW_ROWS}{lane} "
        "RETURNING pk, resource_type, id), "
        "ver AS (INSERT INTO resource_version (tenant_id, resource_type, id, version_id, last_updated, method, "
        f"content) SELECT :tenant, x.rtype, x.rid, 1, :now, 'POST', x.content FROM {_NEW_ROWS}{lane})"
        + _index_ctes(kinds, "r")
        + " SELECT pk, resource_type, id FROM r"
    )


def create_params(
    tenant: int, now: datetime, prepared: list[tuple[str, str, bytes, dict]], *, audited: bool = False
) -> tuple[TextClause, dict]:
    """The statement creating (type, id, content, index rows) resources at version 1, and its parameters
    (audited: add the record's from `audit.one_statement_params`)."""
    kinds, params = index_params([(t, i, rows) for t, i, _, rows in prepared])
    params.update(
        tenant=tenant,
        now=now,
        rtypes=[t for t, _, _, _ in prepared],
        rids=[i for _, i, _, _ in prepared],
        contents=[c for _, _, c, _ in prepared],
    )
    return create_statement(kinds, audited), params


def _clear_index_ctes() -> str:
    return "".join(
        f", d_{kind} AS (DELETE FROM {table.name} WHERE resource_pk IN (SELECT pk FROM upd))"
        for kind, table in INDEX_TABLES.items()
    )


@lru_cache(maxsize=64)
def replace_statement(kinds: tuple[str, ...], audited: bool = False) -> TextClause:
    """Moves a resource to a new version if it is still at the version the writer saw: current row, history
    row, old index rows out and new ones in. Returns how many rows it replaced (0 or 1).

    Plain: the row is named by its pk, inside the caller's unit of work. Audited: by (tenant, type, id), only
    a live one, with its audit record; returns the replaced row's pk (no row when nothing was replaced)."""
    target = "tenant_id = :tenant AND resource_type = :rtype AND id = :rid AND NOT deleted" if audited else "pk = :pk"
    tail = (
        f", {audit.chained_insert_ctes(version=':version_id', body=':body', **_LANE_AFTER_ROW)} "
        f"SELECT pk, {_ABORT_UNLESS_AUDITED} FROM upd"
        if audited
        else " SELECT count(*) FROM upd"
    )
    return text(
        (_AUDITED if audited else "WITH ")
        + "upd AS (UPDATE resource SET version_id = :version, last_updated = :now, deleted = :deleted, "
        f"content = :content WHERE {target} AND version_id = :seen RETURNING pk, resource_type, id)"
        + _clear_index_ctes()
        + ", ver AS (INSERT INTO resource_version (tenant_id, resource_type, id, version_id, last_updated, method, "
        "content) SELECT :tenant, :rtype, :rid, :version, :now, :method, :content FROM upd)"
        + _index_ctes(kinds, "upd")
        + tail
    )


# Deletes a live resource (tenant, type, id) with its audit record. The new version number comes from the row,
# so the record's hashed body is completed in SQL after `body_head` (as in the one-statement read). Returns the
# deletion's version; no row when the resource is missing or already deleted.
AUDITED_DELETE = text(
    _AUDITED
    + "upd AS (UPDATE resource SET version_id = version_id + 1, last_updated = :now, deleted = true, content = NULL "
    "WHERE tenant_id = :tenant AND resource_type = :rtype AND id = :rid AND NOT deleted "
    "RETURNING pk, resource_type, id, version_id)"
    + _clear_index_ctes()
    + ", ver AS (INSERT INTO resource_version (tenant_id, resource_type, id, version_id, last_updated, method, "
    "content) SELECT :tenant, upd.resource_type, upd.id, upd.version_id, :now, 'DELETE', NULL FROM upd), "
    + audit.chained_insert_ctes(
        version="upd.version_id", body="(:body_head || upd.version_id || '}')", source=", upd", **_LANE_AFTER_ROW
    )
    + f" SELECT version_id, {_ABORT_UNLESS_AUDITED} FROM upd"
)


@lru_cache(maxsize=256)
def for_psycopg(statement: TextClause) -> str:
    """A statement as psycopg's own (asynchronous) connections take it: `%(name)s` placeholders."""
    return str(statement.compile(dialect=postgresql_psycopg.dialect()))
