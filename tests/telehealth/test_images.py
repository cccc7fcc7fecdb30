"""Images in consult messages: only the formats every browser shows, recognised by their bytes; read back
through the consult they belong to; and the delivery steps a prescription's status carries."""

from __future__ import annotations

import base64

import pytest
from tests.telehealth.conftest import PNG, error

from xinglin.core.errors import NotFound
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal
from xinglin.telehealth import service

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 16 + b"\xff\xd9").decode()
WEBP = base64.b64encode(
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
).decode()
GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode()


def _send(world, cid, image):
    return world.client.post(f"/api/consults/{cid}/messages", json={"image": image}, headers=world.patient_headers())


@pytest.mark.parametrize("content_type, data", [("image/png", PNG), ("image/jpeg", JPEG), ("image/webp", WEBP)])
def test_jpeg_png_and_webp_are_accepted(world, content_type, data):
    cid = world.in_progress()
    r = _send(world, cid, {"content_type": content_type, "data": data})
    assert r.status_code == 201, r.text
    assert r.json()["payload"][0]["contentAttachment"]["contentType"] == content_type


def test_other_formats_and_disguised_content_are_refused(world):
    cid = world.in_progress()
    r = _send(world, cid, {"content_type": "image/gif", "data": GIF})
    assert error(r) == (
        422,
        "图片类型应为 image/jpeg、image/png、image/webp 之一",
        "The image type must be one of image/jpeg, image/png, image/webp",
    )
    r = _send(world, cid, {"content_type": "image/png", "data": JPEG})
    assert error(r) == (422, "图片内容不是 image/png 格式的图片", "The image data is not a image/png image")
    assert r.json()["issue"][0]["expression"] == ["image.data"]
    html = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    assert _send(world, cid, {"content_type": "image/jpeg", "data": html}).status_code == 422


def test_message_image_is_read_through_its_consult(world):
    cid = world.in_progress()
    msg = _send(world, cid, {"content_type": "image/png", "data": PNG, "title": "血压记录"}).json()
    other_cid = world.in_progress()
    patient = Principal(
        world.hospital.id,
        world.hospital.code,
        "patient-user",
        "patient",
        patient_id=world.patient,
        scopes=ROLE_SCOPES["patient"],
    )
    with world.store.unit_of_work(patient) as repo:
        image = service.message_image(repo, cid, msg["id"])
        assert image == {"content_type": "image/png", "data": base64.b64decode(PNG), "title": "血压记录"}
        for args in ((other_cid, msg["id"], 0), (cid, msg["id"], 1), (cid, "missing", 0)):
            with pytest.raises(NotFound) as e:
                service.message_image(repo, *args)
            assert (e.value.zh, e.value.en) == ("未找到该图片", "The image was not found")


def test_prescription_status_lists_every_delivery_step(world):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]["id"]
    assert world.client.post(f"/api/prescriptions/{rx}/approve", headers=world.pharmacist()).status_code == 200
    assert world.client.post(f"/api/prescriptions/{rx}/dispense", headers=world.pharmacist()).status_code == 201
    seen = world.client.get(f"/api/prescriptions/{rx}", headers=world.patient_headers()).json()["delivery"]
    assert seen["next"] == ["shipped", "in-transit", "delivered"]
    assert [(s["status"], s["done"], s["current"]) for s in seen["steps"]] == [
        ("preparing", True, True),
        ("shipped", False, False),
        ("in-transit", False, False),
        ("delivered", False, False),
    ]
    assert seen["steps"][0]["at"] and seen["steps"][1]["at"] is None
    r = world.client.post(
        f"/api/prescriptions/{rx}/delivery", json={"status": "in-transit"}, headers=world.pharmacist()
    )
    assert r.status_code == 200
    seen = world.client.get(f"/api/prescriptions/{rx}", headers=world.patient_headers()).json()["delivery"]
    assert [s["done"] for s in seen["steps"]] == [True, True, True, False]  # a skipped step counts as passed
    assert [s["status"] for s in seen["steps"] if s["current"]] == ["in-transit"]
    assert seen["next"] == ["delivered"]
