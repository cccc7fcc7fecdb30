"""Tenants and users: creating them, signing in, managing staff accounts.

Each change is one function that works on the caller's connection (`with engine.begin() as conn:`), so the
change and its audit record are committed, or rolled back, together. `actor` is either a name (the command
line, registration) or the Principal of the signed-in administrator, whose role and address are audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from xinglin.core.clock import utcnow
from xinglin.core.config import Settings
from xinglin.core.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound
from xinglin.security.passwords import DUMMY_HASH, hash_password, verify_password
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal
from xinglin.store import audit
from xinglin.tenancy.models import ROLES, tenant, user_account

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_PASSWORD = 8
# Roles an administrator gives staff accounts: patients register themselves (linked to their Patient) and
# integration clients sign in with client credentials only, so neither is created from the admin pages.
STAFF_ROLES = tuple(r for r in ROLES if r not in ("patient", "integration"))


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


def _admin_entry(actor: str | Principal, action: str, tenant_id: int | None, detail: str) -> audit.AuditEntry:
    if isinstance(actor, Principal):
        return audit.AuditEntry(
            principal=actor.label,
            role=actor.role,
            action=action,
            tenant_id=tenant_id,
            client_address=actor.client_address,
            detail=detail,
            purpose="HOPERAT",
        )
    return audit.AuditEntry(
        principal=actor, role="system", action=action, tenant_id=tenant_id, detail=detail, purpose="HOPERAT"
    )


def check_password(password: str) -> None:
    """The password rules every account follows (creation and reset)."""
    if len(password) < MIN_PASSWORD:
        raise BadRequest(
            f"密码至少 {MIN_PASSWORD} 位", f"Password must be at least {MIN_PASSWORD} characters", element="password"
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
    actor: str | Principal = "cli",
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
    check_password(password)
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


# --- user management (the admin pages) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    role: str
    display_name: str
    patient_id: str | None
    practitioner_id: str | None
    active: bool
    locked_until: datetime | None
    created_at: datetime

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > _now()


def _user_info(row) -> UserInfo:
    return UserInfo(
        row.id,
        row.username,
        row.role,
        row.display_name or "",
        row.patient_id,
        row.practitioner_id,
        bool(row.active),
        row.locked_until,
        row.created_at,
    )


def _require_admin(actor: str | Principal, t: Tenant) -> None:
    """A signed-in actor must be an administrator of this very tenant (names stand for operators and jobs)."""
    if isinstance(actor, Principal) and not (actor.role in ("admin", "system") and actor.tenant_id == t.id):
        raise Forbidden("只有本租户的管理员可以管理用户", "Only this tenant's administrators may manage its users")


def _user_row(conn: Connection, t: Tenant, username: str):
    row = conn.execute(
        select(user_account).where(user_account.c.tenant_id == t.id, user_account.c.username == username)
    ).first()
    if row is None:
        raise NotFound(f"用户 {username} 不存在", f"User {username} does not exist", element="username")
    return row


def list_users(
    conn: Connection,
    tenant_code: str,
    *,
    role: str | None = None,
    query: str | None = None,
    limit: int = 200,
    actor: str | Principal = "cli",
) -> list[UserInfo]:
    """A tenant's accounts (staff first, then by user name), optionally of one role or matching a name."""
    t = get_tenant(conn, tenant_code)
    _require_admin(actor, t)
    stmt = select(user_account).where(user_account.c.tenant_id == t.id)
    if role:
        if role not in ROLES:
            raise BadRequest(
                f"未知角色 {role}（可选：{', '.join(ROLES)}）",
                f"Unknown role {role} (one of {', '.join(ROLES)})",
                element="role",
            )
        stmt = stmt.where(user_account.c.role == role)
    if query and query.strip():
        pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            user_account.c.username.like(pattern, escape="\\") | user_account.c.display_name.like(pattern, escape="\\")
        )
    stmt = stmt.order_by((user_account.c.role == "patient").asc(), user_account.c.username).limit(limit)
    return [_user_info(row) for row in conn.execute(stmt)]


def get_user(conn: Connection, tenant_code: str, username: str) -> UserInfo:
    return _user_info(_user_row(conn, get_tenant(conn, tenant_code), username))


def add_staff_user(
    conn: Connection,
    tenant_code: str,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str = "",
    practitioner_id: str | None = None,
    actor: str | Principal,
) -> UserInfo:
    """An administrator adds a staff account (any role but patient and integration); audited."""
    t = get_tenant(conn, tenant_code)
    _require_admin(actor, t)
    if role not in STAFF_ROLES:
        raise BadRequest(
            f"工作人员角色应为 {'、'.join(STAFF_ROLES)} 之一",
            f"A staff role must be one of {', '.join(STAFF_ROLES)}",
            element="role",
        )
    create_user(
        conn,
        tenant_code,
        username,
        password,
        role,
        practitioner_id=practitioner_id or None,
        display_name=display_name.strip()[:200],
        actor=actor,
    )
    return get_user(conn, tenant_code, username)


def set_user_active(
    conn: Connection, tenant_code: str, username: str, active: bool, *, actor: str | Principal
) -> UserInfo:
    """Disables an account (it can no longer sign in; its sessions end) or enables it again; audited."""
    t = get_tenant(conn, tenant_code)
    _require_admin(actor, t)
    row = _user_row(conn, t, username)
    if not active and isinstance(actor, Principal) and actor.user_id == row.id:
        raise Conflict("不能停用自己的账户", "You cannot disable your own account", element="username")
    if bool(row.active) != active:
        conn.execute(update(user_account).where(user_account.c.id == row.id).values(active=active))
        detail = f"user {username} {'enabled' if active else 'disabled'}"
        audit.append(conn, [_admin_entry(actor, "update", t.id, detail)])
    return get_user(conn, tenant_code, username)


def reset_password(
    conn: Connection, tenant_code: str, username: str, new_password: str, *, actor: str | Principal
) -> UserInfo:
    """Sets a new password (same rules as at creation) and lifts a lockout; audited."""
    t = get_tenant(conn, tenant_code)
    _require_admin(actor, t)
    row = _user_row(conn, t, username)
    check_password(new_password)
    conn.execute(
        update(user_account)
        .where(user_account.c.id == row.id)
        .values(password_hash=hash_password(new_password), failed_logins=0, locked_until=None)
    )
    audit.append(conn, [_admin_entry(actor, "update", t.id, f"user {username} password reset")])
    return get_user(conn, tenant_code, username)


def is_active_user(conn: Connection, user_id: int) -> bool:
    """Whether an account still exists and is enabled (a disabled user's session ends at its next request)."""
    found = conn.execute(select(user_account.c.active).where(user_account.c.id == user_id)).scalar_one_or_none()
    return bool(found)
