"""Every rule of online follow-up care, with the exact status and message a person reads."""

from datetime import date

import pytest
from tests.telehealth.conftest import FHIR, add_physician, error

from xinglin.privacy import consent
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal

AI_ZH = "人工智能不得生成处方：处方必须由医师本人开具"
AI_EN = "AI must never generate a prescription: the physician must issue it personally"
FIRST_VISIT_ZH = "互联网诊疗仅限复诊：需选择此前线下就诊的记录或诊断（follow_up_of）。首诊请到医院线下就诊"
FIRST_VISIT_EN = (
    "Online care is only for follow-up visits: pick an earlier in-person visit or diagnosis (follow_up_of). "
    "For a first visit, please come to the hospital in person"
)
NOT_APPROVED = (
    409,
    "处方未经药师审核通过，不能发药",
    "The prescription has not been approved by a pharmacist, so it cannot be dispensed",
)


def _born(years: int) -> str:
    return date(consent.today_in_china().year - years, 1, 1).isoformat()


# --- requesting ------------------------------------------------------------------------------------------


def test_request_needs_online_consultation_consent(world):
    pid = world.new_patient(consented=False)
    visit = world.in_person_visit(pid)
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": f"Encounter/{visit}"},
        headers=world.patient_headers(pid),
    )
    assert error(r) == (
        403,
        "患者尚未同意“互联网复诊”（online-consultation），或已撤回同意：请先取得患者的单独同意",
        "The patient has not consented to online consultation (online-consultation), or has withdrawn consent: "
        "obtain the patient's separate consent first",
    )


def test_withdrawn_consent_stops_new_requests_at_once(world):
    with world.store.unit_of_work(
        Principal(
            tenant_id=world.hospital.id,
            tenant_code=world.hospital.code,
            username="patient-user",
            role="patient",
            patient_id=world.patient,
            scopes=ROLE_SCOPES["patient"],
        )
    ) as repo:
        consent.withdraw_consent(repo, world.patient, "online-consultation")
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": f"Encounter/{world.visit}"},
        headers=world.patient_headers(),
    )
    assert r.status_code == 403
    assert "(online-consultation)" in error(r)[2]


def test_first_visit_is_refused(world):
    r = world.client.post("/api/consults", json={"department": "03.04"}, headers=world.patient_headers())
    assert error(r) == (422, FIRST_VISIT_ZH, FIRST_VISIT_EN)
    assert r.json()["issue"][0]["expression"] == ["follow_up_of"]


@pytest.mark.parametrize(
    ("cls", "status", "zh", "en"),
    [
        (
            "VR",
            "finished",
            "，所选就诊不是已结束的线下门诊或住院",
            "; the chosen visit is not a finished outpatient or inpatient visit",
        ),
        (
            "AMB",
            "in-progress",
            "，所选就诊不是已结束的线下门诊或住院",
            "; the chosen visit is not a finished outpatient or inpatient visit",
        ),
    ],
)
def test_only_a_finished_in_person_visit_counts(world, cls, status, zh, en):
    visit = world.in_person_visit(world.patient, cls=cls, status=status)
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": f"Encounter/{visit}"},
        headers=world.patient_headers(),
    )
    assert error(r) == (
        422,
        FIRST_VISIT_ZH.replace("（follow_up_of）", "（follow_up_of）" + zh),
        FIRST_VISIT_EN.replace("(follow_up_of)", "(follow_up_of)" + en),
    )


def test_inpatient_visit_counts(world):
    visit = world.in_person_visit(world.patient, cls="IMP")
    assert world.request(follow_up_of=f"Encounter/{visit}")["state"] == "requested"


def test_missing_record_is_a_first_visit(world):
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": "Encounter/nope"},
        headers=world.patient_headers(),
    )
    assert r.status_code == 422
    assert error(r)[2].startswith(
        "Online care is only for follow-up visits: pick an earlier in-person visit or diagnosis"
    )
    assert "the chosen record does not exist" in error(r)[2]


def test_another_patients_visit_is_refused(world):
    other = world.new_patient()
    other_visit = world.in_person_visit(other)
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": f"Encounter/{other_visit}"},
        headers=world.patient_headers(),
    )
    assert r.status_code == 403
    # staff asking for the wrong patient's record get the follow-up explanation
    r = world.client.post(
        "/api/consults",
        json={"patient_id": world.patient, "department": "03.04", "follow_up_of": f"Encounter/{other_visit}"},
        headers=world.hospital.headers("registrar"),
    )
    assert r.status_code == 422
    assert "the chosen record is not this patient's" in error(r)[2]


