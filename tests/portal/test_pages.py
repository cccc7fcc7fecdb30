"""Portal pages through the TestClient: language, branding, registration, consent, sign-in, CSRF, privacy."""

from __future__ import annotations

import re
from pathlib import Path

from tests.portal.conftest import PASSWORD, csrf_of, new_portal, resident_id
from xinglin.portal import i18n, service
from xinglin.privacy import consent
from xinglin.security.principal import system_principal
from xinglin.tenancy import service as tenancy


def test_chinese_by_default_and_english_on_request(portal):
    r = portal.get("/")
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in r.text
    assert "欢迎来到测试医院" in r.text
    assert "登录" in r.text
    r = portal.get("/?lang=en")
    assert '<html lang="en">' in r.text
    assert "Welcome to Test hospital" in r.text
    assert portal.client.cookies.get("xl_lang") == "en"
    # remembered by the cookie
    assert '<html lang="en">' in portal.get("/signin").text
    assert '<html lang="zh-CN">' in portal.get("/signin?lang=zh-CN").text
    assert '<html lang="zh-CN">' in portal.get("/register").text


def test_unknown_tenant_is_404(client):
    assert client.get("/t/no-such-hospital/").status_code == 404


def test_branding_colours_on_every_page_with_readable_text(portal, database):
    with database.engine.begin() as conn:
        tenancy.update_branding(
            conn, portal.hospital.code, {"primary_color": "#ffd54f", "accent_color": "#1e3a8a", "name_zh": "杏林医院"}
        )
    for path in ("/", "/signin", "/register", "/triage"):
        html = portal.get(path).text
        assert "--primary:#ffd54f" in html
        assert "--on-primary:#111111" in html  # dark text on a light yellow
        assert "杏林医院" in html
    link = re.search(r"--link:(#[0-9a-f]{6})", html).group(1)
    assert service.contrast(link, "#ffffff") >= 4.5  # the yellow is darkened for links on white
    assert service.contrast("#111111", "#ffd54f") >= 4.5


def test_contrast_helpers():
    assert service.readable_text("#ffffff") == "#111111"
    assert service.readable_text("#0f766e") == "#ffffff"
    assert round(service.contrast("#000000", "#ffffff"), 1) == 21.0
    assert service.accessible_on("#0f766e") == "#0f766e"  # already readable: unchanged


def test_resident_id_checksum():
    assert service.check_resident_id("11010519491231002X", "1949-12-31", "female") == []
    assert service.id_check_char("11010519491231002") == "X"
    errors = service.check_resident_id("110101199005170021", None, None)
    assert [e.message for e in errors] == ["The check character of the ID number is wrong; please check the number"]


def test_registration_errors_next_to_the_field_in_both_languages(portal):
    _, r = portal.register(id_number="110101199005170021")  # wrong check character (X expected)
    assert r.status_code == 422
    assert re.search(r'<p class="error" id="e-f-id_number">身份证号码校验位不正确，请核对号码</p>', r.text)
    assert 'aria-invalid="true"' in r.text
    assert 'value="王小明"' in r.text  # what was typed is kept
    portal.get("/?lang=en")
    _, r = portal.register(id_number="110101199005170021")
    assert (
        '<p class="error" id="e-f-id_number">The check character of the ID number is wrong; please check the number</p>'
        in r.text
    )


def test_birth_date_and_sex_must_match_the_id_number(portal):
    number = resident_id("19900517", "female")
    _, r = portal.register(id_number=number, birth_date="1990-05-18", sex="male")
    assert r.status_code == 422
    assert '<p class="error" id="e-f-birth_date">出生日期与身份证号码不一致</p>' in r.text
    assert '<p class="error" id="e-sex">性别与身份证号码不一致</p>' in r.text
    assert "e-f-id_number" not in r.text
    portal.get("/?lang=en")
    _, r = portal.register(id_number=number, birth_date="1990-05-18", sex="male", phone="12345678901")
    assert "The birth date does not match the ID number" in r.text
    assert "The sex does not match the ID number" in r.text
    assert "The mobile number must be 11 digits starting with 13 to 19" in r.text


