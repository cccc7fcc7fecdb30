"""A patient registers, consents, asks triage, books and requests a follow-up; a physician accepts and
prescribes; a pharmacist approves, dispenses and moves the delivery on; the patient sends a photo and follows
the delivery — in Chinese, then the same pages in English. An administrator adds a user who then signs in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.portal.conftest import PASSWORD, add_staff, phone, resident_id
from xinglin.core.clock import utcnow
from xinglin.scheduling import service as scheduling
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store

pytestmark = pytest.mark.slow
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da6364f8ffbf1e0005fe02fea70d3ee40000000049454e44ae426082"
)
ZLKM = "https://xinglin.dev/CodeSystem/zlkm"
CARDIO = {"coding": [{"system": ZLKM, "code": "03.04", "display": "心血管内科"}]}


def _clinic(database, hospital) -> dict:
    """A cardiologist with a schedule and two weeks of morning slots, a physician and a pharmacist account."""
    store = Store(database.engine, database.settings)
    with store.unit_of_work(system_principal(hospital.id, hospital.code)) as repo:
        doctor = repo.create({"resourceType": "Practitioner", "name": [{"text": "李医生"}]}).resource.id
        pharmacist = repo.create({"resourceType": "Practitioner", "name": [{"text": "王药师"}]}).resource.id
        schedule = repo.create(
            {
                "resourceType": "Schedule",
                "active": True,
                "serviceType": [CARDIO],
                "specialty": [CARDIO],
                "actor": [{"reference": f"Practitioner/{doctor}", "display": "李医生"}],
            }
        ).resource.id
        template = scheduling.parse_template(
            {d: ["08:00-12:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        )
        today = utcnow().date()
        scheduling.generate_slots(repo, schedule, today + timedelta(days=1), today + timedelta(days=14), template)
    return {
        "store": store,
        "doctor": doctor,
        "physician": add_staff(database, hospital, "physician", practitioner_id=doctor),
        "pharmacist": add_staff(database, hospital, "pharmacist", practitioner_id=pharmacist),
    }


def _earlier_visit(store: Store, hospital, patient_id: str) -> str:
    """The in-person outpatient visit the follow-up is about, recorded by hospital staff."""
    with store.unit_of_work(system_principal(hospital.id, hospital.code, name="his-import")) as repo:
        return repo.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "type": [{"text": "高血压门诊"}],
                "serviceType": CARDIO,
                "subject": {"reference": f"Patient/{patient_id}"},
                "period": {"start": "2025-03-01T09:00:00+08:00", "end": "2025-03-01T09:20:00+08:00"},
            }
        ).resource.id


def _sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("手机号码或工作人员用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_patient_to_pharmacist_in_chinese_then_english(browser, portal_server, hospital, database):
    clinic = _clinic(database, hospital)
    base = f"{portal_server}/t/{hospital.code}"
    number, mobile = resident_id("19800314", "male"), phone()
    patient_ctx = browser.new_context(locale="zh-CN", viewport={"width": 412, "height": 900})
    page = patient_ctx.new_page()

    # --- register (real name, ID checked) and consent -----------------------------------------------------
    page.goto(f"{base}/register")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.get_by_label("真实姓名").fill("赵建国")
    page.get_by_label("居民身份证号码").fill(number[:-1] + ("0" if number[-1] != "0" else "1"))  # a typo first
    page.get_by_label("出生日期").fill("1980-03-14")
    page.get_by_label("男", exact=True).check()
    page.get_by_label("手机号码").fill(mobile)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("#f-password_confirm").fill(PASSWORD)
    page.get_by_role("button", name="注册").last.click()
    assert page.locator("#e-f-id_number").inner_text() == "身份证号码校验位不正确，请核对号码"
    page.get_by_label("居民身份证号码").fill(number)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("#f-password_confirm").fill(PASSWORD)
    page.get_by_role("button", name="注册").last.click()
    page.wait_for_url(re.compile(r"/consent\?"))
    assert "账户已创建" in page.content()
    page.locator("#f-treatment-yes").check()
    page.locator("#f-online-consultation-yes").check()
    page.locator("#f-research-no").check()
    page.get_by_role("button", name="保存我的选择").click()
    page.wait_for_url(re.compile(r"/consents"))
    assert page.get_by_role("button", name="撤回同意").count() == 2

    # --- which department? then book there ---------------------------------------------------------------
    page.goto(f"{base}/triage")
    page.get_by_label("请描述您的症状").fill("最近血压偏高，头晕两周")
    page.get_by_label("年龄").fill("45")
    page.get_by_role("button", name="获取建议").click()
    assert "机器生成的分诊建议" in page.content()
    page.locator("a.button", has_text="预约").click()
    page.wait_for_url(re.compile(r"/book\?dept="))
    page.get_by_label("科室").select_option("03.04")
    page.get_by_role("button", name="查看医生").click()
    page.get_by_role("link", name="李医生").click()
    page.locator('input[name="slot"]').first.check()
    page.get_by_role("button", name="预约该时间").click()
    page.wait_for_url(re.compile(r"/appointments"))
    assert "预约成功" in page.content()
    assert "已预约" in page.content()

    # --- online follow-up of the earlier in-person visit --------------------------------------------------
    patient_id = re.search(r'"patient":"([^"]+)"', _token_claims(patient_ctx)).group(1)
    _earlier_visit(clinic["store"], hospital, patient_id)
    page.goto(f"{base}/followup")
    page.get_by_label("我的病情有变化或出现了新症状").check()
    page.get_by_role("button", name="申请在线复诊").click()
    assert "病情发生变化，不能在线复诊" in page.locator(".error-box").inner_text()  # refused with the reason
    page.get_by_label("我的病情有变化或出现了新症状").uncheck()
    page.get_by_label("您想咨询医生什么？").fill("血压控制复诊，想调整用药")
    page.get_by_role("button", name="申请在线复诊").click()
    page.wait_for_url(re.compile(r"/consults/"))
    consult_url = page.url
    assert "等待医生接诊" in page.content()

    # --- the physician re-authenticates, accepts and prescribes ------------------------------------------
    doctor_ctx = browser.new_context(locale="zh-CN")
    doc = doctor_ctx.new_page()
    _sign_in(doc, base, clinic["physician"])
    doc.wait_for_url(re.compile(r"/staff/queue"))
    doc.locator(f'a[href$="{consult_url.rsplit("/", 1)[1]}"]').first.click()
    doc.get_by_label("密码").fill(PASSWORD)
    doc.get_by_role("button", name="认证并接诊").click()
    assert "进行中" in doc.content()
    doc.get_by_label("您的消息").fill("您好，请继续监测血压。")
    doc.get_by_role("button", name="发送").click()
    doc.get_by_label("药品及规格").fill("氨氯地平片 5mg")
    doc.get_by_label("用法用量").fill("每日一次，每次一片，口服")
    doc.get_by_label("数量").fill("28")
    doc.get_by_label("单位").fill("片")
    doc.get_by_role("button", name="签名并开具").click()
    assert "待药师审核" in doc.content()

    # --- the pharmacist approves --------------------------------------------------------------------------
    pharm_ctx = browser.new_context(locale="zh-CN")
    ph = pharm_ctx.new_page()
    _sign_in(ph, base, clinic["pharmacist"])
    ph.wait_for_url(re.compile(r"/staff/prescriptions"))
    assert "氨氯地平片 5mg" in ph.content()
    ph.get_by_role("button", name="审核通过").click()
    assert "处方已审核通过" in ph.content()

    # --- the patient sees it approved, in Chinese, and sends a photo of their readings ---------------------
    page.goto(consult_url)
    assert "药师已审核通过" in page.content()
    assert "您好，请继续监测血压。" in page.content()
    page.get_by_label("添加照片（可选）").set_input_files(
        files=[{"name": "bp.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_label("照片内容说明（供无法查看图片的人阅读）").fill("一周血压记录")
    page.get_by_role("button", name="发送").click()
    photo = page.get_by_role("img", name="一周血压记录")
    photo.wait_for()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 1  # served to the signed-in patient

    # --- the pharmacist dispenses and moves the delivery on; the patient follows the steps -------------------
    ph.get_by_role("button", name="发药", exact=True).click()
    assert "已发药，配送中" in ph.content()
    ph.get_by_label("新的配送状态").select_option("in-transit")
    ph.get_by_label("备注，如快递单号").fill("SF1234567890")
    ph.get_by_role("button", name="更新配送状态").click()
    assert "配送状态已更新。" in ph.content()
    page.goto(consult_url)
    steps = page.locator("ol.delivery-steps li")
    assert steps.count() == 4
    assert page.locator('ol.delivery-steps li[aria-current="step"] .label').inner_text() == "配送中"
    assert page.locator("ol.delivery-steps li.done").count() == 3
    page.screenshot(path="/tmp/portal-zh.png", full_page=True)

    # --- and once in English ------------------------------------------------------------------------------
    page.goto(consult_url + "?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Approved by the pharmacist" in page.content()
    for path, text in (
        ("/", "Welcome to Test hospital"),
        ("/appointments", "My appointments"),
        ("/records", "Laboratory results"),
        ("/consents", "Withdraw consent"),
        ("/followup", "Request a follow-up consult"),
    ):
        page.goto(base + path)  # the language is remembered
        assert text in page.content(), path
        assert page.locator("html").get_attribute("lang") == "en"
    page.goto(f"{base}/records")
    assert "Approved by the pharmacist" in page.content()
    assert page.locator('ol.delivery-steps li[aria-current="step"] .label').inner_text() == "On the way"
    page.screenshot(path="/tmp/portal-en.png", full_page=True)
    for ctx in (patient_ctx, doctor_ctx, pharm_ctx):
        ctx.close()


def _token_claims(context) -> str:
    import base64

    token = next(c["value"] for c in context.cookies() if c["name"] == "xl_session")
    payload = token.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().replace(" ", "")


def test_registration_form_is_keyboard_usable(browser, portal_server, hospital):
    ctx = browser.new_context(locale="en")
    page = ctx.new_page()
    page.goto(f"{portal_server}/t/{hospital.code}/register?lang=en")
    reached = []
    for _ in range(60):
        page.keyboard.press("Tab")
        info = page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                return {id: e.id, tag: e.tagName, type: e.type || '', text: (e.innerText || '').trim(),
                        outline: s.outlineStyle, width: s.outlineWidth}; }"""
        )
        reached.append(info)
        if info["tag"] == "BUTTON" and info["text"] == "Register":
            break
    ids = [r["id"] for r in reached]
    for field in ("f-name", "f-id_number", "f-birth_date", "f-phone", "f-password", "f-password_confirm"):
        assert field in ids, (field, ids)
    assert "f-sex-male" in ids or "f-sex-female" in ids
    assert reached[-1]["tag"] == "BUTTON" and reached[-1]["text"] == "Register"
    # the order follows the form, and the focused element shows a visible outline
    assert ids.index("f-name") < ids.index("f-id_number") < ids.index("f-phone") < ids.index("f-password")
    assert reached[-1]["outline"] != "none" and reached[-1]["width"] != "0px"
    # a radio group is operated with the arrow keys
    page.focus("#f-sex-male")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    assert page.is_checked("#f-sex-female")
    ctx.close()