def test_changed_condition_is_refused(world):
    r = world.client.post(
        "/api/consults",
        json={"department": "03.04", "follow_up_of": f"Encounter/{world.visit}", "condition_changed": True},
        headers=world.patient_headers(),
    )
    assert error(r) == (
        422,
        "病情发生变化，不能在线复诊，请到医院线下就诊",
        "The condition has changed, so it cannot be followed up online; please see a doctor in person",
    )


def test_child_under_6_needs_a_guardian(world):
    child = world.new_patient(consented=False, birthDate=_born(4))
    world.consent(child, guardian={"name": "张丽", "relationship": "母亲"})
    visit = world.in_person_visit(child)
    r = world.client.post(
        "/api/consults",
        json={"department": "07", "follow_up_of": f"Encounter/{visit}"},
        headers=world.patient_headers(child),
    )
    assert error(r) == (
        422,
        "未满 6 周岁的儿童在线问诊须有监护人在场：请提供监护人（guardian）",
        "A child under 6 needs a guardian present at an online consult: give the guardian (guardian)",
    )
    r = world.client.post(
        "/api/consults",
        json={"department": "07", "follow_up_of": f"Encounter/{visit}", "guardian": {"name": "张丽"}},
        headers=world.patient_headers(child),
    )
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["guardian"]
    made = world.request(
        patient=child,
        department="07",
        follow_up_of=f"Encounter/{visit}",
        guardian={"name": "张丽", "relationship": "母亲"},
    )
    guardian = made["encounter"]["participant"][0]
    assert guardian["type"][0]["coding"][0]["code"] == "GUARD"
    assert guardian["individual"] == {"display": "张丽"}


def test_a_patient_requests_only_for_themselves(world):
    other = world.new_patient()
    r = world.client.post(
        "/api/consults",
        json={"patient_id": other, "department": "03.04", "follow_up_of": f"Encounter/{world.visit}"},
        headers=world.patient_headers(),
    )
    assert error(r) == (403, "患者只能为本人申请在线问诊", "Patients may request online consults only for themselves")


def test_patients_do_not_see_the_queue_or_others_consults(world):
    cid = world.request()["id"]
    other = world.new_patient()
    assert world.client.get("/api/consults?queue=03.04", headers=world.patient_headers()).status_code == 403
    assert world.client.get(f"/api/consults/{cid}", headers=world.patient_headers(other)).status_code == 403
    assert world.client.get("/api/consults", headers=world.patient_headers(other)).json()["total"] == 0


# --- real-name re-authentication and the state machine -----------------------------------------------------


REAUTH = (
    403,
    "接诊前须以实名重新认证：请先提交密码完成实名确认（POST /api/consults/{id}/confirm），确认 5 分钟内有效",
    "Re-authenticate by real name before accepting: post your password to POST /api/consults/{id}/confirm; "
    "the confirmation is valid for 5 minutes",
)


def test_accepting_needs_real_name_reauthentication(world):
    cid = world.request()["id"]
    r = world.client.post(f"/api/consults/{cid}/accept", headers=world.physician())
    assert error(r) == REAUTH
    bad = world.confirm(cid, password="wrong-password")
    assert error(bad) == (401, "用户名或密码错误", "Wrong username or password")
    assert error(world.client.post(f"/api/consults/{cid}/accept", headers=world.physician())) == REAUTH


def test_another_physicians_confirmation_does_not_count(world, database):
    cid = world.request()["id"]
    add_physician(database, world.hospital, world.client, "dr-zhao")
    assert world.confirm(cid).status_code == 200
    r = world.client.post(f"/api/consults/{cid}/accept", headers=world.physician("dr-zhao"))
    assert error(r) == REAUTH
    # each physician's confirmation is their own; whoever confirmed may accept
    accepted = world.accept(cid, "dr-zhao")
    assert accepted["physician"] != f"Practitioner/{world.practitioner}"
    r = world.client.post(f"/api/consults/{cid}/accept", headers=world.physician())
    assert r.status_code == 409


def test_the_confirmation_expires_after_5_minutes(world, monkeypatch):
    from datetime import timedelta

    from xinglin.core.clock import utcnow
    from xinglin.telehealth import service

    cid = world.request()["id"]
    assert world.confirm(cid).status_code == 200
    monkeypatch.setattr(service, "_now", lambda: utcnow() + timedelta(minutes=6))
    assert error(world.client.post(f"/api/consults/{cid}/accept", headers=world.physician())) == REAUTH


