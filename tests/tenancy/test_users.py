"""User management: each change in the caller's transaction together with its audit record; admins only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from xinglin.core.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound
from xinglin.security.principal import Principal
from xinglin.store.models import audit_record
from xinglin.tenancy import service as tenancy

PASSWORD = "Correct#Horse1"


def _admin(database, hospital, username: str = "root") -> Principal:
    with database.engine.begin() as conn:
        uid = tenancy.create_user(conn, hospital.code, username, PASSWORD, "admin")
    return Principal(hospital.id, hospital.code, username, "admin", user_id=uid, client_address="10.0.0.9")


def _audit_count(database, hospital, detail: str) -> int:
    with database.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(audit_record)
            .where(audit_record.c.tenant_id == hospital.id, audit_record.c.detail == detail)
        ).scalar_one()


def _sign_in(database, hospital, username: str, password: str = PASSWORD):
    return tenancy.authenticate(database.engine, database.settings, hospital.code, username, password)


def test_add_list_disable_enable_reset(database, hospital):
    admin = _admin(database, hospital)
    with database.engine.begin() as conn:
        added = tenancy.add_staff_user(
            conn, hospital.code, "nurse.li", PASSWORD, "nurse", display_name=" 李护士 ", actor=admin
        )
    assert (added.role, added.display_name, added.active, added.locked) == ("nurse", "李护士", True, False)
    with database.engine.connect() as conn:
        listed = tenancy.list_users(conn, hospital.code, actor=admin)
        assert [u.username for u in listed] == ["nurse.li", "root"]
        assert [u.username for u in tenancy.list_users(conn, hospital.code, role="nurse", actor=admin)] == ["nurse.li"]
        assert [u.username for u in tenancy.list_users(conn, hospital.code, query="李", actor=admin)] == ["nurse.li"]
        assert tenancy.list_users(conn, hospital.code, query="%", actor=admin) == []  # wildcards are literal
    with database.engine.begin() as conn:
        assert tenancy.set_user_active(conn, hospital.code, "nurse.li", False, actor=admin).active is False
    with pytest.raises(NotAuthenticated):
        _sign_in(database, hospital, "nurse.li")
    with database.engine.begin() as conn:
        tenancy.set_user_active(conn, hospital.code, "nurse.li", False, actor=admin)  # no change: not audited
        tenancy.set_user_active(conn, hospital.code, "nurse.li", True, actor=admin)
    assert _sign_in(database, hospital, "nurse.li").role == "nurse"
    assert _audit_count(database, hospital, "user nurse.li disabled") == 1
    assert _audit_count(database, hospital, "user nurse.li enabled") == 1
    with database.engine.begin() as conn:
        tenancy.reset_password(conn, hospital.code, "nurse.li", "Another#Horse2", actor=admin)
    assert _sign_in(database, hospital, "nurse.li", "Another#Horse2").username == "nurse.li"
    with database.engine.connect() as conn:
        row = conn.execute(select(audit_record).where(audit_record.c.detail == "user nurse.li password reset")).one()
    assert (row.principal, row.role, row.client_address, row.action) == ("admin:root", "admin", "10.0.0.9", "update")


def test_a_failed_transaction_leaves_neither_the_change_nor_its_audit_record(database, hospital):
    admin = _admin(database, hospital, "root2")
    with database.engine.begin() as conn:
        tenancy.add_staff_user(conn, hospital.code, "pharm.wu", PASSWORD, "pharmacist", actor=admin)
    with pytest.raises(RuntimeError), database.engine.begin() as conn:
        tenancy.reset_password(conn, hospital.code, "pharm.wu", "Rolled#Back99", actor=admin)
        tenancy.set_user_active(conn, hospital.code, "pharm.wu", False, actor=admin)
        raise RuntimeError("the caller fails after the change")
    assert _sign_in(database, hospital, "pharm.wu").role == "pharmacist"  # old password, still enabled
    assert _audit_count(database, hospital, "user pharm.wu password reset") == 0
    assert _audit_count(database, hospital, "user pharm.wu disabled") == 0


def test_rules_and_refusals(database, hospital, other_hospital):
    admin = _admin(database, hospital, "root3")
    with database.engine.begin() as conn:
        with pytest.raises(BadRequest) as e:
            tenancy.add_staff_user(conn, hospital.code, "p.x", PASSWORD, "patient", actor=admin)
        assert e.value.element == "role"
        assert e.value.en == "A staff role must be one of physician, nurse, pharmacist, registrar, admin, researcher"
        with pytest.raises(BadRequest) as e:
            tenancy.add_staff_user(conn, hospital.code, "feed", PASSWORD, "integration", actor=admin)
        assert e.value.element == "role"
        with pytest.raises(BadRequest) as e:
            tenancy.add_staff_user(conn, hospital.code, "dr.x", "short", "physician", actor=admin)
        assert (e.value.element, e.value.zh, e.value.en) == (
            "password",
            "密码至少 8 位",
            "Password must be at least 8 characters",
        )
        with pytest.raises(Conflict) as e:
            tenancy.set_user_active(conn, hospital.code, "root3", False, actor=admin)
        assert e.value.en == "You cannot disable your own account"
        with pytest.raises(NotFound) as e:
            tenancy.reset_password(conn, hospital.code, "ghost", PASSWORD, actor=admin)
        assert e.value.en == "User ghost does not exist"
        with pytest.raises(BadRequest):
            tenancy.reset_password(conn, hospital.code, "root3", "short", actor=admin)
    nurse = Principal(hospital.id, hospital.code, "n", "nurse", user_id=None)
    elsewhere = Principal(other_hospital.id, other_hospital.code, "root", "admin", user_id=None)
    with database.engine.begin() as conn:
        for actor in (nurse, elsewhere):
            with pytest.raises(Forbidden) as e:
                tenancy.add_staff_user(conn, hospital.code, "dr.y", PASSWORD, "physician", actor=actor)
            assert e.value.en == "Only this tenant's administrators may manage its users"
            with pytest.raises(Forbidden):
                tenancy.set_user_active(conn, hospital.code, "root3", False, actor=actor)
            with pytest.raises(Forbidden):
                tenancy.reset_password(conn, hospital.code, "root3", PASSWORD, actor=actor)
            with pytest.raises(Forbidden):
                tenancy.list_users(conn, hospital.code, actor=actor)


def test_a_reset_lifts_a_lockout(database, hospital):
    admin = _admin(database, hospital, "root4")
    with database.engine.begin() as conn:
        tenancy.add_staff_user(conn, hospital.code, "reg.zhao", PASSWORD, "registrar", actor=admin)
    for _ in range(database.settings.lockout_threshold):
        with pytest.raises(NotAuthenticated):
            _sign_in(database, hospital, "reg.zhao", "wrong")
    with database.engine.connect() as conn:
        assert tenancy.get_user(conn, hospital.code, "reg.zhao").locked
    with pytest.raises(NotAuthenticated) as e:
        _sign_in(database, hospital, "reg.zhao")
    assert "locked" in e.value.en
    with database.engine.begin() as conn:
        assert tenancy.reset_password(conn, hospital.code, "reg.zhao", "Fresh#Horse3", actor=admin).locked is False
    assert _sign_in(database, hospital, "reg.zhao", "Fresh#Horse3").username == "reg.zhao"
