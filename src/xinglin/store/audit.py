"""The audit chain: every access to clinical data leaves a hash-linked record.

Records live in a few independent chains ("lanes"). A unit of work appends its records at its very end,
locking one lane head that no other transaction holds (PostgreSQL `FOR UPDATE SKIP LOCKED`), so busy
writers spread over lanes instead of queueing on one lock. Each record carries the hash of the record
before it in its lane, and the lane head keeps the last sequence number and hash, so an edited, inserted
or removed record — even the last one — breaks verification.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import Connection, bindparam, insert, select, text, update

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.store.models import audit_lane, audit_record

GENESIS = "0" * 64

ACTION_CODES = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "search": "E",
    "history": "R",
    "update": "U",
    "delete": "D",
    "login": "E",
    "export": "E",
    "transaction": "E",
    "batch": "E",
}


@dataclass(slots=True)
class AuditEntry:
    principal: str
    role: str
    action: str
    tenant_id: int | None
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: int | None = None
    outcome: str = "success"  # success | denied | failed
    client_address: str | None = None
    purpose: str | None = None
    detail: str | None = None
    recorded_at: datetime = field(default_factory=lambda: utcnow().replace(tzinfo=None))


# The fields a record's hash covers besides its place in the chain (lane, seq, previous hash).
_BODY_FIELDS = (
    "recorded_at",
    "tenant_id",
    "principal",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "version_id",
    "outcome",
    "client_address",
    "purpose",
    "detail",
)


def record_body(row: dict) -> str:
    """Canonical JSON of a record's content (sorted keys, microsecond UTC timestamp)."""
    payload = {k: row.get(k) for k in _BODY_FIELDS}
    payload["recorded_at"] = row["recorded_at"].isoformat(timespec="microseconds")
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def record_hash(row: dict) -> str:
    """sha256 of "prev_hash:lane:seq:body" — the same text PostgreSQL hashes in the one-statement append."""
    text = f"{row['prev_hash']}:{row['lane']}:{row['seq']}:{record_body(row)}"
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_lanes(conn: Connection, lanes: int) -> None:
    existing = set(conn.execute(select(audit_lane.c.lane)).scalars())
    missing = [{"lane": n, "seq": 0, "head_hash": GENESIS} for n in range(lanes) if n not in existing]
    if missing:
        conn.execute(insert(audit_lane), missing)


_HEAD = select(audit_lane.c.lane, audit_lane.c.seq, audit_lane.c.head_hash)
_HEAD_OF_LANE = _HEAD.where(audit_lane.c.lane == bindparam("lane"))
_INSERT_RECORDS = insert(audit_record)
_MOVE_HEAD = (
    update(audit_lane)
    .where(audit_lane.c.lane == bindparam("at_lane"))
    .values(seq=bindparam("new_seq"), head_hash=bindparam("new_hash"))
)


def _lock_a_lane(conn: Connection) -> tuple[int, int, str]:
    head = _HEAD
    start = random.randrange(lane_count(conn))
    if conn.dialect.name != "postgresql":
        # SQLite: the unit of work already holds the database write lock (BEGIN IMMEDIATE).
        return tuple(conn.execute(_HEAD_OF_LANE, {"lane": start}).one())
    # Take the first free lane from a random start (wrapping round); wait only when all are busy.
    for query in (
        head.where(audit_lane.c.lane >= start).order_by(audit_lane.c.lane).limit(1).with_for_update(skip_locked=True),
        head.order_by(audit_lane.c.lane).limit(1).with_for_update(skip_locked=True),
    ):
        row = conn.execute(query).first()
        if row is not None:
            return tuple(row)
    return tuple(conn.execute(head.where(audit_lane.c.lane == start).with_for_update()).one())


_LANES: dict[str, int] = {}


def lane_count(conn: Connection) -> int:
    key = str(conn.engine.url)
    if key not in _LANES:
        _LANES[key] = len(conn.execute(select(audit_lane.c.lane)).all()) or 1
    return _LANES[key]