def _search_as_system(portal, rtype, params):
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        return [m.as_dict() for m in repo.search(rtype, [*params, ("_count", "100")]).matches]


def test_register_then_consent_stored_as_fhir_consent_and_withdrawable(portal):
    data, r = portal.register()
    assert r.status_code == 303
    assert r.headers["location"] == f"{portal.base}/consent?msg=registered"
    cookie = r.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("xl_session="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower()
    patients = _search_as_system(
        portal, "Patient", [("identifier", f"{service.RESIDENT_ID_SYSTEM}|{data['id_number']}")]
    )
    assert len(patients) == 1
    pid = patients[0]["id"]
    assert patients[0]["gender"] == "female" and patients[0]["birthDate"] == "1990-05-17"

    page = portal.get("/consent")
    assert page.status_code == 200
    assert 'type="radio" name="research" value="yes"' in page.text
    assert "checked" not in page.text  # nothing pre-selected: explicit choices only
    r = portal.post("/consent", {"treatment": "yes", "online-consultation": "yes"})
    assert r.status_code == 422  # research needs an explicit choice too
    assert "请选择同意或不同意" in r.text
    r = portal.post("/consent", {"treatment": "yes", "online-consultation": "yes", "research": "no"})
    assert r.status_code == 303
    consents = _search_as_system(portal, "Consent", [("patient", f"Patient/{pid}")])
    purposes = sorted(c["category"][0]["coding"][0]["code"] for c in consents if c["status"] == "active")
    assert purposes == ["online-consultation", "treatment"]

    mine = portal.get("/consents")
    assert mine.text.count("撤回同意") == 2
    r = portal.post("/consents/online-consultation/withdraw", {}, form_page="/consents")
    assert r.status_code == 303
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        assert not consent.has_consent(repo, pid, "online-consultation")
        assert consent.has_consent(repo, pid, "treatment")
    assert portal.get("/consents").text.count("撤回同意") == 1


def test_duplicate_registration_is_refused_on_the_field(portal, app, hospital, database):
    data, _ = portal.register()
    other = new_portal(app, hospital, database)
    _, r = other.register(id_number=data["id_number"])
    assert r.status_code == 422
    assert "该身份证号码已注册，请直接登录" in r.text
    _, r = other.register(phone=data["phone"])
    assert r.status_code == 422
    assert "该手机号码已注册，请直接登录" in r.text


def test_sign_in_sets_an_httponly_session_cookie_and_sign_out_clears_it(portal):
    data, _ = portal.register()
    portal.client.cookies.clear()
    r = portal.sign_in(data["phone"], "wrong-password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text
    r = portal.sign_in(data["phone"])
    assert r.status_code == 303
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("xl_session="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower() and "Path=/" in session
    assert "个人信息" in portal.get("/profile").text
    profile = portal.get("/profile").text
    assert data["id_number"] not in profile  # the ID number is shown masked
    assert data["id_number"][-4:] in profile
    r = portal.post("/signout", {}, form_page="/profile")
    assert r.status_code == 303
    assert portal.get("/profile", follow_redirects=False).status_code == 303  # back to sign-in


def test_pages_need_sign_in(portal):
    r = portal.get("/records", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"{portal.base}/signin?next=")


def test_post_without_or_with_a_wrong_csrf_token_is_refused(portal):
    data, _ = portal.register()
    r = portal.client.post(f"{portal.base}/signin", data={"username": data["phone"], "password": PASSWORD})
    assert r.status_code == 403
    assert "表单已失效" in r.text
    r = portal.client.post(
        f"{portal.base}/signin", data={"username": data["phone"], "password": PASSWORD, "csrf": "forged"}
    )
    assert r.status_code == 403
    assert "xl_session" not in "".join(r.headers.get_list("set-cookie"))
    ok = portal.client.post(
        f"{portal.base}/signin",
        data={"username": data["phone"], "password": PASSWORD, "csrf": csrf_of(portal.get("/signin").text)},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def _encounter(portal, pid: str, text: str) -> str:
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        return repo.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "type": [{"text": text}],
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": "2025-03-01T09:00:00+08:00", "end": "2025-03-01T09:20:00+08:00"},
            }
        ).resource.id


def _patient_id(portal, data) -> str:
    found = _search_as_system(portal, "Patient", [("identifier", f"{service.RESIDENT_ID_SYSTEM}|{data['id_number']}")])
    return found[0]["id"]


def test_a_patient_sees_only_their_own_records(app, hospital, database):
    alice, bob = new_portal(app, hospital, database), new_portal(app, hospital, database)
    a_data, _ = alice.register(name="张三")
    b_data, _ = bob.register(name="李四")
    a_pid, b_pid = _patient_id(alice, a_data), _patient_id(bob, b_data)
    _encounter(alice, a_pid, "张三的门诊")
    h = hospital
    with alice.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        appt = repo.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": "2030-01-01T01:00:00Z",
                "end": "2030-01-01T01:30:00Z",
                "participant": [{"actor": {"reference": f"Patient/{a_pid}"}, "status": "accepted"}],
            }
        ).resource.id
    assert "张三的门诊" in alice.get("/records").text
    page = bob.get("/records")
    assert page.status_code == 200
    assert "张三的门诊" not in page.text
    # nor through a direct address of Alice's appointment
    r = bob.get(f"/appointments/{appt}/reschedule")
    assert r.status_code == 403
    assert a_pid not in r.text and b_pid != a_pid


