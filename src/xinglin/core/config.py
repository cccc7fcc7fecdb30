"""The one settings object. Every knob is an environment variable named XINGLIN_<FIELD>."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XINGLIN_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///xinglin.db",
        description="SQLAlchemy URL; SQLite file in the working directory by default, "
        "postgresql+psycopg://... in production.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that signs access tokens. When unset, one is generated at `db upgrade` and kept "
        "in the database so that every worker shares it.",
    )
    token_ttl_seconds: int = Field(default=3600, ge=60, description="Lifetime of an access token.")
    lockout_threshold: int = Field(default=5, ge=1, description="Failed logins in a row before lockout.")
    lockout_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked.")
    default_tenant: str = Field(default="demo", description="Tenant served at / and /fhir/R4 metadata.")
    audit_lanes: int = Field(
        default=8, ge=1, le=256, description="Independent audit hash chains, so writers do not queue."
    )
    sync_commit_reads: bool = Field(
        default=False,
        description="Flush the audit records of read-only requests to disk before answering (PostgreSQL). "
        "Off: they are committed asynchronously, which a crash can cut short by a fraction of a second.",
    )
    codeset_dir: str = Field(default="codesets", description="Where loaded code sets (coding indexes) are kept.")
    export_dir: str = Field(default="exports", description="Where research data sets are written.")
    page_size: int = Field(default=20, ge=1, description="Default _count of a search.")
    max_page_size: int = Field(default=1000, ge=1, description="Largest _count honoured.")
    public_base_url: str | None = Field(
        default=None, description="Base URL used in links and Location headers (default: from the request)."
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections per worker (PostgreSQL).")
    worker_threads: int = Field(
        default=4, ge=1, le=200, description="Requests a worker process handles at once (its thread pool)."
    )
    ingest_writers: int | None = Field(
        default=None,
        ge=0,
        description="Processes that store ingested chunks while the next is planned (PostgreSQL; default 2 for "
        "files of several chunks, 0 on SQLite).",
    )
    ingest_workers: int | None = Field(
        default=None, ge=1, description="Processes that clean big plain CSV files (default: one, i.e. none extra)."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