def test_an_account_without_a_practitioner_cannot_accept(world, database):
    from xinglin.tenancy import service as tenancy

    cid = world.request()["id"]
    with database.engine.begin() as conn:
        tenancy.create_user(conn, world.hospital.code, "dr-anon", "correct-horse-battery", "physician")
    assert error(world.confirm(cid, "dr-anon")) == (
        403,
        "该账户未关联实名的医师（Practitioner），不能接诊",
        "This account is not linked to a real-name Practitioner, so it cannot accept consults",
    )


def test_only_physicians_accept(world):
    cid = world.request()["id"]
    r = world.client.post(f"/api/consults/{cid}/accept", headers=world.hospital.headers("nurse"))
    assert error(r) == (403, "只有医师可以接诊在线问诊", "Only physicians may accept online consults")


def test_invalid_transitions_are_409(world):
    cid = world.request()["id"]
    r = world.client.post(f"/api/consults/{cid}/close", json={"summary": "x"}, headers=world.physician())
    assert r.status_code == 403  # not accepted by this physician: nobody has accepted it yet
    world.accept(cid)
    r = world.client.post(f"/api/consults/{cid}/accept", headers=world.physician())
    assert error(r) == (409, "问诊当前状态为“问诊中”，不能接诊", "The consult is in-progress; it cannot be accepted")
    r = world.client.post(f"/api/consults/{cid}/cancel", headers=world.patient_headers())
    assert error(r) == (409, "问诊当前状态为“问诊中”，不能取消", "The consult is in-progress; it cannot be cancelled")
    assert world.client.post(f"/api/consults/{cid}/close", json={"summary": "好"}, headers=world.physician()).is_success
    r = world.client.post(f"/api/consults/{cid}/close", json={"summary": "好"}, headers=world.physician())
    assert error(r) == (409, "问诊当前状态为“已结束”，不能结束问诊", "The consult is finished; it cannot be closed")
    r = world.client.post(f"/api/consults/{cid}/messages", json={"text": "还在吗"}, headers=world.patient_headers())
    assert error(r) == (409, "问诊当前状态为“已结束”，不能发送消息", "The consult is finished; it cannot be messaged")


def test_a_cancelled_request_cannot_be_accepted(world):
    cid = world.request()["id"]
    assert world.client.post(f"/api/consults/{cid}/cancel", headers=world.patient_headers()).is_success
    r = world.confirm(cid)
    assert error(r) == (
        409,
        "问诊当前状态为“已取消”，不能实名认证",
        "The consult is cancelled; it cannot be confirmed for acceptance",
    )


def test_messages_before_acceptance_and_from_strangers(world):
    cid = world.request()["id"]
    r = world.client.post(f"/api/consults/{cid}/messages", json={"text": "你好"}, headers=world.patient_headers())
    assert error(r) == (409, "问诊当前状态为“待接诊”，不能发送消息", "The consult is requested; it cannot be messaged")
    world.accept(cid)
    other = world.new_patient()
    assert (
        world.client.post(
            f"/api/consults/{cid}/messages", json={"text": "hi"}, headers=world.patient_headers(other)
        ).status_code
        == 403
    )
    r = world.client.post(f"/api/consults/{cid}/messages", json={"text": "hi"}, headers=world.hospital.headers("nurse"))
    assert error(r) == (
        403,
        "只有患者本人和接诊医师可以在该问诊中发送消息",
        "Only the patient and the accepting physician may send messages in this consult",
    )
    r = world.client.post(
        f"/api/consults/{cid}/messages",
        json={"image": {"content_type": "application/pdf", "data": "JVBERi0="}},
        headers=world.patient_headers(),
    )
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["image.content_type"]
    r = world.client.post(f"/api/consults/{cid}/messages", json={}, headers=world.patient_headers())
    assert error(r) == (
        400,
        "消息内容为空：请填写文字（text）或上传图片（image）",
        "The message is empty: give text or an image",
    )


def test_closing_needs_a_summary(world):
    cid = world.in_progress()
    r = world.client.post(f"/api/consults/{cid}/close", json={"summary": "  "}, headers=world.physician())
    assert error(r) == (400, "结束问诊须填写问诊小结（summary）", "Closing a consult needs a summary")
    assert world.client.get(f"/api/consults/{cid}", headers=world.physician()).json()["state"] == "in-progress"


# --- prescriptions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"generated_by": "triage-llm"},
        {"tags": [{"system": "https://xinglin.dev/tags", "code": "machine-generated"}]},
    ],
)
def test_machine_generated_prescriptions_are_refused(world, extra):
    cid = world.in_progress()
    r = world.prescribe(cid, expect=None, **extra)
    assert (r["issue"][0]["details"]["text"], r["issue"][0]["diagnostics"]) == (AI_ZH, AI_EN)
    assert world.client.get(f"/api/consults/{cid}", headers=world.physician()).json()["prescriptions"] == []