def _row(e: AuditEntry) -> dict:
    return {
        "recorded_at": e.recorded_at,
        "tenant_id": e.tenant_id,
        "principal": e.principal[:160],
        "role": e.role,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "version_id": e.version_id,
        "outcome": e.outcome,
        "client_address": e.client_address,
        "purpose": e.purpose,
        "detail": e.detail,
    }


def chained_insert_ctes(*, version: str, body: str, source: str = "", guard: str = "") -> str:
    """CTEs `l`, `ins`, `moved` that take a free lane from :start on, insert one record chained to the lane
    head (hashed by the database with the same formula as record_hash) and move the head; `cfg` (the commit
    mode) must be defined before them. `source` and `guard` let a statement feed the record from its own rows
    (see the one-statement read in the repository)."""
    return f"""
l AS (
    SELECT lane, seq, head_hash FROM audit_lane WHERE lane >= :start {guard}
    ORDER BY lane LIMIT 1 FOR UPDATE SKIP LOCKED
), ins AS (
    INSERT INTO audit_record (lane, seq, recorded_at, tenant_id, principal, role, action, resource_type,
                              resource_id, version_id, outcome, client_address, purpose, detail, prev_hash, hash)
    SELECT l.lane, l.seq + 1, :recorded_at, :tenant_id, :principal, :role, :action, :resource_type, :resource_id,
           {version}, :outcome, :client_address, :purpose, :detail, l.head_hash,
           encode(sha256(convert_to(l.head_hash || ':' || l.lane || ':' || (l.seq + 1) || ':' || {body}, 'UTF8')),
                  'hex')
    FROM l{source}
    RETURNING lane, seq, hash
), moved AS (
    UPDATE audit_lane SET seq = ins.seq, head_hash = ins.hash FROM ins, cfg WHERE audit_lane.lane = ins.lane
    RETURNING audit_lane.lane
)"""


COMMIT_MODE_CTE = "cfg AS (SELECT set_config('synchronous_commit', :synchronous_commit, true) AS value)"

# One round trip for the common case of a single record on PostgreSQL.
_APPEND_ONE_PG = text(
    f"WITH {COMMIT_MODE_CTE}, {chained_insert_ctes(version=':version_id', body=':body')}\nSELECT lane FROM moved"
)


def entry(
    principal,
    action: str,
    rtype: str | None,
    rid: str | None = None,
    version: int | None = None,
    *,
    outcome: str = "success",
    detail: str | None = None,
) -> AuditEntry:
    """The record of `principal` doing `action` (a Principal from xinglin.security.principal)."""
    return AuditEntry(
        principal=principal.label,
        role=principal.role,
        action=action,
        tenant_id=principal.tenant_id,
        resource_type=rtype,
        resource_id=rid,
        version_id=version,
        outcome=outcome,
        client_address=principal.client_address,
        purpose=principal.purpose,
        detail=detail,
    )


def one_statement_params(e: AuditEntry, lanes: int, *, synchronous: bool) -> dict:
    """Bind parameters of the chained-insert CTEs for one record, its body complete (`body`) and cut before
    the version number (`body_head`) for statements that take the version from the row they read."""
    row = _row(e)
    body = record_body(row)
    return {
        **row,
        "body": body,
        "body_head": body[: body.rindex('"version_id":') + len('"version_id":')],
        "start": random.randrange(lanes),
        "synchronous_commit": "on" if synchronous else "off",
    }


