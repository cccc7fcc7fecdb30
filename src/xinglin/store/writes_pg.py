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

from sqlalchemy import DateTime, Float, TextClause, text

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
    """One INSERT per index table with rows, each row joined to `target` (pk, resource_type, id)."""
    parts = []
    for kind in kinds:
        cols = _COLUMNS[kind]
        arrays = ", ".join(
            [f"CAST(:{kind}__rtype AS text[])", f"CAST(:{kind}__rid AS text[])"]
            + [f"CAST(:{kind}_{c} AS {_TYPES[kind][c]}[])" for c in cols]
        )
        parts.append(
            f", i_{kind} AS (INSERT INTO {INDEX_TABLES[kind].name} ({', '.join(_KEY_COLUMNS)}, {', '.join(cols)}) "
            f"SELECT t.pk, :tenant, x.rtype, {', '.join('x.' + c for c in cols)} "
            f"FROM unnest({arrays}) AS x(rtype, rid, {', '.join(cols)}) "
            f"JOIN {target} t ON t.resource_type = x.rtype AND t.id = x.rid)"
        )
    return "".join(parts)


def index_params(resources: list[tuple[str, str, dict]]) -> tuple[tuple[str, ...], dict]:
    """The kinds that have rows and the array parameters of their inserts, for (type, id, rows) resources."""
    params: dict[str, list] = {}
    kinds = []
    for kind in INDEX_TABLES:
        cols = _COLUMNS[kind]
        arrays: dict[str, list] = {f"{kind}__rtype": [], f"{kind}__rid": [], **{f"{kind}_{c}": [] for c in cols}}
        for rtype, rid, rows in resources:
            for entry in rows.get(kind, ()):
                arrays[f"{kind}__rtype"].append(rtype)
                arrays[f"{kind}__rid"].append(rid)
                for c in cols:
                    arrays[f"{kind}_{c}"].append(entry.get(c))
        if arrays[f"{kind}__rid"]:
            kinds.append(kind)
            params.update(arrays)
    return tuple(kinds), params


_NEW_ROWS = (
    "unnest(CAST(:rtypes AS text[]), CAST(:rids AS text[]), CAST(:contents AS bytea[])) AS x(rtype, rid, content)"
)


@lru_cache(maxsize=64)
def create_statement(kinds: tuple[str, ...]) -> TextClause:
    return text(
        "WITH r AS (INSERT INTO resource (tenant_id, resource_type, id, version_id, last_updated, deleted, content) "
        f"SELECT :tenant, x.rtype, x.rid, 1, :now, false, x.content FROM {_NEW_ROWS} RETURNING pk, resource_type, id), "
        "ver AS (INSERT INTO resource_version (tenant_id, resource_type, id, version_id, last_updated, method, "
        f"content) SELECT :tenant, x.rtype, x.rid, 1, :now, 'POST', x.content FROM {_NEW_ROWS})"
        + _index_ctes(kinds, "r")
        + " SELECT pk, resource_type, id FROM r"
    )


def create_params(tenant: int, now: datetime, prepared: list[tuple[str, str, bytes, dict]]) -> tuple[TextClause, dict]:
    """The statement creating (type, id, content, index rows) resources at version 1, and its parameters."""
    kinds, params = index_params([(t, i, rows) for t, i, _, rows in prepared])
    params.update(
        tenant=tenant,
        now=now,
        rtypes=[t for t, _, _, _ in prepared],
        rids=[i for _, i, _, _ in prepared],
        contents=[c for _, _, c, _ in prepared],
    )
    return create_statement(kinds), params


@lru_cache(maxsize=64)
def replace_statement(kinds: tuple[str, ...]) -> TextClause:
    """Moves a resource to a new version if it is still at the version the writer saw: current row, history
    row, old index rows out and new ones in. Returns how many rows it replaced (0 or 1)."""
    return text(
        "WITH upd AS (UPDATE resource SET version_id = :version, last_updated = :now, deleted = :deleted, "
        "content = :content WHERE pk = :pk AND version_id = :seen RETURNING pk, resource_type, id)"
        + "".join(
            f", d_{kind} AS (DELETE FROM {table.name} WHERE resource_pk IN (SELECT pk FROM upd))"
            for kind, table in INDEX_TABLES.items()
        )
        + ", ver AS (INSERT INTO resource_version (tenant_id, resource_type, id, version_id, last_updated, method, "
        "content) SELECT :tenant, :rtype, :rid, :version, :now, :method, :content FROM upd)"
        + _index_ctes(kinds, "upd")
        + " SELECT count(*) FROM upd"
    )