def test_integration_clients_cannot_prescribe(world):
    cid = world.in_progress()
    resp = world.client.post(
        f"/api/consults/{cid}/prescriptions",
        json={"medication": {"text": "氨氯地平片"}, "dosage": "每日一次"},
        headers=world.hospital.headers("integration"),
    )
    assert error(resp) == (403, AI_ZH, AI_EN)


def test_only_the_accepting_physician_prescribes(world, database):
    cid = world.in_progress()
    r = world.client.post(
        f"/api/consults/{cid}/prescriptions",
        json={"medication": {"text": "氨氯地平片"}, "dosage": "每日一次"},
        headers=world.pharmacist(),
    )
    assert error(r) == (403, "只有医师本人可以开具处方", "Only a physician may issue a prescription")
    add_physician(database, world.hospital, world.client, "dr-qian")
    r = world.client.post(
        f"/api/consults/{cid}/prescriptions",
        json={"medication": {"text": "氨氯地平片"}, "dosage": "每日一次"},
        headers=world.physician("dr-qian"),
    )
    assert error(r) == (
        403,
        "只有接诊该问诊的医师本人可以开具处方",
        "Only the physician who accepted this consult may prescribe in it",
    )


def test_no_prescription_before_acceptance(world):
    cid = world.request()["id"]
    world.confirm(cid)
    r = world.prescribe(cid, expect=403)
    assert r["issue"][0]["diagnostics"] == "Only the physician who accepted this consult may prescribe in it"


@pytest.mark.parametrize(
    ("medication", "zh_drug", "en_drug", "kind_zh", "kind_en"),
    [
        ({"text": "吗啡缓释片 30mg"}, "吗啡", "morphine", "麻醉药品", "narcotic"),
        ({"text": "Fentanyl transdermal patch"}, "芬太尼", "fentanyl", "麻醉药品", "narcotic"),
        (
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "N05BA01"}]},
            "地西泮",
            "diazepam",
            "精神药品",
            "psychotropic",
        ),
        ({"text": "艾司唑仑片 1mg"}, "艾司唑仑", "estazolam", "精神药品", "psychotropic"),
        ({"text": "酒石酸唑吡坦片"}, "唑吡坦", "zolpidem", "精神药品", "psychotropic"),
        ({"text": "盐酸哌甲酯缓释片"}, "哌甲酯", "methylphenidate", "精神药品", "psychotropic"),
        ({"text": "曲马多"}, "曲马多", "tramadol", "精神药品", "psychotropic"),
    ],
)
def test_narcotic_and_psychotropic_drugs_cannot_be_prescribed_online(
    world, medication, zh_drug, en_drug, kind_zh, kind_en
):
    cid = world.in_progress()
    r = world.prescribe(cid, expect=422, medication=medication)
    issue = r["issue"][0]
    assert issue["details"]["text"] == f"互联网诊疗不得开具{kind_zh}：{zh_drug}，请到医院线下就诊"
    assert issue["diagnostics"] == (
        f"Narcotic and psychotropic drugs cannot be prescribed online: {en_drug} is a {kind_en} drug; "
        "please see a doctor in person"
    )
    assert issue["expression"] == ["MedicationRequest.medicationCodeableConcept"]


def test_unapproved_prescription_is_not_dispensed(world):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]
    r = world.client.post(f"/api/prescriptions/{rx['id']}/dispense", headers=world.pharmacist())
    assert error(r) == NOT_APPROVED
    # nor through the FHIR API (store rule)
    r = world.client.post(
        f"{FHIR}/MedicationDispense",
        json={
            "resourceType": "MedicationDispense",
            "status": "completed",
            "medicationCodeableConcept": rx["medicationCodeableConcept"],
            "subject": rx["subject"],
            "authorizingPrescription": [{"reference": f"MedicationRequest/{rx['id']}"}],
        },
        headers=world.pharmacist(),
    )
    assert error(r) == NOT_APPROVED
    # a rejected one neither
    world.client.post(f"/api/prescriptions/{rx['id']}/reject", json={"reason": "重复用药"}, headers=world.pharmacist())
    r = world.client.post(f"/api/prescriptions/{rx['id']}/dispense", headers=world.pharmacist())
    assert error(r) == NOT_APPROVED


