"""Tables of the clinical store: current resources, their history, search indexes, the audit chain.

Resources are kept as the JSON that was validated on write (`content`), so reads return it untouched.
Index tables hold one row per extracted search value and are rewritten in the same transaction as the
resource they describe.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from xinglin.store.db import metadata

PK = BigInteger().with_variant(Integer, "sqlite")  # SQLite only auto-increments INTEGER PRIMARY KEY


def Key(length: int) -> String:
    """A string compared byte-wise (code-point order) on every backend, so B-tree indexes serve prefix and
    range searches and sorting is the same on SQLite and PostgreSQL."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


resource = Table(
    "resource",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenant.id"), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", DateTime(), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("tenant_id", "resource_type", "id"),
    Index("ix_resource_type_updated", "tenant_id", "resource_type", "last_updated"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("tenant_id", Integer, nullable=False, primary_key=True),
    Column("resource_type", String(64), nullable=False, primary_key=True),
    Column("id", String(64), nullable=False, primary_key=True),
    Column("version_id", Integer, nullable=False, primary_key=True),
    Column("last_updated", DateTime(), nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, DELETE
    Column("content", LargeBinary, nullable=True),  # NULL for a deletion
    Index("ix_resource_version_type_updated", "tenant_id", "resource_type", "last_updated"),
)


def _index_table(name: str, *value_columns: Column, lookup: tuple[str, ...]) -> Table:
    return Table(
        name,
        metadata,
        Column("resource_pk", PK, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False),
        Column("tenant_id", Integer, nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *value_columns,
        Index(f"ix_{name}_lookup", "tenant_id", "resource_type", "param", *lookup),
        Index(f"ix_{name}_resource", "resource_pk"),
    )


idx_string = _index_table(
    "idx_string",
    Column("value", Key(512), nullable=False),  # case-folded, full-width folded, for matching
    Column("exact", Key(512), nullable=False),  # as written, for :exact
    lookup=("value",),
)
idx_token = _index_table(
    "idx_token",
    Column("system", Key(256), nullable=True),
    Column("code", Key(256), nullable=False),
    lookup=("code", "system"),
)
idx_date = _index_table(
    "idx_date",
    Column("low", DateTime(), nullable=False),  # the period a partial date covers
    Column("high", DateTime(), nullable=False),
    lookup=("low", "high"),
)
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(256), nullable=False),
    lookup=("target_id", "target_type"),
)
idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=False),
    Column("system", String(256), nullable=True),
    Column("code", String(64), nullable=True),
    lookup=("value",),
)

INDEX_TABLES = {
    "string": idx_string,
    "token": idx_token,
    "date": idx_date,
    "reference": idx_reference,
    "quantity": idx_quantity,
}

# --- audit chain -------------------------------------------------------------------------------------
# Records are spread over a few independent hash chains ("lanes"). A writer locks one free lane's head
# row for the end of its transaction, so concurrent writers rarely wait on each other, yet every lane
# is a gap-free, hash-linked sequence that `xinglin audit verify` can check.

audit_lane = Table(
    "audit_lane",
    metadata,
    Column("lane", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
)

audit_record = Table(
    "audit_record",
    metadata,
    Column("lane", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", DateTime(), nullable=False),
    Column("tenant_id", Integer, nullable=True),
    Column("principal", String(160), nullable=False),
    Column("role", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("resource_type", String(64), nullable=True),
    Column("resource_id", String(64), nullable=True),
    Column("version_id", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("client_address", String(64), nullable=True),
    Column("purpose", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_record_tenant_time", "tenant_id", "recorded_at"),
)

server_setting = Table(
    "server_setting",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
