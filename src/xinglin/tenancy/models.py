"""Tables of tenants (hospitals or groups) and their users."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from xinglin.store.db import metadata

ROLES = (
    "patient",
    "physician",
    "nurse",
    "pharmacist",
    "registrar",
    "admin",
    "researcher",
    "integration",
)

tenant = Table(
    "tenant",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False, server_default=""),
    Column("logo_url", Text, nullable=True),
    Column("primary_color", String(16), nullable=False, server_default="#0f766e"),
    Column("accent_color", String(16), nullable=False, server_default="#b45309"),
    Column("locale", String(16), nullable=False, server_default="zh-CN"),
    Column("time_zone", String(64), nullable=False, server_default="Asia/Shanghai"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", DateTime(), nullable=False),
)

user_account = Table(
    "user_account",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenant.id"), nullable=False),
    Column("username", String(128), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("patient_id", String(64), nullable=True),
    Column("practitioner_id", String(64), nullable=True),
    Column("scopes", Text, nullable=True),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(), nullable=True),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", DateTime(), nullable=False),
    UniqueConstraint("tenant_id", "username"),
)