def append(conn: Connection, entries: list[AuditEntry], *, synchronous: bool = True) -> None:
    """Appends records to one lane; call last in a transaction, just before it commits.

    `synchronous=False` lets PostgreSQL commit the transaction without waiting for its disk flush; the unit
    of work asks for it only when nothing but read records was written.
    """
    if not entries:
        return
    postgres = conn.dialect.name == "postgresql"
    if len(entries) == 1 and postgres:
        params = one_statement_params(entries[0], lane_count(conn), synchronous=synchronous)
        if conn.execute(_APPEND_ONE_PG, params).first() is not None:
            return
        # every lane from the random start on was busy: take the general path, which wraps round and waits
    if postgres and not synchronous:
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    lane, seq, prev = _lock_a_lane(conn)
    rows = []
    for e in entries:
        seq += 1
        row = {"lane": lane, "seq": seq, **_row(e), "prev_hash": prev}
        row["hash"] = prev = record_hash(row)
        rows.append(row)
    conn.execute(_INSERT_RECORDS, rows)
    conn.execute(_MOVE_HEAD, {"at_lane": lane, "new_seq": seq, "new_hash": prev})


@dataclass
class VerifyReport:
    records: int
    lanes: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(conn: Connection) -> VerifyReport:
    """Walks every lane; the first problem of each lane is reported with its lane and sequence."""
    problems: list[str] = []
    total = 0
    lanes = conn.execute(select(audit_lane).order_by(audit_lane.c.lane)).all()
    for head in lanes:
        expected_seq, prev, broken = 0, GENESIS, False
        for row in _records(conn, head.lane):
            total += 1
            if broken:
                continue
            expected_seq += 1
            rec = row._asdict()
            if rec["seq"] != expected_seq:
                problems.append(f"lane {head.lane} record {expected_seq}: missing (next found is {rec['seq']})")
                broken = True
            elif rec["prev_hash"] != prev:
                problems.append(f"lane {head.lane} record {rec['seq']}: does not link to the record before it")
                broken = True
            elif record_hash(rec) != rec["hash"]:
                problems.append(f"lane {head.lane} record {rec['seq']}: content was altered")
                broken = True
            prev = rec["hash"]
        if not broken and (expected_seq != head.seq or prev != head.head_hash):
            problems.append(
                f"lane {head.lane} record {expected_seq + 1}: missing (the lane head records {head.seq} records)"
            )
    return VerifyReport(records=total, lanes=len(lanes), problems=problems)


def _records(conn: Connection, lane: int) -> Iterator:
    last = 0
    while True:  # in pages, so verifying years of records does not load them all at once
        page = conn.execute(
            select(audit_record)
            .where(audit_record.c.lane == lane, audit_record.c.seq > last)
            .order_by(audit_record.c.seq)
            .limit(5000)
        ).all()
        if not page:
            return
        yield from page
        last = page[-1].seq


def to_audit_event(row) -> dict:
    """An audit record as a FHIR R4 AuditEvent (built on read; records are never stored as resources)."""
    entity = []
    if row.resource_type:
        ref = row.resource_type + (f"/{row.resource_id}" if row.resource_id else "")
        if row.resource_id and row.version_id:
            ref += f"/_history/{row.version_id}"
        entity.append({"what": {"reference": ref}})
    agent = {"who": {"display": row.principal}, "type": {"text": row.role}, "requestor": True}
    if row.client_address:
        agent["network"] = {"address": row.client_address, "type": "2"}
    event = {
        "resourceType": "AuditEvent",
        "id": f"{row.lane}-{row.seq}",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": row.action}],
        "action": ACTION_CODES.get(row.action, "E"),
        "recorded": fhir_instant(row.recorded_at),
        "outcome": {"success": "0", "denied": "4", "failed": "8"}.get(row.outcome, "8"),
        "agent": [agent],
        "source": {"observer": {"display": "Xinglin"}},
        "entity": entity,
        "extension": [
            {"url": "https://xinglin.dev/fhir/StructureDefinition/audit-hash", "valueString": row.hash},
            {
                "url": "https://xinglin.dev/fhir/StructureDefinition/audit-prev-hash",
                "valueString": row.prev_hash,
            },
        ],
    }
    if row.purpose:
        event["purposeOfEvent"] = [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": row.purpose}]}
        ]
    if row.detail:
        event["outcomeDesc"] = row.detail
    if not entity:
        del event["entity"]
    return event
