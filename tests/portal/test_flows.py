"""Booking, follow-up refusals and the staff pages through the TestClient."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.portal.conftest import add_staff, new_portal
from tests.portal.test_pages import _encounter, _patient_id
from xinglin.core.clock import utcnow
from xinglin.scheduling import service as scheduling
from xinglin.security.principal import system_principal

ZLKM = "https://xinglin.dev/CodeSystem/zlkm"
CARDIO = {"coding": [{"system": ZLKM, "code": "03.04"}]}


@pytest.fixture
def clinic(portal):
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        doctor = repo.create({"resourceType": "Practitioner", "name": [{"text": "李医生"}]}).resource.id
        schedule = repo.create(
            {
                "resourceType": "Schedule",
                "active": True,
                "specialty": [CARDIO],
                "actor": [{"reference": f"Practitioner/{doctor}", "display": "李医生"}],
            }
        ).resource.id
        template = scheduling.parse_template(
            {d: ["08:00-09:30"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        )
        today = utcnow().date()
        scheduling.generate_slots(repo, schedule, today + timedelta(days=1), today + timedelta(days=2), template)
    return {"doctor": doctor, "schedule": schedule}


def _slots(html: str) -> list[str]:
    return re.findall(r'name="slot" value="([^"]+)"', html)


def test_book_cancel_and_reschedule(portal, clinic, app, hospital, database):
    portal.register()
    assert "心血管内科" in portal.get("/book").text
    assert "李医生" in portal.get("/book?dept=03.04").text
    page = portal.get(f"/book?dept=03.04&schedule={clinic['schedule']}")
    free = _slots(page.text)
    assert len(free) == 6
    r = portal.post(f"/book?dept=03.04&schedule={clinic['schedule']}", {"slot": free[0]})
    assert r.status_code == 303
    listing = portal.get("/appointments").text
    assert "已预约" in listing
    appt = re.search(r"/appointments/([^/]+)/cancel", listing).group(1)
    assert free[0] not in _slots(portal.get(f"/book?dept=03.04&schedule={clinic['schedule']}").text)

    # somebody else cannot take the same slot: 409 with a clear message
    other = new_portal(app, hospital, database)
    assert other.register()[1].status_code == 303
    r = other.post(f"/book?dept=03.04&schedule={clinic['schedule']}", {"slot": free[0]})
    assert r.status_code == 409
    assert "该号源已被预约，请选择其他时间" in r.text

    r = portal.post(f"/appointments/{appt}/reschedule", {"slot": free[1]})
    assert r.status_code == 303
    still_free = _slots(portal.get(f"/book?dept=03.04&schedule={clinic['schedule']}").text)
    assert free[0] in still_free and free[1] not in still_free
    r = portal.post(f"/appointments/{appt}/cancel", {}, form_page="/appointments")
    assert r.status_code == 303
    assert "已取消" in portal.get("/appointments").text
    assert free[1] in _slots(portal.get(f"/book?dept=03.04&schedule={clinic['schedule']}").text)


def test_follow_up_refusals_are_shown_with_their_reason(portal):
    data, _ = portal.register()
    # no consent to online consultation yet
    r = portal.post("/followup", {"department": "03.04", "basis": ""})
    assert r.status_code == 403
    assert "患者尚未同意“互联网复诊”" in r.text
    portal.post("/consent", {"treatment": "yes", "online-consultation": "yes", "research": "no"})
    # a first visit: no earlier in-person visit chosen
    r = portal.post("/followup", {"department": "03.04", "basis": ""})
    assert r.status_code == 422
    assert "互联网诊疗仅限复诊" in r.text
    visit = _encounter(portal, _patient_id(portal, data), "高血压门诊")
    portal.get("/?lang=en")
    r = portal.post("/followup", {"department": "03.04", "basis": f"Encounter/{visit}", "changed": "yes"})
    assert "The condition has changed, so it cannot be followed up online" in r.text
    r = portal.post("/followup", {"department": "03.04", "basis": f"Encounter/{visit}", "reason": "复诊"})
    assert r.status_code == 303
    assert "Waiting for a doctor" in portal.get(r.headers["location"].removeprefix(portal.base)).text


def test_staff_pages_by_role_and_pharmacist_rejection(portal, clinic, app, hospital, database):
    data, _ = portal.register()
    portal.post("/consent", {"treatment": "yes", "online-consultation": "yes", "research": "no"})
    visit = _encounter(portal, _patient_id(portal, data), "高血压门诊")
    consult = portal.post("/followup", {"department": "03.04", "basis": f"Encounter/{visit}"}).headers["location"]
    cid = consult.rsplit("/", 1)[1]

    assert portal.get("/staff/queue").status_code == 403  # a patient is not staff
    doctor = new_portal(app, hospital, database)
    doctor.sign_in(add_staff(database, hospital, "physician", practitioner_id=clinic["doctor"]))
    assert cid in doctor.get("/staff/queue?dept=03.04").text
    r = doctor.post(f"/consults/{cid}/accept", {"password": "wrong-password"}, form_page=f"/consults/{cid}")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text
    r = doctor.post(f"/consults/{cid}/accept", {"password": "correct-horse-battery"}, form_page=f"/consults/{cid}")
    assert r.status_code == 303
    r = doctor.post(
        f"/consults/{cid}/prescribe", {"medication": "地西泮片", "dosage": "每晚一片"}, form_page=f"/consults/{cid}"
    )
    assert r.status_code == 422 or r.status_code == 403
    assert "精神" in r.text or "麻醉" in r.text  # psychotropic drugs are refused online
    r = doctor.post(
        f"/consults/{cid}/prescribe",
        {"medication": "氨氯地平片 5mg", "dosage": "每日一次"},
        form_page=f"/consults/{cid}",
    )
    assert r.status_code == 303

    pharmacist = new_portal(app, hospital, database)
    pharmacist.sign_in(add_staff(database, hospital, "pharmacist"))
    queue = pharmacist.get("/staff/prescriptions").text
    rx = re.search(r"/prescriptions/([^/]+)/reject", queue).group(1)
    r = pharmacist.post(f"/prescriptions/{rx}/reject", {"reason": ""}, form_page="/staff/prescriptions")
    assert r.status_code == 400
    r = pharmacist.post(f"/prescriptions/{rx}/reject", {"reason": "剂量需调整"}, form_page="/staff/prescriptions")
    assert r.status_code == 303
    seen = portal.get(f"/consults/{cid}").text
    assert "药师已驳回" in seen and "剂量需调整" in seen

    r = doctor.post(f"/consults/{cid}/close", {"summary": "血压稳定，继续服药"}, form_page=f"/consults/{cid}")
    assert r.status_code == 303
    assert "已结束" in portal.get(f"/consults/{cid}").text


def test_admin_branding_and_slot_generation(portal, clinic, app, hospital, database):
    admin = new_portal(app, hospital, database)
    admin.sign_in(add_staff(database, hospital, "admin"))
    r = admin.post("/admin/branding", {"name_zh": "杏林总院", "primary_color": "#zzzzzz"}, form_page="/admin")
    assert r.status_code == 400
    assert "primary_color 应为 #RRGGBB 颜色" in r.text
    r = admin.post(
        "/admin/branding",
        {"name_zh": "杏林总院", "name_en": "Xinglin General", "primary_color": "#1d4ed8", "accent_color": "#f59e0b"},
        form_page="/admin",
    )
    assert r.status_code == 303
    assert "杏林总院" in portal.get("/").text and "--primary:#1d4ed8" in portal.get("/").text

    first = utcnow().date() + timedelta(days=30)
    form = {
        "schedule": clinic["schedule"],
        "first_day": first.isoformat(),
        "last_day": first.isoformat(),
        "minutes": "20",
    }
    r = admin.post("/admin/slots", {**form, "mon": "8点到12点"}, form_page="/admin")
    assert r.status_code == 400
    r = admin.post(
        "/admin/slots",
        {**form, **{d: "08:00-09:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
        form_page="/admin",
    )
    assert r.status_code == 303
    assert "made=3" in r.headers["location"]
    assert portal.get("/admin", follow_redirects=False).status_code == 303  # signed out: to the sign-in page
    portal.register()
    assert portal.get("/admin").status_code == 403  # a patient is not an admin
