"""Tenants and users: creating them, signing in. Each change is audited in its own transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from xinglin.core.clock import utcnow
from xinglin.core.config import Settings
from xinglin.core.errors import BadRequest, Conflict, NotAuthenticated, NotFound
from xinglin.security.passwords import DUMMY_HASH, hash_password, verify_password
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal
from xinglin.store import audit
from xinglin.tenancy.models import ROLES, tenant, user_account

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    code: str
    name_zh: str
    name_en: str
    logo_url: str | None
    primary_color: str
    accent_color: str
    locale: str
    time_zone: str


def _now():
    return utcnow().replace(tzinfo=None)


def _admin_entry(actor: str, action: str, tenant_id: int | None, detail: str) -> audit.AuditEntry:
    return audit.AuditEntry(
        principal=actor, role="system", action=action, tenant_id=tenant_id, detail=detail, purpose="HOPERAT"
    )


def create_tenant(
    conn: Connection,
    code: str,
    name_zh: str,
    *,
    name_en: str = "",
    logo_url: str | None = None,
    primary_color: str = "#0f766e",
    accent_color: str = "#b45309",
    locale: str = "zh-CN",
    time_zone: str = "Asia/Shanghai",
    actor: str = "cli",
) -> Tenant:
    if not _CODE.match(code):
        raise BadRequest(
            "租户代码只能包含小写字母、数字和连字符（2–64 位）",
            "Tenant code must be 2-64 lower-case letters, digits or hyphens",
            element="code",
        )
    if not name_zh.strip():
        raise BadRequest("租户名称不能为空", "Tenant name must not be empty", element="name")
    for field, color in (("primary_color", primary_color), ("accent_color", accent_color)):
        if not _COLOR.match(color):
            raise BadRequest(f"{field} 应为 #RRGGBB 颜色", f"{field} must be a #RRGGBB colour", element=field)
    try:
        tid = conn.execute(
            insert(tenant)
            .values(
                code=code,
                name_zh=name_zh.strip(),
                name_en=name_en.strip() or name_zh.strip(),
                logo_url=logo_url,
                primary_color=primary_color,
                accent_color=accent_color,
                locale=locale,
                time_zone=time_zone,
                active=True,
                created_at=_now(),
            )
            .returning(tenant.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"租户 {code} 已存在", f"Tenant {code} already exists", element="code") from None
    audit.append(conn, [_admin_entry(actor, "create", tid, f"tenant {code}")])
    return get_tenant(conn, code)


def get_tenant(conn: Connection, code: str) -> Tenant:
    row = conn.execute(select(tenant).where(tenant.c.code == code, tenant.c.active.is_(True))).first()
    if row is None:
        raise NotFound(f"租户 {code} 不存在", f"Tenant {code} does not exist", element="tenant")
    return Tenant(
        row.id,
        row.code,
        row.name_zh,
        row.name_en,
        row.logo_url,
        row.primary_color,
        row.accent_color,
        row.locale,
        row.time_zone,
    )


def list_tenants(conn: Connection) -> list[Tenant]:
    codes = conn.execute(select(tenant.c.code).where(tenant.c.active.is_(True)).order_by(tenant.c.id)).scalars()
    return [get_tenant(conn, c) for c in list(codes)]


def create_user(
    conn: Connection,
    tenant_code: str,
    username: str,
    password: str,
    role: str,
    *,
    patient_id: str | None = None,
    practitioner_id: str | None = None,
    display_name: str = "",
    scopes: str | None = None,
    actor: str = "cli",
) -> int:
    t = get_tenant(conn, tenant_code)
    if role not in ROLES:
        raise BadRequest(
            f"未知角色 {role}（可选：{', '.join(ROLES)}）",
            f"Unknown role {role} (one of {', '.join(ROLES)})",
            element="role",
        )
    if not re.match(r"^[\w.@+-]{2,128}$", username):
        raise BadRequest(
            "用户名应为 2–128 位字母、数字或 ._@+-",
            "Username must be 2-128 letters, digits or ._@+-",
            element="username",
        )
    if len(password) < 8:
        raise BadRequest("密码至少 8 位", "Password must be at least 8 characters", element="password")
    if role == "patient" and not patient_id:
        raise BadRequest(
            "患者用户必须关联一个 Patient（--patient-id）",
            "A patient user must be linked to a Patient (--patient-id)",
            element="patient_id",
        )
    if role != "patient" and patient_id:
        raise BadRequest(
            "只有患者用户可以关联 Patient", "Only patient users are linked to a Patient", element="patient_id"
        )
    try:
        uid = conn.execute(
            insert(user_account)
            .values(
                tenant_id=t.id,
                username=username,
                password_hash=hash_password(password),
                role=role,
                display_name=display_name,
                patient_id=patient_id,
                practitioner_id=practitioner_id,
                scopes=scopes,
                failed_logins=0,
                active=True,
                created_at=_now(),
            )
            .returning(user_account.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"用户 {username} 已存在", f"User {username} already exists", element="username") from None
    audit.append(conn, [_admin_entry(actor, "create", t.id, f"user {username} role {role}")])
    return uid


def authenticate(
    engine: Engine,
    settings: Settings,
    tenant_code: str,
    username: str,
    password: str,
    *,
    client_address: str | None = None,
    clients_only: bool = False,
) -> Principal:
    """Checks a password; counts failures and locks the account after too many.

    The failure bookkeeping and its audit record are committed even though the sign-in fails.
    """
    with engine.begin() as conn:
        outcome = _check_credentials(conn, settings, tenant_code, username, password, client_address, clients_only)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _check_credentials(
    conn: Connection,
    settings: Settings,
    tenant_code: str,
    username: str,
    password: str,
    client_address: str | None,
    clients_only: bool,
) -> Principal | NotAuthenticated:
    failure = NotAuthenticated("用户名或密码错误", "Wrong username or password")
    try:
        t = get_tenant(conn, tenant_code)
    except NotFound:
        verify_password(DUMMY_HASH, password)
        return failure
    row = conn.execute(
        select(user_account).where(user_account.c.tenant_id == t.id, user_account.c.username == username)
    ).first()
    if row is None or not row.active or (clients_only != (row.role == "integration")):
        verify_password(DUMMY_HASH, password)
        return failure
    now = _now()
    entry = audit.AuditEntry(
        principal=f"{row.role}:{username}",
        role=row.role,
        action="login",
        tenant_id=t.id,
        client_address=client_address,
        purpose="HOPERAT",
    )
    if row.locked_until is not None and row.locked_until > now:
        entry.outcome, entry.detail = "denied", "account locked"
        audit.append(conn, [entry])
        minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
        return NotAuthenticated(
            f"登录失败次数过多，账户已锁定，请 {minutes} 分钟后再试",
            f"Too many failed sign-ins; the account is locked for {minutes} more minutes",
        )
    if not verify_password(row.password_hash, password):
        failed = row.failed_logins + 1
        values = {"failed_logins": failed}
        if failed >= settings.lockout_threshold:
            values = {"failed_logins": 0, "locked_until": now + timedelta(minutes=settings.lockout_minutes)}
        conn.execute(update(user_account).where(user_account.c.id == row.id).values(**values))
        entry.outcome, entry.detail = "denied", "wrong password"
        audit.append(conn, [entry])
        return failure
    if row.failed_logins or row.locked_until:
        conn.execute(update(user_account).where(user_account.c.id == row.id).values(failed_logins=0, locked_until=None))
    audit.append(conn, [entry])
    return _principal(t, row, client_address=client_address)


def _principal(t: Tenant, row, *, client_address: str | None, purpose: str = "TREAT") -> Principal:
    scopes = tuple(row.scopes.split()) if row.scopes else ROLE_SCOPES[row.role]
    return Principal(
        tenant_id=t.id,
        tenant_code=t.code,
        username=row.username,
        role=row.role,
        user_id=row.id,
        patient_id=row.patient_id,
        practitioner_id=row.practitioner_id,
        scopes=scopes,
        client_address=client_address,
        purpose=purpose,
    )


def principal_for(
    conn: Connection, tenant_code: str, username: str, *, client_address: str | None = None, purpose: str = "TREAT"
) -> Principal:
    """An existing, active user acting without a password check: for an operator on the command line, who
    vouches for them. Everything done is audited as that user."""
    t = get_tenant(conn, tenant_code)
    row = conn.execute(
        select(user_account).where(
            user_account.c.tenant_id == t.id, user_account.c.username == username, user_account.c.active.is_(True)
        )
    ).first()
    if row is None:
        raise NotFound(
            f"租户 {tenant_code} 中没有用户 {username}",
            f"No user {username} in tenant {tenant_code}",
            element="username",
        )
    return _principal(t, row, client_address=client_address, purpose=purpose)


BRANDING_FIELDS = ("name_zh", "name_en", "logo_url", "primary_color", "accent_color", "locale", "time_zone")


def update_branding(conn: Connection, code: str, changes: dict, *, actor: str = "cli") -> Tenant:
    """Changes a tenant's names, logo, colours, locale or time zone; validated, audited."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    t = get_tenant(conn, code)
    values = {k: v for k, v in changes.items() if k in BRANDING_FIELDS and v is not None}
    for field in ("primary_color", "accent_color"):
        if field in values and not _COLOR.match(values[field]):
            raise BadRequest(f"{field} 应为 #RRGGBB 颜色", f"{field} must be a #RRGGBB colour", element=field)
    if "name_zh" in values and not values["name_zh"].strip():
        raise BadRequest("租户名称不能为空", "Tenant name must not be empty", element="name_zh")
    if "locale" in values and values["locale"] not in ("zh-CN", "zh-TW", "en"):
        raise BadRequest("语言应为 zh-CN、zh-TW 或 en", "locale must be zh-CN, zh-TW or en", element="locale")
    if "time_zone" in values:
        try:
            ZoneInfo(values["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest(
                f"未知时区 {values['time_zone']}", f"Unknown time zone {values['time_zone']}", element="time_zone"
            ) from None
    if values:
        conn.execute(update(tenant).where(tenant.c.id == t.id).values(**values))
        audit.append(conn, [_admin_entry(actor, "update", t.id, "branding " + ",".join(sorted(values)))])
    return get_tenant(conn, code)