def test_review_rules(world):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]
    r = world.client.post(f"/api/prescriptions/{rx['id']}/approve", headers=world.physician())
    assert error(r) == (403, "只有药师可以审核处方", "Only a pharmacist may review prescriptions")
    r = world.client.post(f"/api/prescriptions/{rx['id']}/reject", json={}, headers=world.pharmacist())
    assert error(r) == (400, "驳回处方须填写理由（reason）", "Rejecting a prescription needs a reason")
    assert world.client.post(f"/api/prescriptions/{rx['id']}/approve", headers=world.pharmacist()).is_success
    r = world.client.post(f"/api/prescriptions/{rx['id']}/reject", json={"reason": "x"}, headers=world.pharmacist())
    assert error(r) == (
        409,
        "处方当前状态为 active，只有待审核（draft）的处方可以审核",
        "The prescription is active; only a draft prescription can be reviewed",
    )
    assert world.client.post(f"/api/prescriptions/{rx['id']}/dispense", headers=world.pharmacist()).status_code == 201
    r = world.client.post(f"/api/prescriptions/{rx['id']}/dispense", headers=world.pharmacist())
    assert error(r) == (409, "该处方已发药", "This prescription has already been dispensed")
    r = world.client.post(
        f"/api/prescriptions/{rx['id']}/delivery", json={"status": "lost"}, headers=world.pharmacist()
    )
    assert r.status_code == 400
    r = world.client.post(
        f"/api/prescriptions/{rx['id']}/delivery", json={"status": "preparing"}, headers=world.pharmacist()
    )
    assert error(r) == (
        409,
        "配送状态已是“备药中”，不能改为“备药中”",
        "The delivery is already preparing; it cannot become preparing",
    )
    r = world.client.post(
        f"/api/prescriptions/{rx['id']}/delivery", json={"status": "shipped"}, headers=world.patient_headers()
    )
    assert r.status_code == 403


def test_a_changed_prescription_loses_its_signature(world):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]
    rx["dosageInstruction"] = [{"text": "每日三次，每次两片"}]
    r = world.client.put(f"{FHIR}/MedicationRequest/{rx['id']}", json=rx, headers=world.hospital.headers("physician"))
    assert r.status_code == 200, r.text
    r = world.client.post(f"/api/prescriptions/{rx['id']}/approve", headers=world.pharmacist())
    assert error(r) == (
        409,
        "处方缺少有效的医师电子签名，不能审核通过",
        "The prescription has no valid electronic signature of its physician, so it cannot be approved",
    )


# --- store rules: they hold on the FHIR API too ------------------------------------------------------------


def _fhir_prescription(world, **extra) -> dict:
    body = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "氨氯地平片"},
        "subject": {"reference": f"Patient/{world.patient}"},
    }
    body.update(extra)
    return body


def test_store_refuses_machine_generated_medication_requests(world):
    body = _fhir_prescription(
        world, meta={"tag": [{"system": "https://xinglin.dev/tags", "code": "machine-generated"}]}
    )
    r = world.client.post(f"{FHIR}/MedicationRequest", json=body, headers=world.hospital.headers("physician"))
    assert error(r) == (403, AI_ZH, AI_EN)
    # nor may an existing request be turned into one
    made = world.client.post(
        f"{FHIR}/MedicationRequest", json=_fhir_prescription(world), headers=world.hospital.headers("physician")
    ).json()
    made["meta"] = body["meta"]
    r = world.client.put(
        f"{FHIR}/MedicationRequest/{made['id']}", json=made, headers=world.hospital.headers("physician")
    )
    assert error(r) == (403, AI_ZH, AI_EN)


def test_store_keeps_online_prescriptions_draft_until_a_pharmacist_approves(world):
    cid = world.in_progress()
    rx = world.prescribe(cid)["prescription"]
    rx["status"] = "active"
    r = world.client.put(f"{FHIR}/MedicationRequest/{rx['id']}", json=rx, headers=world.hospital.headers("physician"))
    assert error(r) == (
        403,
        "互联网处方须经药师审核通过后才能生效",
        "Only a pharmacist's approval makes an online prescription active",
    )
    online_tag = {"system": "https://xinglin.dev/tags", "code": "online-prescription"}
    r = world.client.post(
        f"{FHIR}/MedicationRequest",
        json=_fhir_prescription(world, status="active", meta={"tag": [online_tag]}),
        headers=world.hospital.headers("physician"),
    )
    assert r.status_code == 422
    r = world.client.post(
        f"{FHIR}/MedicationRequest",
        json=_fhir_prescription(world, medicationCodeableConcept={"text": "地西泮片"}, meta={"tag": [online_tag]}),
        headers=world.hospital.headers("physician"),
    )
    assert r.status_code == 422
    assert "diazepam" in error(r)[2]
