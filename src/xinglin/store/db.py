"""Database engine and the one MetaData every table belongs to."""

from __future__ import annotations

import fcntl
import os
import threading
from functools import lru_cache

from sqlalchemy import Engine, MetaData, create_engine, event

from xinglin.core.config import get_settings

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    size = pool_size or get_settings().db_pool_size
    return create_engine(url, pool_size=size, max_overflow=size, pool_pre_ping=False)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and ignores it for SELECTs; take control so that
    # every unit of work is a real transaction and writers queue (BEGIN IMMEDIATE) instead of failing.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    database = engine.url.database
    writers = _WriterQueue(database + ".lock") if database and database != ":memory:" else None

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        if writers is not None:
            writers.enter()
            conn.info["xinglin_writer"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _on_end(conn)
            raise

    # Fired as the transaction ends (just before COMMIT or ROLLBACK runs); at most once per transaction
    # even when a failed commit is followed by a rollback.
    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):  # pragma: no cover
        if writers is not None and conn.info.pop("xinglin_writer", False):
            writers.leave()


class _WriterQueue:
    """Writers of one SQLite file take turns here before BEGIN IMMEDIATE: threads of this process on a lock,
    processes on an flock of a file beside the database. Both wake the next writer the moment the last one
    finishes, where SQLite's own busy handler would poll with sleeps of up to 100 ms (the tail latency of
    every request, since every request writes its audit record). Re-entrant per thread, as SQLite would
    have refused the nested transaction anyway."""

    def __init__(self, path: str):
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def enter(self) -> None:
        self._lock.acquire()
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1

    def leave(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def analyze(engine: Engine) -> None:
    """Refreshes the planner's statistics; worth running after a bulk load (autovacuum does it later)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
