"""Admin pages for users: list, add a staff member, disable/enable, reset a password (audited, admins only)."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from tests.portal.conftest import PASSWORD, add_staff, new_portal
from xinglin.security.principal import system_principal
from xinglin.store.models import audit_record


def _audit(database, hospital, detail: str) -> list:
    with database.engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_record).where(audit_record.c.tenant_id == hospital.id, audit_record.c.detail == detail)
            )
        )


def _admin(app, hospital, database):
    admin = new_portal(app, hospital, database)
    name = add_staff(database, hospital, "admin")
    assert admin.sign_in(name).status_code == 303
    return admin, name


def _practitioner(portal) -> str:
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        return repo.create({"resourceType": "Practitioner", "name": [{"text": "周医生"}]}).resource.id


def test_admin_lists_and_adds_a_staff_user_who_then_signs_in(portal, app, hospital, database):
    admin, admin_name = _admin(app, hospital, database)
    doctor_record = _practitioner(portal)
    page = admin.get("/admin/users")
    assert page.status_code == 200
    assert admin_name in page.text and "管理员" in page.text and "正常" in page.text
    assert "周医生" in page.text  # offered as the real-name record to link
    assert f'href="/t/{hospital.code}/admin/users"' in admin.get("/admin").text
    for name in ("username", "password", "display_name"):
        assert f'<label for="f-{name}">' in page.text
    assert '<label for="f-role">' in page.text and '<label for="f-practitioner">' in page.text
    assert '<option value="patient"' not in page.text.split('id="f-role"')[1].split("</select>")[0]

    username = "dr-" + secrets.token_hex(3)
    form = {"username": username, "display_name": "周明", "role": "physician", "practitioner": doctor_record}
    r = admin.post("/admin/users", {**form, "password": "short"}, form_page="/admin/users")
    assert r.status_code == 400
    assert "密码至少 8 位" in r.text and 'aria-invalid="true"' in r.text
    r = admin.post("/admin/users", {**form, "role": "patient", "password": PASSWORD}, form_page="/admin/users")
    assert r.status_code == 400
    assert "工作人员角色应为 physician、nurse、pharmacist、registrar、admin、researcher 之一" in r.text
    r = admin.post(
        "/admin/users", {**form, "practitioner": "no-such-id", "password": PASSWORD}, form_page="/admin/users"
    )
    assert r.status_code == 400
    assert "所选医务人员不存在" in r.text
    r = admin.post("/admin/users", {**form, "username": "a b", "password": PASSWORD}, form_page="/admin/users")
    assert r.status_code == 400
    assert "用户名应为 2–128 位字母、数字或 ._@+-" in r.text

    r = admin.post("/admin/users", {**form, "password": PASSWORD}, form_page="/admin/users")
    assert r.status_code == 303
    assert r.headers["location"] == f"/t/{hospital.code}/admin/users?msg=user-added"
    listed = admin.get("/admin/users?msg=user-added")
    assert "用户已添加。" in listed.text and username in listed.text and "周明" in listed.text
    r = admin.post("/admin/users", {**form, "password": PASSWORD}, form_page="/admin/users")
    assert r.status_code == 409
    assert f"用户 {username} 已存在" in r.text

    # audited in the same transaction, naming the administrator
    [entry] = _audit(database, hospital, f"user {username} role physician")
    assert entry.principal == f"admin:{admin_name}" and entry.role == "admin" and entry.action == "create"

    # the new physician signs in and lands on the consult queue
    doctor = new_portal(app, hospital, database)
    r = doctor.sign_in(username)
    assert r.status_code == 303 and r.headers["location"] == f"/t/{hospital.code}/staff/queue"
    assert doctor.get("/staff/queue").status_code == 200

    # filters, and the page in English
    only = admin.get("/admin/users?role=physician&lang=en")
    assert only.status_code == 200
    assert username in only.text and admin_name not in only.text.split("<tbody>")[1]
    assert "Add a staff member" in only.text and "Physician" in only.text
    assert username in admin.get(f"/admin/users?q={username[3:]}").text


def test_disable_enable_and_reset_a_password(portal, app, hospital, database):
    admin, admin_name = _admin(app, hospital, database)
    name = add_staff(database, hospital, "pharmacist")
    pharmacist = new_portal(app, hospital, database)
    assert pharmacist.sign_in(name).status_code == 303
    assert pharmacist.get("/staff/prescriptions").status_code == 200

    page = admin.get(f"/admin/users/{name}")
    assert page.status_code == 200 and "停用账户" in page.text and '<label for="f-password">' in page.text
    r = admin.post(f"/admin/users/{name}/disable", {}, form_page=f"/admin/users/{name}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/t/{hospital.code}/admin/users/{name}?msg=user-disabled"
    shown = admin.get(f"/admin/users/{name}?msg=user-disabled").text
    assert "用户已停用，不能再登录。" in shown and "已停用" in shown and "启用账户" in shown
    assert len(_audit(database, hospital, f"user {name} disabled")) == 1

    # a disabled user cannot sign in, and their open session ends
    r = new_portal(app, hospital, database).sign_in(name)
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = pharmacist.get("/staff/prescriptions", follow_redirects=False)
    assert r.status_code == 303 and "/signin" in r.headers["location"]

    r = admin.post(f"/admin/users/{name}/enable", {}, form_page=f"/admin/users/{name}")
    assert r.status_code == 303 and r.headers["location"].endswith("?msg=user-enabled")
    assert len(_audit(database, hospital, f"user {name} enabled")) == 1
    assert new_portal(app, hospital, database).sign_in(name).status_code == 303

    # an administrator cannot lock themselves out
    r = admin.post(f"/admin/users/{admin_name}/disable", {}, form_page=f"/admin/users/{admin_name}")
    assert r.status_code == 409 and "不能停用自己的账户" in r.text

    # three wrong passwords lock the account; a reset sets a new password and lifts the lock
    stranger = new_portal(app, hospital, database)
    for _ in range(3):
        assert stranger.sign_in(name, "wrong-password").status_code == 401
    assert "已锁定" in admin.get("/admin/users?role=pharmacist").text
    r = admin.post(f"/admin/users/{name}/password", {"password": "1234567"}, form_page=f"/admin/users/{name}")
    assert r.status_code == 400 and "密码至少 8 位" in r.text
    r = admin.post(f"/admin/users/{name}/password", {"password": "new-horse-battery"}, form_page=f"/admin/users/{name}")
    assert r.status_code == 303 and r.headers["location"].endswith("?msg=password-reset")
    [entry] = _audit(database, hospital, f"user {name} password reset")
    assert entry.principal == f"admin:{admin_name}" and entry.role == "admin"
    assert stranger.sign_in(name, PASSWORD).status_code == 401
    assert stranger.sign_in(name, "new-horse-battery").status_code == 303

    assert admin.get("/admin/users/nobody-here").status_code == 404
    r = admin.post("/admin/users/nobody-here/password", {"password": PASSWORD}, form_page="/admin/users")
    assert r.status_code == 404 and "用户 nobody-here 不存在" in r.text


def test_only_admins_manage_users(portal, app, hospital, database):
    physician = new_portal(app, hospital, database)
    physician.sign_in(add_staff(database, hospital, "physician"))
    assert physician.get("/admin/users").status_code == 403
    name = add_staff(database, hospital, "pharmacist")
    r = physician.post(f"/admin/users/{name}/disable", {}, form_page="/staff/queue")
    assert r.status_code == 403 and "您无权访问此页面。" in r.text
    assert portal.get("/admin/users", follow_redirects=False).status_code == 303  # signed out: sign in first

    admin, _ = _admin(app, hospital, database)
    admin.get("/admin/users")
    r = admin.client.post(
        f"/t/{hospital.code}/admin/users/{name}/disable", data={"csrf": "forged"}, follow_redirects=False
    )
    assert r.status_code == 403  # CSRF
    assert "表单已失效或并非从本站提交，请返回后重试。" in r.text
    assert new_portal(app, hospital, database).sign_in(name).status_code == 303  # still enabled
