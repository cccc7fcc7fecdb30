"""The repository: the one way in and out of clinical data.

Every call runs on behalf of a Principal, inside a unit of work (one database transaction). Each call
checks the access policy, applies the tenant scope, and queues an audit record that is written to the
audit chain in the same transaction, just before it commits. Denied attempts are audited too, in a
transaction of their own (the refused work is rolled back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qsl

import anyio
import orjson
import psycopg
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.config import Settings, get_settings
from xinglin.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    XinglinError,
)
from xinglin.core.ids import new_resource_id
from xinglin.security.policy import Access, authorize, in_compartment
from xinglin.security.principal import Principal, system_principal
from xinglin.store import audit, writes_pg
from xinglin.store.hooks import rules_for
from xinglin.store.indexer import extract, to_naive_utc
from xinglin.store.models import INDEX_TABLES, audit_record, idx_reference, idx_token, resource, resource_version
from xinglin.store.search import SearchQuery, compartment_condition, parse
from xinglin.store.search_params import PATIENT_COMPARTMENT
from xinglin.store.validation import is_resource_type, validate

T = TypeVar("T")

# Security label of records locked after a deletion request (privacy.requests); hidden from all but admins.
LOCK_CODE = "retention-locked"
LOCK_MARK = b'"retention-locked"'


@dataclass(slots=True)
class StoredResource:
    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: bytes | None
    pk: int | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    def as_dict(self) -> dict:
        return orjson.loads(self.content) if self.content else {}


@dataclass(slots=True)
class WriteResult:
    resource: StoredResource
    created: bool


@dataclass(slots=True)
class SearchPage:
    query: SearchQuery
    total: int | None
    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)


@dataclass(slots=True)
class HistoryPage:
    total: int
    versions: list[StoredResource]
    methods: list[str]
    offset: int
    count: int


def _unknown_type(resource_type: str) -> NotFound:
    return NotFound(f"未知的资源类型 {resource_type}", f"Unknown resource type {resource_type}", element="resourceType")


def _not_found(resource_type: str, resource_id: str) -> NotFound:
    return NotFound(f"未找到 {resource_type}/{resource_id}", f"{resource_type}/{resource_id} was not found")


def parse_etag(value: str | None) -> int | None:
    """`W/"3"` or `"3"` or `3` -> 3."""
    if not value:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise BadRequest(
            f"If-Match 的取值“{value}”不是版本号", f"If-Match '{value}' is not a version", element="If-Match"
        )
    return int(text)


class Store:
    """Holds the engine; hands out units of work."""

    def __init__(self, engine: Engine, settings: Settings | None = None):
        self.engine = engine
        self.settings = settings or get_settings()
        self._lanes: int | None = None
        self._async_pool = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def unit_of_work(self, principal: Principal) -> Iterator[Repository]:
        repo = Repository(None, principal, self.settings)  # type: ignore[arg-type]
        try:
            with self.engine.begin() as conn:
                repo.conn = conn
                yield repo
                # When nothing clinical changed, only read records are written: committing them without
                # waiting for the disk spares a flush per read; a database crash can lose at most the last
                # fraction of a second of read records, never a clinical write.
                audit.append(conn, repo.audit_entries, synchronous=repo.wrote or self.settings.sync_commit_reads)
        except XinglinError:
            if repo.refusals:
                with self.engine.begin() as conn:
                    audit.append(conn, repo.refusals)
            raise

    def read(self, principal: Principal, rtype: str, rid: str) -> StoredResource:
        """Repository.read in a unit of work of its own; on PostgreSQL, in one statement where it can be."""
        if self._one_statement_serves(principal, "read", rtype):
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                row = conn.execute(_READ_AUDITED_PG, self._read_params(principal, rtype, rid)).first()
            if row is not None and row.audited is not None:
                return _stored(row)
        return self._in_unit_of_work(principal, lambda repo: repo.read(rtype, rid))

    # The busiest calls of a FHIR server take one round trip on PostgreSQL: the read, create, update or delete
    # and its audit record in one autocommitted statement (a single statement is a transaction), sent over the
    # worker's asynchronous pool from the event loop, instead of BEGIN, the statements, the audit append and
    # COMMIT from a worker thread. Only the plain case is taken: the caller may act on the whole tenant, the
    # type has no domain rules, and (update) the client named the version it changes. When the statement finds
    # nothing to do (not found, deleted, locked, a stale version, all audit lanes busy) it has written nothing,
    # and the unit of work decides and audits the call as usual.

    async def read_async(self, principal: Principal, rtype: str, rid: str) -> StoredResource:
        """`read` for async callers."""
        pool = self._pool_of_this_loop()
        if pool is not None and self._one_statement_serves(principal, "read", rtype):
            row = await _fetch_one(pool, _READ_AUDITED_PG, self._read_params(principal, rtype, rid))
            if row is not None and row.audited is not None:
                return _stored(row)
        return await self._in_unit_of_work_thread(principal, lambda repo: repo.read(rtype, rid))

    async def create_async(
        self, principal: Principal, rtype: str, body: dict, *, if_none_exist: str | None = None
    ) -> WriteResult:
        """Repository.create in a unit of work of its own, for async callers."""
        pool = self._pool_of_this_loop()
        if pool is not None and not if_none_exist and self._one_statement_serves(principal, "create", rtype):
            validate(body, expected_type=rtype)
            now = utcnow().replace(tzinfo=None)
            rid = new_resource_id()
            _, content, rows = prepare_document(rtype, body, rid, 1, now)
            statement, params = writes_pg.create_params(
                principal.tenant_id, now, [(rtype, rid, content, rows)], audited=True
            )
            row = await _fetch_one(pool, statement, params | self._audit_params(principal, "create", rtype, rid, 1))
            if row is not None:
                return WriteResult(StoredResource(rtype, rid, 1, now, False, content, row.pk), created=True)
        return await self._in_unit_of_work_thread(
            principal, lambda repo: repo.create(body, rtype=rtype, if_none_exist=if_none_exist)
        )

    async def update_async(
        self, principal: Principal, rtype: str, rid: str, body: dict, *, if_match: int | None = None
    ) -> WriteResult:
        """Repository.update in a unit of work of its own, for async callers."""
        pool = self._pool_of_this_loop()
        if pool is not None and if_match is not None and self._one_statement_serves(principal, "update", rtype):
            validate_replacement(rtype, rid, body)
            version, now = if_match + 1, utcnow().replace(tzinfo=None)
            _, content, rows = prepare_document(rtype, body, rid, version, now)
            kinds, params = writes_pg.index_params([(rtype, rid, rows)])
            params |= {"tenant": principal.tenant_id, "rtype": rtype, "rid": rid, "seen": if_match}
            params |= {"version": version, "now": now, "deleted": False, "content": content, "method": "PUT"}
            params |= self._audit_params(principal, "update", rtype, rid, version)
            row = await _fetch_one(pool, writes_pg.replace_statement(kinds, audited=True), params)
            if row is not None:
                return WriteResult(StoredResource(rtype, rid, version, now, False, content, row.pk), created=False)
        return await self._in_unit_of_work_thread(
            principal, lambda repo: repo.update(rtype, rid, body, if_match=if_match)
        )

    async def delete_async(self, principal: Principal, rtype: str, rid: str) -> StoredResource | None:
        """Repository.delete in a unit of work of its own, for async callers."""
        pool = self._pool_of_this_loop()
        if pool is not None and self._one_statement_serves(principal, "delete", rtype):
            now = utcnow().replace(tzinfo=None)
            params = {"tenant": principal.tenant_id, "rtype": rtype, "rid": rid, "now": now}
            row = await _fetch_one(
                pool, writes_pg.AUDITED_DELETE, params | self._audit_params(principal, "delete", rtype, rid, None)
            )
            if row is not None:
                return StoredResource(rtype, rid, row.version_id, now, True, None)
        return await self._in_unit_of_work_thread(principal, lambda repo: repo.delete(rtype, rid))

    def _in_unit_of_work(self, principal: Principal, work: Callable[[Repository], T]) -> T:
        with self.unit_of_work(principal) as repo:
            return work(repo)

    async def _in_unit_of_work_thread(self, principal: Principal, work: Callable[[Repository], T]) -> T:
        """`work` on a repository in a unit of work of its own, in a worker thread (it blocks on the database)."""
        return await anyio.to_thread.run_sync(self._in_unit_of_work, principal, work)

    def _pool_of_this_loop(self):
        """The asynchronous pool, when it belongs to the running event loop."""
        pool = self._async_pool
        return pool if pool is not None and self._async_loop is asyncio.get_running_loop() else None

    def _one_statement_serves(self, principal: Principal, action: str, rtype: str) -> bool:
        """Whether the one-statement path may take this call (see above); denials, compartments and domain
        rules are left to the unit of work."""
        if self.engine.dialect.name != "postgresql" or not is_resource_type(rtype):
            return False
        if action != "read" and rules_for(rtype):
            return False
        try:
            return authorize(principal, action, rtype).compartment_patient is None
        except Forbidden:
            return False

    def _audit_params(self, principal: Principal, action: str, rtype: str, rid: str, version: int | None) -> dict:
        if self._lanes is None:
            with self.engine.connect() as conn:
                self._lanes = audit.lane_count(conn)
        synchronous = action != "read" or self.settings.sync_commit_reads
        return audit.one_statement_params(
            audit.entry(principal, action, rtype, rid, version), self._lanes, synchronous=synchronous
        )

    def _read_params(self, principal: Principal, rtype: str, rid: str) -> dict:
        params = self._audit_params(principal, "read", rtype, rid, None)
        return params | {"rtype": rtype, "rid": rid, "mark": LOCK_MARK, "sees_locked": _sees_locked(principal)}

    async def open_async_pool(self) -> None:
        """On PostgreSQL, a small asynchronous connection pool for `read_async`, bound to the running loop."""
        if self.engine.dialect.name != "postgresql" or self._async_pool is not None:
            return
        from psycopg.rows import namedtuple_row
        from psycopg_pool import AsyncConnectionPool

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._async_pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=self.settings.db_pool_size,
            kwargs={"autocommit": True, "row_factory": namedtuple_row},
            open=False,
        )
        await self._async_pool.open()
        self._async_loop = asyncio.get_running_loop()

    async def close_async_pool(self) -> None:
        if self._async_pool is not None:
            await self._async_pool.close()
            self._async_pool = self._async_loop = None


class Repository:
    def __init__(self, conn: Connection, principal: Principal, settings: Settings):
        self.conn = conn
        self.principal = principal
        self.settings = settings
        self.audit_entries: list[audit.AuditEntry] = []
        # Attempts that fail (denied, gone, not found) are audited even though their unit of work rolls back.
        self.refusals: list[audit.AuditEntry] = []
        self.wrote = False

    # --- policy and audit ---------------------------------------------------------------------------

    def _record(
        self,
        action: str,
        rtype: str | None,
        rid: str | None = None,
        version: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.audit_entries.append(audit.entry(self.principal, action, rtype, rid, version, detail=detail))

    def _authorize(self, action: str, rtype: str, rid: str | None = None) -> Access:
        if not is_resource_type(rtype) and rtype != "AuditEvent":
            raise _unknown_type(rtype)
        try:
            return authorize(self.principal, action, rtype)
        except Forbidden as exc:
            self.refusals.append(audit.entry(self.principal, action, rtype, rid, outcome="denied", detail=exc.en))
            raise

    def _deny_outside_compartment(self, action: str, rtype: str, rid: str) -> Forbidden:
        exc = Forbidden(f"无权访问 {rtype}/{rid}：不属于您本人的记录", f"{rtype}/{rid} is not part of your own record")
        self.refusals.append(audit.entry(self.principal, action, rtype, rid, outcome="denied", detail=exc.en))
        return exc

    def _in_compartment(self, access: Access, row) -> bool:
        if access.compartment_patient is None:
            return True
        if row.resource_type == "Patient":
            return row.id == access.compartment_patient
        refs = (
            self.conn.execute(
                select(idx_reference.c.param, idx_reference.c.target_type, idx_reference.c.target_id).where(
                    idx_reference.c.resource_pk == row.pk,
                    idx_reference.c.param.in_(PATIENT_COMPARTMENT.get(row.resource_type, ())),
                )
            )
            .mappings()
            .all()
        )
        return in_compartment(access.compartment_patient, row.resource_type, row.id, list(refs))

    def record_event(self, action: str, detail: str | None = None) -> None:
        """Audits an action on data the caller supplied rather than stored data (e.g. de-identifying text)."""
        self._record(action, None, detail=detail)

    # --- reads --------------------------------------------------------------------------------------

    def current_locked(self, rtype: str, rid: str):
        """The current row of a resource, locked until the unit of work ends (PostgreSQL; SQLite units of
        work already hold the write lock). For rules that must decide on the latest state, such as
        whether a slot is still free."""
        self._authorize("update", rtype, rid)
        return self._current(rtype, rid, lock=True)

    def _current(self, rtype: str, rid: str, *, lock: bool = False):
        query = _CURRENT_LOCKED if lock and self.conn.dialect.name == "postgresql" else _CURRENT
        return self.conn.execute(query, {"tenant": self.principal.tenant_id, "rtype": rtype, "rid": rid}).first()

    def read(self, rtype: str, rid: str) -> StoredResource:
        access = self._authorize("read", rtype, rid)
        row = self._current(rtype, rid)
        if row is None:
            raise self._refuse("read", rtype, rid, _not_found(rtype, rid))
        if not self._in_compartment(access, row):
            raise self._deny_outside_compartment("read", rtype, rid)
        if row.deleted:
            raise self._refuse("read", rtype, rid, _gone(rtype, rid), row.version_id)
        if self._hidden(row.content):
            raise self._refuse("read", rtype, rid, _locked(rtype, rid), row.version_id)
        self._record("read", rtype, rid, row.version_id)
        return _stored(row)

    def _refuse(self, action: str, rtype: str, rid: str, exc: XinglinError, version: int | None = None):
        self.refusals.append(audit.entry(self.principal, action, rtype, rid, version, outcome="failed", detail=exc.en))
        return exc

    def _sees_locked(self) -> bool:
        return _sees_locked(self.principal)

    def _hidden(self, content: bytes | None) -> bool:
        """Records locked after a deletion request are kept by law but shown only to admins and Xinglin."""
        return bool(content) and LOCK_MARK in content and not self._sees_locked()

    def vread(self, rtype: str, rid: str, version_id: int) -> StoredResource:
        access = self._authorize("vread", rtype, rid)
        current = self._current(rtype, rid)
        if current is None:
            raise self._refuse("vread", rtype, rid, _not_found(rtype, rid))
        if not self._in_compartment(access, current):
            raise self._deny_outside_compartment("vread", rtype, rid)
        if self._hidden(current.content):  # older versions of a locked record are locked with it
            raise self._refuse("vread", rtype, rid, _locked(rtype, rid), version_id)
        row = self.conn.execute(
            select(resource_version).where(
                resource_version.c.tenant_id == self.principal.tenant_id,
                resource_version.c.resource_type == rtype,
                resource_version.c.id == rid,
                resource_version.c.version_id == version_id,
            )
        ).first()
        if row is None:
            exc = NotFound(f"未找到 {rtype}/{rid} 的第 {version_id} 版", f"{rtype}/{rid} has no version {version_id}")
            raise self._refuse("vread", rtype, rid, exc, version_id)
        if row.method == "DELETE":
            exc = Gone(
                f"{rtype}/{rid} 的第 {version_id} 版是一次删除", f"Version {version_id} of {rtype}/{rid} is a deletion"
            )
            raise self._refuse("vread", rtype, rid, exc, version_id)
        self._record("vread", rtype, rid, version_id)
        return StoredResource(rtype, rid, row.version_id, row.last_updated, False, row.content)

    def search(self, rtype: str, params: list[tuple[str, str]], *, strict: bool = True) -> SearchPage:
        access = self._authorize("search", rtype)
        tenant = self.principal.tenant_id
        q = parse(
            rtype,
            params,
            tenant_id=tenant,
            page_size=self.settings.page_size,
            max_page_size=self.settings.max_page_size,
            strict=strict,
        )
        where = [
            resource.c.tenant_id == tenant,
            resource.c.resource_type == rtype,
            resource.c.deleted.is_(False),
            *q.conditions,
        ]
        if access.compartment_patient is not None:
            where.append(compartment_condition(rtype, access.compartment_patient, tenant))
        if not self._sees_locked():
            where.append(
                resource.c.pk.not_in(
                    select(idx_token.c.resource_pk).where(
                        idx_token.c.tenant_id == tenant,
                        idx_token.c.resource_type == rtype,
                        idx_token.c.param == "_security",
                        idx_token.c.code == LOCK_CODE,
                    )
                )
            )
        total = None
        if q.total or q.summary_count:
            total = self.conn.execute(select(func.count()).select_from(resource).where(*where)).scalar_one()
        matches: list[StoredResource] = []
        if not q.summary_count and q.count > 0:
            rows = self.conn.execute(
                select(resource).where(*where).order_by(*q.order_by, resource.c.pk).limit(q.count).offset(q.offset)
            ).all()
            matches = [_stored(r) for r in rows]
        page = SearchPage(query=q, total=total, matches=matches)
        if q.includes and matches:
            page.included = self._includes(q, matches)
        self._record("search", rtype, detail=_query_text(q.params))
        return page

    def search_all(self, rtype: str, params: list[tuple[str, str]]) -> Iterator[StoredResource]:
        """Every match of a search, page after page (each page is a search of its own, audited)."""
        size = self.settings.max_page_size
        offset = 0
        while True:
            page = self.search(rtype, [*params, ("_count", str(size)), ("_offset", str(offset)), ("_total", "none")])
            yield from page.matches
            if len(page.matches) < size:
                return
            offset += size

    def _includes(self, q: SearchQuery, matches: list[StoredResource]) -> list[StoredResource]:
        tenant = self.principal.tenant_id
        seen = {(m.resource_type, m.id) for m in matches}
        found: list[StoredResource] = []
        for inc in q.includes:
            if inc.reverse:
                targets = select(idx_reference.c.resource_pk).where(
                    idx_reference.c.tenant_id == tenant,
                    idx_reference.c.resource_type == inc.source_type,
                    idx_reference.c.param == inc.param,
                    idx_reference.c.target_id.in_([m.id for m in matches]),
                    or_(idx_reference.c.target_type == q.resource_type, idx_reference.c.target_type.is_(None)),
                )
                candidates = [(inc.source_type, resource.c.pk.in_(targets))]
            else:
                refs = self.conn.execute(
                    select(idx_reference.c.target_type, idx_reference.c.target_id).where(
                        idx_reference.c.resource_pk.in_([m.pk for m in matches]),
                        idx_reference.c.param == inc.param,
                    )
                ).all()
                by_type: dict[str, set[str]] = {}
                for ttype, tid in refs:
                    if ttype and (inc.target_type is None or ttype == inc.target_type):
                        by_type.setdefault(ttype, set()).add(tid)
                candidates = [(t, resource.c.id.in_(sorted(ids))) for t, ids in by_type.items()]
            for ttype, cond in candidates:
                try:
                    access = authorize(self.principal, "read", ttype)
                except Forbidden:
                    continue  # included resources the caller may not see are left out, not an error
                where = [
                    resource.c.tenant_id == tenant,
                    resource.c.resource_type == ttype,
                    resource.c.deleted.is_(False),
                    cond,
                ]
                if access.compartment_patient is not None:
                    where.append(compartment_condition(ttype, access.compartment_patient, tenant))
                for row in self.conn.execute(select(resource).where(*where).limit(self.settings.max_page_size)):
                    if (row.resource_type, row.id) not in seen:
                        seen.add((row.resource_type, row.id))
                        found.append(_stored(row))
                        self._record("read", row.resource_type, row.id, row.version_id, detail="_include")
        return found

    def history(
        self,
        rtype: str | None,
        rid: str | None = None,
        *,
        count: int | None = None,
        offset: int = 0,
        since: datetime | None = None,
    ) -> HistoryPage:
        count = min(count or self.settings.page_size, self.settings.max_page_size)
        conds = [resource_version.c.tenant_id == self.principal.tenant_id]
        if rtype is None:
            if self.principal.role not in ("admin", "system", "integration"):
                raise Forbidden("只有管理员可以查看全库历史", "Only administrators may read the whole-system history")
        else:
            access = self._authorize("history", rtype, rid)
            conds.append(resource_version.c.resource_type == rtype)
            if rid is not None:
                current = self._current(rtype, rid)
                if current is None:
                    raise self._refuse("history", rtype, rid, _not_found(rtype, rid))
                if not self._in_compartment(access, current):
                    raise self._deny_outside_compartment("history", rtype, rid)
                if self._hidden(current.content):  # its earlier versions are locked with it
                    raise self._refuse("history", rtype, rid, _locked(rtype, rid), current.version_id)
                conds.append(resource_version.c.id == rid)
            elif access.compartment_patient is not None:
                raise self._deny_outside_compartment("history", rtype, "*")
        if not self._sees_locked():
            conds.append(~_locked_resource(resource_version).exists())
        if since is not None:
            conds.append(resource_version.c.last_updated >= to_naive_utc(since))
        total = self.conn.execute(select(func.count()).select_from(resource_version).where(*conds)).scalar_one()
        rows = self.conn.execute(
            select(resource_version)
            .where(*conds)
            .order_by(resource_version.c.last_updated.desc(), resource_version.c.version_id.desc())
            .limit(count)
            .offset(offset)
        ).all()
        self._record("history", rtype, rid)
        return HistoryPage(
            total=total,
            versions=[
                StoredResource(r.resource_type, r.id, r.version_id, r.last_updated, r.method == "DELETE", r.content)
                for r in rows
            ],
            methods=[r.method for r in rows],
            offset=offset,
            count=count,
        )

    # --- writes -------------------------------------------------------------------------------------

    def _apply_rules(self, action: str, rtype: str, new: dict | None, old: bytes | dict | None) -> None:
        rules = rules_for(rtype)
        if rules:
            previous = orjson.loads(old) if isinstance(old, bytes) else old
            for rule in rules:
                rule(self, action, new, previous)

    def as_system(self, purpose: str) -> Repository:
        """The same unit of work acting as Xinglin itself, for domain rules that must change resources the
        caller may not write (a patient's booking marks the Slot busy). Audited as such, naming the caller."""
        p = self.principal
        helper = Repository(
            self.conn,
            system_principal(p.tenant_id, p.tenant_code, name=f"{purpose} for {p.label}"[:120]),
            self.settings,
        )
        helper.audit_entries = self.audit_entries
        helper.refusals = self.refusals
        return helper

    def _check_new_content(self, access: Access, rtype: str, rid: str, rows: dict, action: str) -> None:
        if access.compartment_patient is not None and not in_compartment(
            access.compartment_patient, rtype, rid, rows["reference"]
        ):
            raise self._deny_outside_compartment(action, rtype, rid)

    def _write_index(self, resources: list[tuple[int, str, dict]]) -> None:
        """Index rows of (pk, type, extracted rows) resources: one multi-row insert per index table."""
        tenant = self.principal.tenant_id
        index: dict[str, list[dict]] = {kind: [] for kind in INDEX_TABLES}
        for pk, rtype, rows in resources:
            for kind, entries in rows.items():
                for entry in entries:
                    entry.update(resource_pk=pk, tenant_id=tenant, resource_type=rtype)
                index[kind].extend(entries)
        for kind, entries in index.items():
            if entries:
                self.conn.execute(_INSERT_INDEX[kind], entries)

    def _clear_index(self, pk: int) -> None:
        for statement in _CLEAR_INDEX:
            self.conn.execute(statement, {"pk": pk})

    def _version_rows(self, versions: list[tuple[str, str, int, str, bytes | None]], now: datetime) -> None:
        """History rows of (type, id, version, method, content), in one statement."""
        tenant = self.principal.tenant_id
        self.conn.execute(
            _INSERT_VERSION,
            [
                {"tenant_id": tenant, "resource_type": t, "id": i, "version_id": v, "last_updated": now}
                | {"method": m, "content": c}
                for t, i, v, m, c in versions
            ],
        )

    def create(
        self, body: dict, *, rtype: str | None = None, if_none_exist: str | None = None, rid: str | None = None
    ) -> WriteResult:
        rtype = rtype or (body.get("resourceType") if isinstance(body, dict) else None) or ""
        if if_none_exist:
            self._authorize("create", rtype)
            existing = self.find_one(rtype, if_none_exist)
            if existing is not None:
                return WriteResult(existing, created=False)
        return self.create_many([(rtype, body, rid)], client_chosen_id=rid is not None)[0]

    def create_many(
        self, items: list[tuple[str, dict, str | None]], *, client_chosen_id: bool = False
    ) -> list[WriteResult]:
        """Creates resources with a few multi-row statements: the fast path of transactions and imports.

        Each item is (resource type, body, id or None for a new server id). All are validated first, so
        nothing is written unless every one is valid.
        """
        now = utcnow().replace(tzinfo=None)
        prepared = []
        for n, (rtype, body, rid) in enumerate(items):
            try:
                access = self._authorize("create", rtype)
                validate(body, expected_type=rtype)
                rid = rid or new_resource_id()
                doc, content, rows = prepare_document(rtype, body, rid, 1, now)
                self._check_new_content(access, rtype, rid, rows, "create")
                self._apply_rules("create", rtype, doc, None)
            except XinglinError as exc:
                exc.item_index = n  # which item failed, for callers that report positions
                raise
            prepared.append((rtype, rid, content, rows))
        if not prepared:
            return []
        try:
            # A client-chosen id may race another PUT; a savepoint keeps PostgreSQL's transaction usable.
            with self.conn.begin_nested() if client_chosen_id else _nothing():
                pks = self._insert_new(prepared, now)
        except IntegrityError:
            ids = ", ".join(f"{t}/{i}" for t, i, _, _ in prepared[:3])
            raise Conflict(f"{ids} 已存在", f"{ids} already exists") from None
        self.wrote = True
        results = []
        for pk, (rtype, rid, content, _) in zip(pks, prepared, strict=True):
            self._record("create", rtype, rid, 1)
            results.append(WriteResult(StoredResource(rtype, rid, 1, now, False, content, pk), created=True))
        return results

    def _insert_new(self, prepared: list[tuple[str, str, bytes, dict]], now: datetime) -> list[int]:
        """Current rows, history rows and index rows of new (type, id, content, index rows) resources at
        version 1; their primary keys in the same order."""
        tenant = self.principal.tenant_id
        if self.conn.dialect.name == "postgresql":
            statement, params = writes_pg.create_params(tenant, now, prepared)
            pk_of = {(t, i): pk for pk, t, i in self.conn.execute(statement, params)}
            return [pk_of[(t, i)] for t, i, _, _ in prepared]
        pks = (
            self.conn.execute(
                insert(resource).returning(resource.c.pk, sort_by_parameter_order=True),
                [
                    {"tenant_id": tenant, "resource_type": t, "id": i, "version_id": 1, "last_updated": now}
                    | {"deleted": False, "content": c}
                    for t, i, c, _ in prepared
                ],
            )
            .scalars()
            .all()
        )
        self._version_rows([(t, i, 1, "POST", c) for t, i, c, _ in prepared], now)
        self._write_index([(pk, rtype, rows) for pk, (rtype, _, _, rows) in zip(pks, prepared, strict=True)])
        return pks

    def find_one(self, rtype: str, query: str) -> StoredResource | None:
        """The one resource a conditional query matches, None when none does; 412 when several do."""
        params = parse_qsl(query.split("?", 1)[-1], keep_blank_values=True)
        if not params:
            raise BadRequest(
                "If-None-Exist 中没有搜索条件",
                "If-None-Exist has no search criteria",
                element="If-None-Exist",
            )
        page = self.search(rtype, [*params, ("_count", "2")])
        if page.total and page.total > 1:
            raise PreconditionFailed(
                f"条件创建匹配到 {page.total} 个 {rtype}，无法确定",
                f"Conditional create matched {page.total} {rtype} resources",
            )
        return page.matches[0] if page.matches else None

    def update(self, rtype: str, rid: str, body: dict, *, if_match: int | None = None) -> WriteResult:
        access = self._authorize("update", rtype, rid)
        validate_replacement(rtype, rid, body)
        current = self._current(rtype, rid)
        if current is None:
            if if_match is not None:
                exc = PreconditionFailed(
                    f"{rtype}/{rid} 不存在，If-Match 无法满足",
                    f"{rtype}/{rid} does not exist, so If-Match cannot hold",
                )
                raise self._refuse("update", rtype, rid, exc)
            return self.create(body, rtype=rtype, rid=rid)
        if not self._in_compartment(access, current):
            raise self._deny_outside_compartment("update", rtype, rid)
        if if_match is not None and if_match != current.version_id:
            exc = PreconditionFailed(
                f"版本冲突：当前为第 {current.version_id} 版，而请求基于第 {if_match} 版",
                f"Version conflict: {rtype}/{rid} is at version {current.version_id}, not {if_match}",
            )
            raise self._refuse("update", rtype, rid, exc, current.version_id)
        version = current.version_id + 1
        now = utcnow().replace(tzinfo=None)
        doc, content, rows = prepare_document(rtype, body, rid, version, now)
        self._check_new_content(access, rtype, rid, rows, "update")
        self._apply_rules("update", rtype, doc, None if current.deleted else current.content)
        self._replace(current, version, now, content, deleted=False, method="PUT", index_rows=rows)
        self.wrote = True
        self._record("update", rtype, rid, version)
        return WriteResult(StoredResource(rtype, rid, version, now, False, content, current.pk), created=False)

    def _replace(
        self,
        current,
        version: int,
        now: datetime,
        content: bytes | None,
        *,
        deleted: bool,
        method: str,
        index_rows: dict | None = None,
    ) -> None:
        """Moves a resource to a new version: current row, history row, old index rows out, new ones in.

        Optimistic concurrency: only the writer that saw the current version may replace it.
        """
        params = {
            "pk": current.pk,
            "seen": current.version_id,
            "version": version,
            "now": now,
            "deleted": deleted,
            "content": content,
            "tenant": self.principal.tenant_id,
            "rtype": current.resource_type,
            "rid": current.id,
            "method": method,
        }
        if self.conn.dialect.name == "postgresql":
            kinds, index_params = writes_pg.index_params([(current.resource_type, current.id, index_rows or {})])
            statement = writes_pg.replace_statement(kinds)
            replaced = self.conn.execute(statement, params | index_params).scalar_one()  # one round trip
        else:
            replaced = self.conn.execute(
                _REPLACE_CURRENT, params | {"at_pk": current.pk, "new_deleted": deleted, "new_content": content}
            ).rowcount
            if replaced == 1:
                self._clear_index(current.pk)
                self._version_rows([(current.resource_type, current.id, version, method, content)], now)
                if index_rows:
                    self._write_index([(current.pk, current.resource_type, index_rows)])
        if replaced != 1:
            exc = PreconditionFailed(
                f"{current.resource_type}/{current.id} 刚被其他请求修改，请重新读取后再试",
                f"{current.resource_type}/{current.id} was changed by another request; read it again and retry",
            )
            action = "delete" if method == "DELETE" else "update"
            raise self._refuse(action, current.resource_type, current.id, exc, current.version_id)

    def delete(self, rtype: str, rid: str) -> StoredResource | None:
        access = self._authorize("delete", rtype, rid)
        current = self._current(rtype, rid)
        if current is None:
            raise self._refuse("delete", rtype, rid, _not_found(rtype, rid))
        if not self._in_compartment(access, current):
            raise self._deny_outside_compartment("delete", rtype, rid)
        if current.deleted:
            self._record("delete", rtype, rid, current.version_id, detail="already deleted")
            return None
        self._apply_rules("delete", rtype, None, current.content)
        version = current.version_id + 1
        now = utcnow().replace(tzinfo=None)
        self._replace(current, version, now, None, deleted=True, method="DELETE")
        self.wrote = True
        self._record("delete", rtype, rid, version)
        return StoredResource(rtype, rid, version, now, True, None, current.pk)

    # --- audit records as AuditEvent ----------------------------------------------------------------

    def audit_events(
        self,
        *,
        count: int,
        offset: int = 0,
        after: datetime | None = None,
        before: datetime | None = None,
        entity: str | None = None,
        principal: str | None = None,
        action: str | None = None,
        action_code: str | None = None,
        outcome: str | None = None,
    ) -> tuple[int, list[dict]]:
        """The tenant's audit records, newest first; `after` inclusive, `before` exclusive; `action` is the
        interaction (read, create ...), `action_code` its AuditEvent.action code (C R U D E)."""
        self._authorize("search", "AuditEvent")
        conds = [audit_record.c.tenant_id == self.principal.tenant_id]
        if after is not None:
            conds.append(audit_record.c.recorded_at >= to_naive_utc(after))
        if before is not None:
            conds.append(audit_record.c.recorded_at < to_naive_utc(before))
        if action is not None:
            conds.append(audit_record.c.action == action)
        if action_code is not None:
            conds.append(audit_record.c.action.in_([a for a, c in audit.ACTION_CODES.items() if c == action_code]))
        if outcome is not None:
            conds.append(audit_record.c.outcome == outcome)
        if entity:
            etype, _, eid = entity.partition("/")
            conds.append(audit_record.c.resource_type == etype)
            if eid:
                conds.append(audit_record.c.resource_id == eid)
        if principal:
            conds.append(audit_record.c.principal == principal)
        total = self.conn.execute(select(func.count()).select_from(audit_record).where(*conds)).scalar_one()
        rows = self.conn.execute(
            select(audit_record)
            .where(*conds)
            .order_by(audit_record.c.recorded_at.desc(), audit_record.c.seq.desc())
            .limit(count)
            .offset(offset)
        ).all()
        self._record("search", "AuditEvent")
        return total, [audit.to_audit_event(r) for r in rows]

    def audit_event(self, lane: int, seq: int) -> dict:
        self._authorize("read", "AuditEvent", f"{lane}-{seq}")
        row = self.conn.execute(
            select(audit_record).where(
                audit_record.c.lane == lane,
                audit_record.c.seq == seq,
                audit_record.c.tenant_id == self.principal.tenant_id,
            )
        ).first()
        if row is None:
            raise _not_found("AuditEvent", f"{lane}-{seq}")
        self._record("read", "AuditEvent", f"{lane}-{seq}")
        return audit.to_audit_event(row)


@contextmanager
def _nothing():
    yield


def prepare_document(rtype: str, body: dict, rid: str, version_id: int, now: datetime) -> tuple[dict, bytes, dict]:
    """A validated body as stored at `version_id`: the document (our id and meta), its JSON and its index rows."""
    meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    doc = {
        "resourceType": rtype,
        "id": rid,
        "meta": {"versionId": str(version_id), "lastUpdated": fhir_instant(now), **meta},
    }
    doc.update((k, v) for k, v in body.items() if k not in ("resourceType", "id", "meta"))
    return doc, orjson.dumps(doc), extract(doc)


def validate_replacement(rtype: str, rid: str, body: dict) -> None:
    """A PUT body: valid R4 content of `rtype` carrying the id of the URL."""
    validate(body, expected_type=rtype)
    if body.get("id") != rid:
        raise BadRequest(
            f"资源中的 id（{body.get('id')}）与地址中的 id（{rid}）不一致",
            f"The resource id ({body.get('id')}) does not match the id in the URL ({rid})",
            element=f"{rtype}.id",
        )


def _gone(rtype: str, rid: str) -> Gone:
    return Gone(f"{rtype}/{rid} 已被删除", f"{rtype}/{rid} has been deleted")


def _locked(rtype: str, rid: str) -> Gone:
    return Gone(
        f"{rtype}/{rid} 已应患者删除请求锁定，仅依法保存，不再显示",
        f"{rtype}/{rid} was locked after the patient's deletion request; it is kept only as the law requires",
    )


def _locked_resource(table):
    """The locked current row of the resource a row of `table` (resource_version) belongs to."""
    return (
        select(resource.c.pk)
        .join(idx_token, idx_token.c.resource_pk == resource.c.pk)
        .where(
            resource.c.tenant_id == table.c.tenant_id,
            resource.c.resource_type == table.c.resource_type,
            resource.c.id == table.c.id,
            idx_token.c.param == "_security",
            idx_token.c.code == LOCK_CODE,
        )
    )


def _sees_locked(principal: Principal) -> bool:
    return principal.role in ("admin", "system")


# Statements of the per-resource path, built once: building them per call costs more than running them on
# SQLite.
_CURRENT = select(resource).where(
    resource.c.tenant_id == bindparam("tenant"),
    resource.c.resource_type == bindparam("rtype"),
    resource.c.id == bindparam("rid"),
)
_CURRENT_LOCKED = _CURRENT.with_for_update()
_CLEAR_INDEX = [delete(t).where(t.c.resource_pk == bindparam("pk")) for t in INDEX_TABLES.values()]
_INSERT_INDEX = {kind: insert(t) for kind, t in INDEX_TABLES.items()}
_INSERT_VERSION = insert(resource_version)
_REPLACE_CURRENT = (
    update(resource)
    .where(resource.c.pk == bindparam("at_pk"), resource.c.version_id == bindparam("seen"))
    .values(
        version_id=bindparam("version"),
        last_updated=bindparam("now"),
        deleted=bindparam("new_deleted"),
        content=bindparam("new_content"),
    )
)


# Store._read_in_one_statement: the current, visible row and its audit record (chained like any other; the
# version number is taken from the row, so the hashed body is completed in SQL after `body_head`).
_READ_AUDITED_PG = text(
    f"""WITH {audit.COMMIT_MODE_CTE}, r AS (
    SELECT pk, resource_type, id, version_id, last_updated, deleted, content FROM resource
    WHERE tenant_id = :tenant_id AND resource_type = :rtype AND id = :rid AND NOT deleted
      AND (:sees_locked OR position(:mark IN content) = 0)
), {
        audit.chained_insert_ctes(
            version="r.version_id",
            body="(:body_head || r.version_id || '}')",
            source=", r",
            guard="AND EXISTS (SELECT FROM r)",
        )
    }
SELECT r.*, (SELECT lane FROM moved) AS audited FROM r"""
)


async def _fetch_one(pool, statement, params: dict):
    """The first row of a statement run on a connection of the asynchronous pool (autocommit), or None; None
    too when a one-statement write aborted itself because every audit lane was busy."""
    async with pool.connection() as conn:
        try:
            cursor = await conn.execute(writes_pg.for_psycopg(statement), params)
        except psycopg.errors.DivisionByZero:
            return None
        return await cursor.fetchone()


def _stored(row) -> StoredResource:
    return StoredResource(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, row.content, row.pk)


def _query_text(params: list[tuple[str, str]]) -> str:
    # Parameter names only: values may be identifiers or names, which do not belong in the audit text.
    return "&".join(sorted({k for k, _ in params}))[:500]
