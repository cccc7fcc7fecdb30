"""Database engine and the one MetaData every table belongs to."""

from __future__ import annotations

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

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