def test_records_show_lab_results_with_reference_range_and_svg_trend(portal):
    data, _ = portal.register()
    pid = _patient_id(portal, data)
    h = portal.hospital
    with portal.store.unit_of_work(system_principal(h.id, h.code)) as repo:
        for day, value in (("2025-01-05", 5.1), ("2025-02-05", 7.4), ("2025-03-05", 6.2)):
            repo.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "空腹血糖"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": f"{day}T08:00:00+08:00",
                    "valueQuantity": {"value": value, "unit": "mmol/L"},
                    "referenceRange": [
                        {"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}
                    ],
                }
            )
    html = portal.get("/records").text
    assert "空腹血糖" in html
    assert "3.9–6.1 mmol/L" in html
    assert html.count('<svg class="trend"') == 1
    assert "<polyline" in html and 'class="range"' in html
    assert html.count('class="pt out"') == 2  # 7.4 and 6.2 are above the range
    assert "偏高" in html


def test_triage_shows_red_flags_machine_label_and_booking_button(portal):
    r = portal.post("/triage", {"text": "突发胸痛，大汗淋漓，持续半小时", "age": "58", "sex": "male"})
    assert r.status_code == 200
    assert 'class="danger" role="alert"' in r.text
    assert "机器生成的分诊建议" in r.text
    assert f'href="{portal.base}/book?dept=' in r.text
    r = portal.post("/triage", {"text": "", "age": "x"})
    assert r.status_code == 422


def test_every_message_of_the_pages_is_translated():
    here = Path(i18n.__file__).parent
    pattern = re.compile(r"""(?<![\w])_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
    used = set()
    for path in [*here.glob("templates/*.html"), here / "api.py"]:
        used |= {a or b for a, b in pattern.findall(path.read_text())}
    used |= {
        re.search(r'"([^"]+)"\)?$', m).group(1)
        for m in re.findall(r'FieldError\("\w+", "[^"]+"', (here / "service.py").read_text())
    }
    missing = used - i18n.catalog_ids("zh-CN")
    assert not missing, missing
