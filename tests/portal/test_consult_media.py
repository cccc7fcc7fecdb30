"""Consult pages: images in messages (upload checked by telehealth, served only to those who may see the
consult) and the delivery steps the patient follows while the pharmacist moves them on."""

from __future__ import annotations

import re

import pytest

from tests.portal.conftest import PASSWORD, add_staff, new_portal
from tests.portal.test_pages import _encounter, _patient_id
from xinglin.security.principal import system_principal
from xinglin.telehealth.models import MAX_IMAGE_BYTES

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da6364f8ffbf1e0005fe02fea70d3ee40000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture
def consult(portal, app, hospital, database):
    """A consult accepted by its physician: (patient portal, doctor portal, consult id)."""
    h = hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        doctor_record = repo.create({"resourceType": "Practitioner", "name": [{"text": "李医生"}]}).resource.id
    data, _ = portal.register()
    portal.post("/consent", {"treatment": "yes", "online-consultation": "yes", "research": "no"})
    visit = _encounter(portal, _patient_id(portal, data), "高血压门诊")
    cid = portal.post("/followup", {"department": "03.04", "basis": f"Encounter/{visit}"}).headers["location"]
    cid = cid.rsplit("/", 1)[1]
    doctor = new_portal(app, hospital, database)
    doctor.sign_in(add_staff(database, hospital, "physician", practitioner_id=doctor_record))
    r = doctor.post(f"/consults/{cid}/accept", {"password": PASSWORD}, form_page=f"/consults/{cid}")
    assert r.status_code == 303
    return portal, doctor, cid


def _send(who, cid: str, data: dict, files: dict | None = None):
    page = who.get(f"/consults/{cid}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return who.client.post(
        f"{who.base}/consults/{cid}/message",
        data={"csrf": token, **data},
        files=files or {"image": ("", b"", "application/octet-stream")},  # a form with no file chosen
        follow_redirects=False,
    )


def test_a_patient_sends_an_image_that_only_those_in_the_consult_see(consult, app, hospital, database):
    patient, doctor, cid = consult
    form = patient.get(f"/consults/{cid}").text
    assert 'enctype="multipart/form-data"' in form
    assert '<label for="f-image">添加照片（可选）</label>' in form
    assert 'accept="image/jpeg,image/png,image/webp"' in form
    assert "JPEG、PNG 或 WebP 格式，不超过 5 MB" in form
    assert '<label for="f-image_title">' in form

    r = _send(
        patient, cid, {"text": "这是血压记录", "image_title": "血压记录表"}, {"image": ("bp.png", PNG, "image/png")}
    )
    assert r.status_code == 303, r.text
    r = _send(patient, cid, {}, {"image": ("photo.jpg", JPEG, "image/jpeg")})  # an image alone, no description
    assert r.status_code == 303, r.text

    page = doctor.get(f"/consults/{cid}").text
    assert "data:image" not in page  # images are served by address, never inlined
    srcs = re.findall(r'<img src="([^"]+)" alt="([^"]+)" class="msg-img"', page)
    assert [alt for _, alt in srcs] == ["血压记录表", "患者发送的图片"]
    assert all(re.fullmatch(rf"/t/{hospital.code}/consults/{cid}/messages/[^/]+/image\?n=0", s) for s, _ in srcs)
    assert "这是血压记录" in page
    png_url = srcs[0][0]

    for viewer in (patient, doctor):
        r = viewer.client.get(png_url)
        assert r.status_code == 200
        assert r.content == PNG
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "private, no-store"
    assert patient.client.get(srcs[1][0]).content == JPEG

    # not for another patient, not for anyone signed out, and only images of this consult
    other = new_portal(app, hospital, database)
    other.register()
    r = other.client.get(png_url)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert f"无权访问 Encounter/{cid}：不属于您本人的记录" in r.text
    r = new_portal(app, hospital, database).client.get(png_url, follow_redirects=False)
    assert r.status_code == 303 and "/signin" in r.headers["location"]
    message_id = png_url.split("/messages/")[1].split("/")[0]
    r = patient.get(f"/consults/{cid}/messages/{message_id}/image?n=1")
    assert r.status_code == 404 and "未找到该图片" in r.text
    r = patient.get(f"/consults/{cid}/messages/no-such-message/image")
    assert r.status_code == 404 and "未找到该图片" in r.text

    # the doctor's image is described as the doctor's
    assert _send(doctor, cid, {}, {"image": ("x.png", PNG, "image/png")}).status_code == 303
    assert 'alt="医生发送的图片"' in patient.get(f"/consults/{cid}").text