def test_admin_adds_a_user_who_then_signs_in(browser, portal_server, hospital, database):
    base = f"{portal_server}/t/{hospital.code}"
    ctx = browser.new_context(locale="zh-CN")
    page = ctx.new_page()
    _sign_in(page, base, add_staff(database, hospital, "admin"))
    page.wait_for_url(re.compile(r"/admin"))
    page.get_by_role("link", name="用户管理").first.click()
    page.wait_for_url(re.compile(r"/admin/users"))
    # the form is reachable with the keyboard, in order
    page.focus("#f-username")
    reached = []
    for _ in range(6):
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.innerText"))
        page.keyboard.press("Tab")
    assert reached[:5] == ["f-username", "f-display_name", "f-role", "f-practitioner", "f-password"]
    page.get_by_label("用户名").fill("nurse.chen")
    page.get_by_label("姓名").fill("陈护士")
    page.locator("#f-role").select_option("nurse")
    page.get_by_label("初始密码").fill("short")
    page.get_by_role("button", name="添加用户").click()
    assert "密码至少 8 位" in page.locator(".error-box").inner_text()
    page.get_by_label("初始密码").fill(PASSWORD)
    page.get_by_role("button", name="添加用户").click()
    page.wait_for_url(re.compile(r"msg=user-added"))
    assert "用户已添加。" in page.content()
    assert page.get_by_role("link", name="nurse.chen").count() == 1

    other = browser.new_context(locale="zh-CN").new_page()
    _sign_in(other, base, "nurse.chen")
    other.wait_for_url(re.compile(r"/t/[^/]+/?$"))
    assert other.get_by_role("button", name="退出登录").count() == 1
    other.context.close()
    ctx.close()