def test_image_checks_are_telehealths(consult):
    patient, _, cid = consult
    r = _send(patient, cid, {"text": "看看"}, {"image": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 422
    assert "图片类型应为 image/jpeg、image/png、image/webp 之一" in r.text
    r = _send(patient, cid, {}, {"image": ("fake.png", b"<svg onload=alert(1)>", "image/png")})
    assert r.status_code == 422
    assert "图片内容不是 image/png 格式的图片" in r.text
    big = PNG + b"\0" * (MAX_IMAGE_BYTES + 1 - len(PNG))
    r = _send(patient, cid, {}, {"image": ("big.png", big, "image/png")})
    assert r.status_code == 422
    assert "图片不能超过 5 MB" in r.text
    huge = PNG + b"\0" * (MAX_IMAGE_BYTES + 2 * 1024 * 1024)
    r = _send(patient, cid, {}, {"image": ("huge.png", huge, "image/png")})
    assert r.status_code == 413  # refused before the upload is read
    assert "提交的内容过大，请发送较小的文件。" in r.text
    r = _send(patient, cid, {"text": "  "})
    assert r.status_code == 400
    assert "消息内容为空：请填写文字（text）或上传图片（image）" in r.text
    en = patient.client.post(
        f"{patient.base}/consults/{cid}/message?lang=en",
        data={"csrf": patient.client.cookies.get("xl_csrf")},
        files={"image": ("notes.txt", b"hello", "text/plain")},
        follow_redirects=False,
    )
    assert en.status_code == 422
    assert "The image type must be one of image/jpeg, image/png, image/webp" in en.text
    assert "<img" not in patient.get(f"/consults/{cid}").text.split('id="h-msgs"')[1].split("</section>")[0]


def _prescribed_and_dispensed(consult, app, hospital, database):
    patient, doctor, cid = consult
    r = doctor.post(
        f"/consults/{cid}/prescribe",
        {"medication": "氨氯地平片 5mg", "dosage": "每日一次", "quantity": "28", "unit": "片"},
        form_page=f"/consults/{cid}",
    )
    assert r.status_code == 303
    pharmacist = new_portal(app, hospital, database)
    pharmacist.sign_in(add_staff(database, hospital, "pharmacist"))
    rx = re.search(r"/prescriptions/([^/]+)/approve", pharmacist.get("/staff/prescriptions").text).group(1)
    r = pharmacist.post(f"/prescriptions/{rx}/delivery", {"status": "shipped"}, form_page="/staff/prescriptions")
    assert r.status_code == 409 and "该处方尚未发药，没有配送记录" in r.text
    assert pharmacist.post(f"/prescriptions/{rx}/approve", {}, form_page="/staff/prescriptions").status_code == 303
    assert patient.get("/records").text.count('class="delivery-steps"') == 0  # approved, not dispensed yet
    assert pharmacist.post(f"/prescriptions/{rx}/dispense", {}, form_page="/staff/prescriptions").status_code == 303
    return patient, pharmacist, cid, rx


def _current_step(html: str) -> str:
    return re.search(
        r'aria-current="step">\s*<span class="mark" aria-hidden="true">.</span>\s*'
        r'<span class="label">([^<]+)</span>',
        html,
    ).group(1)


def test_the_patient_follows_the_delivery_the_pharmacist_moves_on(consult, app, hospital, database):
    patient, pharmacist, cid, rx = _prescribed_and_dispensed(consult, app, hospital, database)
    queue = pharmacist.get("/staff/prescriptions").text
    section = queue.split('id="h-delivering"')[1]
    assert "氨氯地平片 5mg" in section
    assert f'<label for="f-status-{rx}">新的配送状态</label>' in section
    assert f'<label for="f-note-{rx}">' in section
    options = re.findall(r'<option value="([^"]+)">', section.split(f'id="f-status-{rx}"')[1].split("</select>")[0])
    assert options == ["shipped", "in-transit", "delivered"]

    for page in (patient.get(f"/consults/{cid}").text, patient.get("/records").text):
        steps = page.split('class="delivery-steps"')[1].split("</ol>")[0]
        assert re.findall(r'<span class="label">([^<]+)</span>', steps) == ["已发药", "已发货", "配送中", "已签收"]
        assert _current_step(page) == "已发药"
        assert steps.count("（已完成）") == 1 and steps.count("（未完成）") == 3

    r = pharmacist.post(
        f"/prescriptions/{rx}/delivery", {"status": "shipped", "note": "顺丰 SF123"}, form_page="/staff/prescriptions"
    )
    assert r.status_code == 303 and r.headers["location"].endswith("/staff/prescriptions?msg=delivery")
    assert "配送状态已更新。" in pharmacist.get("/staff/prescriptions?msg=delivery").text
    assert _current_step(patient.get(f"/consults/{cid}").text) == "已发货"
    r = pharmacist.post(f"/prescriptions/{rx}/delivery", {"status": "preparing"}, form_page="/staff/prescriptions")
    assert r.status_code == 409
    assert "配送状态已是“已发货”，不能改为“备药中”" in r.text
    r = pharmacist.post(f"/prescriptions/{rx}/delivery", {"status": "lost"}, form_page="/staff/prescriptions")
    assert r.status_code == 400
    assert "配送状态应为 preparing、shipped、in-transit、delivered 之一" in r.text
    r = patient.post(f"/prescriptions/{rx}/delivery", {"status": "delivered"}, form_page="/records")
    assert r.status_code == 403  # only the pharmacy moves a delivery on

    for step in ("in-transit", "delivered"):
        r = pharmacist.post(f"/prescriptions/{rx}/delivery", {"status": step}, form_page="/staff/prescriptions")
        assert r.status_code == 303
    records = patient.get("/records").text
    assert _current_step(records) == "已签收"
    assert records.split('class="delivery-steps"')[1].split("</ol>")[0].count("（已完成）") == 4
    assert "氨氯地平片 5mg" not in pharmacist.get("/staff/prescriptions").text.split('id="h-delivering"')[1]
    english = patient.get(f"/consults/{cid}?lang=en").text
    assert _current_step(english) == "Delivered" and "On the way" in english and "(done)" in english


def _follow_up(who, data: dict, files: dict):
    page = who.get("/followup")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return who.client.post(f"{who.base}/followup", data={"csrf": token, **data}, files=files, follow_redirects=False)


def test_a_follow_up_based_on_an_uploaded_record_of_a_visit_elsewhere(portal, app, hospital, database):
    portal.register()
    portal.post("/consent", {"treatment": "yes", "online-consultation": "yes", "research": "no"})
    form = portal.get("/followup").text
    assert 'enctype="multipart/form-data"' in form
    assert "在其他医院就诊过：上传该次就诊病历的照片" in form
    assert '<label for="f-record-description">是哪次就诊的病历？（医院、日期、诊断）</label>' in form

    no_description = _follow_up(
        portal, {"basis": "upload", "department": "03.04"}, {"record": ("r.png", PNG, "image/png")}
    )
    assert no_description.status_code == 422
    assert "请说明这是哪次就诊的病历（医院、日期、诊断）" in no_description.text
    no_photo = _follow_up(
        portal,
        {"basis": "upload", "department": "03.04", "record_description": "市一院 2026-10-08 高血压"},
        {"record": ("", b"", "application/octet-stream")},
    )
    assert no_photo.status_code == 422
    assert "请上传既往就诊病历的照片" in no_photo.text
    not_an_image = _follow_up(
        portal,
        {"basis": "upload", "department": "03.04", "record_description": "市一院 2026-10-08 高血压"},
        {"record": ("r.png", b"%PDF-1.4 not a png", "image/png")},
    )
    assert not_an_image.status_code == 422
    with portal.store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        assert repo.search("DocumentReference", [("_summary", "count")]).total == 0  # nothing half-written

    r = _follow_up(
        portal,
        {"basis": "upload", "department": "03.04", "record_description": "市一院 2026-10-08 高血压"},
        {"record": ("r.png", PNG, "image/png")},
    )
    assert r.status_code == 303
    cid = r.headers["location"].rsplit("/", 1)[1]
    with portal.store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        consult = repo.read("Encounter", cid).as_dict()
        basis = next(e["valueReference"]["reference"] for e in consult["extension"] if "valueReference" in e)
        assert basis.startswith("DocumentReference/")
        doc = repo.read("DocumentReference", basis.split("/")[1]).as_dict()
    assert doc["description"] == "市一院 2026-10-08 高血压"
    assert doc["subject"] == consult["subject"]
    attachment = doc["content"][0]["attachment"]
    assert (attachment["contentType"], attachment["size"]) == ("image/png", len(PNG))
