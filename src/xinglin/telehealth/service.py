"""The online follow-up consultation: the functions the API (and later the portal) call.

Every step reads and writes FHIR resources through the caller's unit of work, so it is policy-checked
and audited. Where a patient's action changes a resource patients may not write (their consult
Encounter), the change is made with `Repository.as_system`, audited naming the patient. The FHIR mapping
and the state machine are described in `models.py`.

Prescription signatures: `cryptography` is not a dependency, so a physician's signature is
HMAC-SHA256 under a per-physician key derived from the server secret (the token signing key, from
settings or the database): key = HMAC(secret, "xinglin/prescription-signature/v1|<tenant>|<account>").
Rotating that secret makes earlier signatures unverifiable; switch to Ed25519 keys per physician when
`cryptography` is added.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import datetime, timedelta

import orjson

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InvalidResource,
    NotFound,
    PreconditionFailed,
)
from xinglin.privacy import consent
from xinglin.security.principal import Principal
from xinglin.store.repository import Repository, Store, StoredResource
from xinglin.telehealth import rules  # importing it registers the store rules wherever telehealth is used
from xinglin.telehealth.models import (
    ACCEPTED,
    ACT_CODE,
    CONSULT_TAG,
    CONSULT_TYPE,
    DELIVERY_STATUS,
    DELIVERY_STEPS,
    DELIVERY_ZH,
    DEPARTMENTS,
    FOLLOW_UP_OF,
    GUARDIAN_AGE,
    IMAGE_SIGNATURES,
    IMAGE_TYPES,
    IN_PERSON_CLASSES,
    MACHINE_GENERATED,
    MAX_IMAGE_BYTES,
    ONLINE_PRESCRIPTION_TAG,
    PARTICIPATION,
    REAL_NAME,
    REAL_NAME_TTL_SECONDS,
    REVIEW,
    ROLE_CODE,
    SIGNER_SYSTEM,
    STATE_ZH,
    STATUS_OF_STATE,
    TAGS,
    TASK_CODES,
    extension,
    has_tag,
    next_state,
    state_of,
    sub_values,
)
from xinglin.telehealth.rules import ai_refused, controlled_refused
from xinglin.tenancy.service import authenticate

_DEPT = re.compile(r"^\d{2}(\.\d{2})?$")
STAFF_WRITERS = frozenset({"physician", "nurse", "registrar", "admin"})
SIGNATURE_TYPE = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.1",
    "display": "Author's Signature",
}
SIG_FORMAT = "application/x-xinglin-hmac-sha256"
SIGNED_FIELDS = (
    "id",
    "intent",
    "category",
    "subject",
    "encounter",
    "requester",
    "authoredOn",
    "medicationCodeableConcept",
    "dosageInstruction",
    "dispenseRequest",
    "note",
)


# --- helpers ----------------------------------------------------------------------------------------------


def _now() -> datetime:
    return utcnow()


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _writer(repo: Repository, purpose: str) -> Repository:
    """The caller's repository when their role may write consult Encounters, else Xinglin acting for them."""
    return repo if repo.principal.role in STAFF_WRITERS else repo.as_system(purpose)


def _save(writer: Repository, stored: StoredResource, body: dict) -> StoredResource:
    try:
        return writer.update(stored.resource_type, stored.id, body, if_match=stored.version_id).resource
    except PreconditionFailed:
        raise Conflict(
            "该记录刚被其他人更新，请刷新后重试", "The record was just changed by someone else; reload and try again"
        ) from None


def _patient_id(resource: dict, field: str = "subject") -> str | None:
    ref = (resource.get(field) or {}).get("reference", "")
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else None


def _no_consult(consult_id: str) -> NotFound:
    return NotFound(f"未找到在线问诊 {consult_id}", f"Online consult {consult_id} was not found")


def get_consult(repo: Repository, consult_id: str) -> StoredResource:
    """The consult Encounter (policy-checked: a patient sees only their own)."""
    try:
        stored = repo.read("Encounter", consult_id)
    except (NotFound, Gone):
        raise _no_consult(consult_id) from None
    if not has_tag(stored.as_dict(), CONSULT_TAG["code"]):
        raise _no_consult(consult_id)
    return stored


def accepted_by(encounter: dict) -> dict:
    """{"practitioner": {...}, "account": "physician:name", "at": ...} of the accepting physician, or {}."""
    return sub_values(extension(encounter, ACCEPTED))


def _practitioner_ref(encounter: dict) -> dict:
    return accepted_by(encounter).get("practitioner") or {}


def _require_acceptor(repo: Repository, encounter: dict, action_zh: str, action_en: str) -> None:
    if repo.principal.role != "physician" or accepted_by(encounter).get("account") != repo.principal.label:
        raise Forbidden(
            f"只有接诊该问诊的医师本人可以{action_zh}",
            f"Only the physician who accepted this consult may {action_en}",
        )


def _set_state(encounter: dict, action: str) -> str:
    state = state_of(encounter)
    target = next_state(state, action)
    if target != state:
        now = fhir_instant(_now())
        history = encounter.setdefault("statusHistory", [])
        if history and not history[-1].get("period", {}).get("end"):
            history[-1].setdefault("period", {})["end"] = now
        encounter["status"] = STATUS_OF_STATE[target]
        history.append({"status": encounter["status"], "period": {"start": now}})
    return target


def consult_view(stored: StoredResource) -> dict:
    enc = stored.as_dict()
    dept = next(
        (c.get("code") for c in (enc.get("serviceType") or {}).get("coding") or [] if c.get("system") == DEPARTMENTS),
        None,
    )
    state = state_of(enc)
    return {
        "id": stored.id,
        "state": state,
        "state_zh": STATE_ZH.get(state, state),
        "patient": (enc.get("subject") or {}).get("reference"),
        "department": dept,
        "follow_up_of": ((extension(enc, FOLLOW_UP_OF) or {}).get("valueReference") or {}).get("reference"),
        "physician": _practitioner_ref(enc).get("reference"),
        "version": stored.version_id,
        "encounter": enc,
    }


# --- requesting -------------------------------------------------------------------------------------------


def _first_visit(detail_zh: str = "", detail_en: str = "") -> InvalidResource:
    return InvalidResource(
        "互联网诊疗仅限复诊：需选择此前线下就诊的记录或诊断（follow_up_of）" + detail_zh + "。首诊请到医院线下就诊",
        "Online care is only for follow-up visits: pick an earlier in-person visit or diagnosis (follow_up_of)"
        + detail_en
        + ". For a first visit, please come to the hospital in person",
        element="follow_up_of",
    )


def _check_follow_up_basis(repo: Repository, patient_id: str, basis: str | None) -> dict:
    """The earlier in-person Encounter, Condition or uploaded DocumentReference this consult follows up."""
    if not basis:
        raise _first_visit()
    rtype, _, rid = basis.partition("/")
    if rtype not in ("Encounter", "Condition", "DocumentReference") or not rid:
        raise _first_visit(
            "，应为 Encounter、Condition 或 DocumentReference 的引用",
            ", which must refer to an Encounter, a Condition or a DocumentReference",
        )
    try:
        record = repo.read(rtype, rid).as_dict()
    except (NotFound, Gone):
        raise _first_visit("，所选记录不存在", "; the chosen record does not exist") from None
    if _patient_id(record) != patient_id:
        raise _first_visit("，所选记录不属于该患者", "; the chosen record is not this patient's")
    if rtype == "Encounter":
        in_person = (record.get("class") or {}).get("code") in IN_PERSON_CLASSES
        if not in_person or record.get("status") != "finished":
            raise _first_visit(
                "，所选就诊不是已结束的线下门诊或住院",
                "; the chosen visit is not a finished outpatient or inpatient visit",
            )
    elif rtype == "Condition":
        verification = {c.get("code") for c in (record.get("verificationStatus") or {}).get("coding") or []}
        if verification & {"refuted", "entered-in-error"}:
            raise _first_visit("，所选诊断已被排除", "; the chosen diagnosis was refuted")
    elif record.get("status") != "current":
        raise _first_visit("，所选病历文件已失效", "; the chosen document is no longer current")
    return {"reference": basis}


def upload_earlier_record(repo: Repository, *, patient_id: str, image: dict | None, description: str) -> StoredResource:
    """A photo of the record of an earlier in-person visit (another hospital's 门诊病历, a discharge summary), kept
    as the patient's DocumentReference so that an online follow-up can rest on it; the physician who accepts
    the consult sees it and judges whether it really is a follow-up."""
    p = repo.principal
    if p.role == "patient" and p.patient_id != patient_id:
        raise Forbidden("患者只能为本人上传病历", "Patients may upload records only for themselves")
    if not image:
        raise InvalidResource(
            "请上传既往就诊病历的照片", "Upload a photo of the record of the earlier visit", element="image.data"
        )
    description = (description or "").strip()
    if not description:
        raise InvalidResource(
            "请说明这是哪次就诊的病历（医院、日期、诊断）",
            "Say which visit the record is from (hospital, date, diagnosis)",
            element="description",
        )
    body = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}],
            "text": "患者上传的既往就诊病历 / Record of an earlier visit, uploaded by the patient",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": fhir_instant(_now()),
        "description": description[:500],
        "content": [{"attachment": _image_attachment({**image, "title": description[:200]})}],
    }
    return repo.create(body).resource


def request_consult(
    repo: Repository,
    *,
    patient_id: str,
    department: str,
    follow_up_of: str | None,
    condition_changed: bool = False,
    guardian: dict | None = None,
    reason: str | None = None,
) -> StoredResource:
    """A patient (or staff for them) asks for an online follow-up consult; refused when not allowed online."""
    p = repo.principal
    if p.role == "patient" and p.patient_id != patient_id:
        raise Forbidden("患者只能为本人申请在线问诊", "Patients may request online consults only for themselves")
    if not department or not _DEPT.match(department):
        raise BadRequest(
            "科室应为诊疗科目代码，如 03 或 03.04",
            "department must be a department code such as 03 or 03.04",
            element="department",
        )
    if condition_changed:
        raise InvalidResource(
            "病情发生变化，不能在线复诊，请到医院线下就诊",
            "The condition has changed, so it cannot be followed up online; please see a doctor in person",
            element="condition_changed",
        )
    consent.require_consent(repo, patient_id, "online-consultation")
    patient = repo.read("Patient", patient_id).as_dict()
    basis = _check_follow_up_basis(repo, patient_id, follow_up_of)
    participants = []
    age = consent.age_on(patient.get("birthDate"))
    if age is not None and age < GUARDIAN_AGE and not guardian:
        raise InvalidResource(
            "未满 6 周岁的儿童在线问诊须有监护人在场：请提供监护人（guardian）",
            "A child under 6 needs a guardian present at an online consult: give the guardian (guardian)",
            element="guardian",
        )
    if guardian:
        performer, _ = consent.guardian_parts(repo, patient_id, consent.Guardian.from_dict(guardian))
        participants.append(
            {
                "type": [
                    {
                        "coding": [{"system": ROLE_CODE, "code": "GUARD", "display": "guardian"}],
                        "text": guardian.get("relationship") or "监护人 / guardian",
                    }
                ],
                "individual": performer,
            }
        )
    now = fhir_instant(_now())
    dept = {"system": DEPARTMENTS, "code": department}
    body: dict = {
        "resourceType": "Encounter",
        "meta": {"tag": [CONSULT_TAG]},
        "extension": [{"url": FOLLOW_UP_OF, "valueReference": basis}],
        "status": "planned",
        "statusHistory": [{"status": "planned", "period": {"start": now}}],
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [
            {"coding": [{"system": CONSULT_TYPE, "code": "online-follow-up", "display": "互联网复诊"}]},
            {"coding": [dept]},
        ],
        "serviceType": {"coding": [dept]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if participants:
        body["participant"] = participants
    if basis["reference"].startswith("Condition/"):
        body["reasonReference"] = [basis]
    if reason and reason.strip():
        body["reasonCode"] = [{"text": reason.strip()[:2000]}]
    return _writer(repo, "online consult request").create(body, rtype="Encounter").resource


def list_consults(repo: Repository, *, queue: str | None = None, state: str | None = None) -> list[StoredResource]:
    """A department's queue (requested consults, first come first served), or the consults the caller sees."""
    params = [("class", f"{ACT_CODE}|VR"), ("_tag", f"{TAGS}|{CONSULT_TAG['code']}"), ("_count", "200")]
    if queue is not None:
        if repo.principal.role == "patient":
            raise Forbidden("患者不能查看科室候诊队列", "Patients may not see a department's queue")
        params += [("type", f"{DEPARTMENTS}|{queue}"), ("status", "planned")]
    elif state:
        if state not in STATUS_OF_STATE:
            raise BadRequest(f"未知的问诊状态 {state}", f"Unknown consult state {state}", element="state")
        params.append(("status", STATUS_OF_STATE[state]))
    return repo.search("Encounter", params).matches


def cancel_consult(repo: Repository, consult_id: str) -> StoredResource:
    """The patient withdraws a request that no physician has accepted yet."""
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    p = repo.principal
    if not (p.role == "patient" and p.patient_id == _patient_id(enc)) and p.role not in ("registrar", "admin"):
        raise Forbidden("只有患者本人可以取消问诊申请", "Only the patient may cancel a consult request")
    _set_state(enc, "cancel")
    return _save(_writer(repo, "online consult cancel"), stored, enc)


# --- real-name re-authentication and acceptance -----------------------------------------------------------


def reauthenticate(store: Store, principal: Principal, password: str) -> Principal:
    """The physician proves, with their password again, that they are the real-name account holder.

    Runs in a transaction of its own (failed attempts count towards lockout and are audited); returns the
    verified principal, which carries the Practitioner the account is linked to.
    """
    if principal.role != "physician":
        raise Forbidden("只有医师可以接诊在线问诊", "Only physicians may accept online consults")
    verified = authenticate(
        store.engine,
        store.settings,
        principal.tenant_code,
        principal.username,
        password,
        client_address=principal.client_address,
    )
    if verified.role != "physician" or verified.tenant_id != principal.tenant_id:
        raise Forbidden("只有医师可以接诊在线问诊", "Only physicians may accept online consults")
    if not verified.practitioner_id:
        raise Forbidden(
            "该账户未关联实名的医师（Practitioner），不能接诊",
            "This account is not linked to a real-name Practitioner, so it cannot accept consults",
        )
    return verified


def confirm_real_name(repo: Repository, consult_id: str, verified: Principal) -> StoredResource:
    """Records a short-lived, single-use real-name confirmation on the consult, for `accept_consult`."""
    if verified.username != repo.principal.username or verified.tenant_id != repo.principal.tenant_id:
        raise Forbidden("实名认证与当前登录用户不一致", "The real-name confirmation is not for the signed-in user")
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    next_state(state_of(enc), "confirm")
    repo.read("Practitioner", verified.practitioner_id)  # the real-name record exists
    now = _now()
    # one confirmation per physician: several may confirm before one of them accepts
    enc["extension"] = [
        e
        for e in enc.get("extension") or []
        if not (e.get("url") == REAL_NAME and sub_values(e).get("account") == repo.principal.label)
    ]
    enc["extension"].append(
        {
            "url": REAL_NAME,
            "extension": [
                {"url": "practitioner", "valueReference": {"reference": f"Practitioner/{verified.practitioner_id}"}},
                {"url": "account", "valueString": repo.principal.label},
                {"url": "at", "valueInstant": fhir_instant(now)},
                {"url": "expires", "valueInstant": fhir_instant(now + timedelta(seconds=REAL_NAME_TTL_SECONDS))},
            ],
        }
    )
    return _save(repo, stored, enc)


def accept_consult(repo: Repository, consult_id: str) -> StoredResource:
    """The physician takes a consult from the queue: needs a fresh real-name confirmation of their own."""
    if repo.principal.role != "physician":
        raise Forbidden("只有医师可以接诊在线问诊", "Only physicians may accept online consults")
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    next_state(state_of(enc), "accept")
    confirmation = next(
        (
            sub_values(e)
            for e in enc.get("extension") or []
            if e.get("url") == REAL_NAME and sub_values(e).get("account") == repo.principal.label
        ),
        {},
    )
    expires = _instant(confirmation.get("expires"))
    now = _now()
    if confirmation.get("account") != repo.principal.label or expires is None or expires <= now:
        raise Forbidden(
            "接诊前须以实名重新认证：请先提交密码完成实名确认（POST /api/consults/{id}/confirm），确认 5 分钟内有效",
            "Re-authenticate by real name before accepting: post your password to POST /api/consults/{id}/confirm; "
            "the confirmation is valid for 5 minutes",
        )
    _set_state(enc, "accept")
    practitioner = confirmation["practitioner"]
    enc["extension"] = [e for e in enc.get("extension") or [] if e.get("url") != REAL_NAME]
    enc["extension"].append(
        {
            "url": ACCEPTED,
            "extension": [
                {"url": "practitioner", "valueReference": practitioner},
                {"url": "account", "valueString": repo.principal.label},
                {"url": "at", "valueInstant": fhir_instant(now)},
                {"url": "realNameConfirmedAt", "valueInstant": confirmation["at"]},
            ],
        }
    )
    enc.setdefault("participant", []).append(
        {
            "type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF", "display": "primary performer"}]}],
            "individual": practitioner,
            "period": {"start": fhir_instant(now)},
        }
    )
    enc["period"] = {"start": fhir_instant(now)}
    return _save(repo, stored, enc)


# --- messages ---------------------------------------------------------------------------------------------


def post_message(
    repo: Repository, consult_id: str, *, text: str | None = None, image: dict | None = None
) -> StoredResource:
    """A message of the patient or the accepting physician: text and/or one image (base64, image/*)."""
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    p = repo.principal
    patient_ref = enc["subject"]
    if p.role == "patient" and p.patient_id == _patient_id(enc):
        sender, recipient = patient_ref, _practitioner_ref(enc)
    elif p.role == "physician" and accepted_by(enc).get("account") == p.label:
        sender, recipient = _practitioner_ref(enc), patient_ref
    else:
        raise Forbidden(
            "只有患者本人和接诊医师可以在该问诊中发送消息",
            "Only the patient and the accepting physician may send messages in this consult",
        )
    next_state(state_of(enc), "message")
    payload = []
    if text and text.strip():
        payload.append({"contentString": text.strip()})
    if image:
        payload.append({"contentAttachment": _image_attachment(image)})
    if not payload:
        raise BadRequest(
            "消息内容为空：请填写文字（text）或上传图片（image）",
            "The message is empty: give text or an image",
            element="text",
        )
    body = {
        "resourceType": "Communication",
        "meta": {"tag": [CONSULT_TAG]},
        "status": "completed",
        "subject": patient_ref,
        "encounter": {"reference": f"Encounter/{stored.id}"},
        "sent": fhir_instant(_now()),
        "sender": sender,
        "recipient": [recipient],
        "payload": payload,
    }
    return repo.create(body, rtype="Communication").resource


def _image_attachment(image: dict) -> dict:
    content_type = (image.get("content_type") or image.get("contentType") or "").lower()
    if content_type not in IMAGE_TYPES:
        raise InvalidResource(
            f"图片类型应为 {'、'.join(sorted(IMAGE_TYPES))} 之一",
            f"The image type must be one of {', '.join(sorted(IMAGE_TYPES))}",
            element="image.content_type",
        )
    try:
        raw = base64.b64decode(image.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        raise InvalidResource("图片数据应为 base64 编码", "The image data must be base64-encoded", element="image.data")
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidResource("图片不能超过 5 MB", "The image must not exceed 5 MB", element="image.data")
    if not IMAGE_SIGNATURES[content_type](raw):
        raise InvalidResource(
            f"图片内容不是 {content_type} 格式的图片",
            f"The image data is not a {content_type} image",
            element="image.data",
        )
    attachment = {
        "contentType": content_type,
        "data": base64.b64encode(raw).decode(),
        "size": len(raw),
        "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode(),
    }
    if image.get("title"):
        attachment["title"] = str(image["title"])[:200]
    return attachment


def list_messages(repo: Repository, consult_id: str) -> list[StoredResource]:
    get_consult(repo, consult_id)
    return repo.search("Communication", [("encounter", f"Encounter/{consult_id}"), ("_count", "1000")]).matches


def message_image(repo: Repository, consult_id: str, message_id: str, index: int = 0) -> dict:
    """The `index`-th image of a consult message, as {"content_type", "data" (bytes), "title"}, for whoever may
    see the consult (policy-checked and audited like any read); NotFound when it is not in that consult."""
    get_consult(repo, consult_id)
    try:
        message = repo.read("Communication", message_id).as_dict()
    except (NotFound, Gone):
        message = {}
    images = [part["contentAttachment"] for part in message.get("payload") or [] if part.get("contentAttachment")]
    if (message.get("encounter") or {}).get("reference") != f"Encounter/{consult_id}" or not 0 <= index < len(images):
        raise NotFound("未找到该图片", "The image was not found", element="image")
    attachment = images[index]
    return {
        "content_type": (attachment.get("contentType") or "").lower(),
        "data": base64.b64decode(attachment.get("data") or ""),
        "title": attachment.get("title"),
    }


# --- closing ----------------------------------------------------------------------------------------------


def close_consult(repo: Repository, consult_id: str, *, summary: str | None, follow_up_days: int | None = None) -> dict:
    """The physician closes the consult: the summary becomes a DocumentReference of the outpatient record,
    and an optional follow-up reminder (a Task) falls due in `follow_up_days` days."""
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    _require_acceptor(repo, enc, "结束问诊", "close it")
    next_state(state_of(enc), "close")
    if not summary or not summary.strip():
        raise BadRequest("结束问诊须填写问诊小结（summary）", "Closing a consult needs a summary", element="summary")
    if follow_up_days is not None and not 1 <= follow_up_days <= 365:
        raise BadRequest(
            "复诊提醒天数应在 1 到 365 之间", "follow_up_days must be between 1 and 365", element="follow_up_days"
        )
    now = _now()
    practitioner = _practitioner_ref(enc)
    text = summary.strip()
    document = repo.create(
        {
            "resourceType": "DocumentReference",
            "meta": {"tag": [CONSULT_TAG]},
            "status": "current",
            "docStatus": "final",
            "type": {
                "coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}],
                "text": "互联网复诊小结 / online follow-up summary",
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "https://xinglin.dev/CodeSystem/record-category",
                            "code": "outpatient-record",
                            "display": "门诊病历 / outpatient record",
                        }
                    ]
                }
            ],
            "subject": enc["subject"],
            "date": fhir_instant(now),
            "author": [practitioner],
            "description": "互联网复诊小结 / online follow-up summary",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "zh-CN",
                        "data": base64.b64encode(text.encode()).decode(),
                        "title": "问诊小结 / consult summary",
                        "creation": fhir_instant(now),
                    }
                }
            ],
            "context": {"encounter": [{"reference": f"Encounter/{stored.id}"}], "period": enc.get("period")},
        },
        rtype="DocumentReference",
    ).resource
    reminder = None
    if follow_up_days:
        due = fhir_instant(now + timedelta(days=follow_up_days))
        reminder = repo.create(
            {
                "resourceType": "Task",
                "meta": {"tag": [CONSULT_TAG]},
                "status": "requested",
                "intent": "plan",
                "code": {"coding": [{"system": TASK_CODES, "code": "follow-up", "display": "复诊提醒"}]},
                "description": f"{follow_up_days} 天后复诊 / follow up in {follow_up_days} days",
                "focus": {"reference": f"Encounter/{stored.id}"},
                "for": enc["subject"],
                "encounter": {"reference": f"Encounter/{stored.id}"},
                "authoredOn": fhir_instant(now),
                "requester": practitioner,
                "executionPeriod": {"start": due},
                "restriction": {"period": {"end": due}},
            },
            rtype="Task",
        ).resource
    _set_state(enc, "close")
    enc.setdefault("period", {})["end"] = fhir_instant(now)
    closed = _save(repo, stored, enc)
    return {"consult": closed, "summary": document, "reminder": reminder}


# --- prescriptions ----------------------------------------------------------------------------------------


def _signing_key(secret: str, tenant_code: str, account: str) -> bytes:
    return hmac.new(
        secret.encode(), f"xinglin/prescription-signature/v1|{tenant_code}|{account}".encode(), hashlib.sha256
    ).digest()


def signed_bytes(prescription: dict) -> bytes:
    """What a physician signs: the clinical content of the prescription, not its review status."""
    return orjson.dumps({k: prescription.get(k) for k in SIGNED_FIELDS}, option=orjson.OPT_SORT_KEYS)


def sign(secret: str, tenant_code: str, account: str, prescription: dict) -> str:
    mac = hmac.new(_signing_key(secret, tenant_code, account), signed_bytes(prescription), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_signature(repo: Repository, prescription: dict, secret: str) -> bool:
    """Whether a Provenance carries a valid signature, by the prescriber, of this prescription's content."""
    page = repo.search("Provenance", [("target", f"MedicationRequest/{prescription['id']}"), ("_count", "20")])
    requester = (prescription.get("requester") or {}).get("reference")
    for prov in (m.as_dict() for m in page.matches):
        for sig in prov.get("signature") or []:
            who = sig.get("who") or {}
            account = (who.get("identifier") or {}).get("value")
            if who.get("reference") != requester or not account or sig.get("sigFormat") != SIG_FORMAT:
                continue
            expected = sign(secret, repo.principal.tenant_code, account, prescription)
            if hmac.compare_digest(expected, sig.get("data") or ""):
                return True
    return False


def prescribe(
    repo: Repository,
    consult_id: str,
    *,
    medication: dict,
    dosage: str | None,
    quantity: dict | None = None,
    note: str | None = None,
    generated_by: str | None = None,
    tags: list[dict] | None = None,
    signing_secret: str,
) -> dict:
    """The accepting physician issues an e-prescription (draft until a pharmacist approves) and signs it."""
    p = repo.principal
    machine = generated_by or any((t or {}).get("code") == MACHINE_GENERATED for t in tags or [])
    if machine or p.role in ("integration", "system"):
        raise ai_refused()
    if p.role != "physician":
        raise Forbidden("只有医师本人可以开具处方", "Only a physician may issue a prescription")
    stored = get_consult(repo, consult_id)
    enc = stored.as_dict()
    _require_acceptor(repo, enc, "开具处方", "prescribe in it")
    next_state(state_of(enc), "prescribe")
    if not medication or not (medication.get("text") or medication.get("coding")):
        raise BadRequest("请填写药品（medication）", "The medication is missing", element="medication")
    refusal = controlled_refused(medication)
    if refusal is not None:
        raise refusal
    if not dosage or not dosage.strip():
        raise BadRequest("请填写用法用量（dosage）", "The dosage is missing", element="dosage")
    now = fhir_instant(_now())
    practitioner = _practitioner_ref(enc)
    body: dict = {
        "resourceType": "MedicationRequest",
        "meta": {"tag": [ONLINE_PRESCRIPTION_TAG, CONSULT_TAG]},
        "status": "draft",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                        "code": "outpatient",
                    }
                ]
            }
        ],
        "medicationCodeableConcept": medication,
        "subject": enc["subject"],
        "encounter": {"reference": f"Encounter/{stored.id}"},
        "authoredOn": now,
        "requester": practitioner,
        "dosageInstruction": [{"text": dosage.strip()}],
    }
    if quantity:
        body["dispenseRequest"] = {"quantity": quantity}
    if note and note.strip():
        body["note"] = [{"text": note.strip()}]
    created = repo.create(body, rtype="MedicationRequest").resource
    prescription = created.as_dict()
    signer = {"reference": practitioner.get("reference"), "identifier": {"system": SIGNER_SYSTEM, "value": p.label}}
    provenance = repo.create(
        {
            "resourceType": "Provenance",
            "target": [{"reference": f"MedicationRequest/{created.id}"}],
            "recorded": now,
            "activity": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]
            },
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "author",
                            }
                        ]
                    },
                    "who": signer,
                }
            ],
            "signature": [
                {
                    "type": [SIGNATURE_TYPE],
                    "when": now,
                    "who": signer,
                    "targetFormat": "application/json",
                    "sigFormat": SIG_FORMAT,
                    "data": sign(signing_secret, p.tenant_code, p.label, prescription),
                }
            ],
        },
        rtype="Provenance",
    ).resource
    return {"prescription": created, "provenance": provenance}


def _online_prescription(repo: Repository, prescription_id: str) -> StoredResource:
    try:
        stored = repo.read("MedicationRequest", prescription_id)
    except (NotFound, Gone):
        stored = None
    if stored is None or not has_tag(stored.as_dict(), ONLINE_PRESCRIPTION_TAG["code"]):
        raise NotFound(f"未找到互联网处方 {prescription_id}", f"Online prescription {prescription_id} was not found")
    return stored


def _require_pharmacist(repo: Repository, zh: str, en: str) -> None:
    if repo.principal.role != "pharmacist":
        raise Forbidden(f"只有药师可以{zh}", f"Only a pharmacist may {en}")


def _not_reviewable(status: str) -> Conflict:
    return Conflict(
        f"处方当前状态为 {status}，只有待审核（draft）的处方可以审核",
        f"The prescription is {status}; only a draft prescription can be reviewed",
        element="MedicationRequest.status",
    )


def _review(repo: Repository, outcome: str, reason: str | None = None) -> dict:
    parts = [
        {"url": "outcome", "valueCode": outcome},
        {"url": "reviewer", "valueString": repo.principal.label},
        {"url": "at", "valueInstant": fhir_instant(_now())},
    ]
    if reason:
        parts.append({"url": "reason", "valueString": reason})
    return {"url": REVIEW, "extension": parts}


def approve_prescription(repo: Repository, prescription_id: str, *, signing_secret: str) -> StoredResource:
    """The pharmacist's approval: checks the physician's signature, then the prescription becomes active."""
    _require_pharmacist(repo, "审核处方", "review prescriptions")
    stored = _online_prescription(repo, prescription_id)
    body = stored.as_dict()
    if body.get("status") != "draft":
        raise _not_reviewable(body.get("status", ""))
    if not verify_signature(repo, body, signing_secret):
        raise Conflict(
            "处方缺少有效的医师电子签名，不能审核通过",
            "The prescription has no valid electronic signature of its physician, so it cannot be approved",
            element="Provenance.signature",
        )
    body["status"] = "active"
    body["extension"] = [e for e in body.get("extension") or [] if e.get("url") != REVIEW] + [_review(repo, "approved")]
    return _save(repo, stored, body)


def reject_prescription(repo: Repository, prescription_id: str, *, reason: str | None) -> StoredResource:
    """The pharmacist's rejection: the prescription is cancelled, with a reason the physician sees."""
    _require_pharmacist(repo, "审核处方", "review prescriptions")
    stored = _online_prescription(repo, prescription_id)
    body = stored.as_dict()
    if body.get("status") != "draft":
        raise _not_reviewable(body.get("status", ""))
    if not reason or not reason.strip():
        raise BadRequest("驳回处方须填写理由（reason）", "Rejecting a prescription needs a reason", element="reason")
    body["status"] = "cancelled"
    body["statusReason"] = {"text": reason.strip()[:2000]}
    body["extension"] = [e for e in body.get("extension") or [] if e.get("url") != REVIEW] + [
        _review(repo, "rejected", reason.strip()[:2000])
    ]
    return _save(repo, stored, body)


def _dispenses(repo: Repository, prescription_id: str) -> list[StoredResource]:
    return repo.search(
        "MedicationDispense", [("prescription", f"MedicationRequest/{prescription_id}"), ("_count", "20")]
    ).matches


def _delivery_task(repo: Repository, dispense_id: str) -> StoredResource | None:
    page = repo.search(
        "Task",
        [("focus", f"MedicationDispense/{dispense_id}"), ("code", f"{TASK_CODES}|delivery"), ("_count", "1")],
    )
    return page.matches[0] if page.matches else None


def dispense(repo: Repository, prescription_id: str) -> dict:
    """The pharmacy dispenses an approved prescription and starts its delivery."""
    _require_pharmacist(repo, "发药", "dispense")
    stored = _online_prescription(repo, prescription_id)
    mr = stored.as_dict()
    if mr.get("status") != "active":
        raise Conflict(
            "处方未经药师审核通过，不能发药",
            "The prescription has not been approved by a pharmacist, so it cannot be dispensed",
            element="MedicationRequest.status",
        )
    if any(d.as_dict().get("status") not in rules.NOT_HANDED_OUT for d in _dispenses(repo, prescription_id)):
        raise Conflict("该处方已发药", "This prescription has already been dispensed", element="MedicationDispense")
    now = fhir_instant(_now())
    body: dict = {
        "resourceType": "MedicationDispense",
        "meta": {"tag": [CONSULT_TAG]},
        "status": "in-progress",
        "medicationCodeableConcept": mr["medicationCodeableConcept"],
        "subject": mr["subject"],
        "context": mr.get("encounter"),
        "authorizingPrescription": [{"reference": f"MedicationRequest/{stored.id}"}],
        "whenPrepared": now,
        "dosageInstruction": mr.get("dosageInstruction"),
    }
    if (mr.get("dispenseRequest") or {}).get("quantity"):
        body["quantity"] = mr["dispenseRequest"]["quantity"]
    if repo.principal.practitioner_id:
        body["performer"] = [{"actor": {"reference": f"Practitioner/{repo.principal.practitioner_id}"}}]
    created = repo.create({k: v for k, v in body.items() if v is not None}, rtype="MedicationDispense").resource
    task = repo.create(
        {
            "resourceType": "Task",
            "meta": {"tag": [CONSULT_TAG]},
            "status": "in-progress",
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODES, "code": "delivery", "display": "药品配送"}]},
            "businessStatus": _delivery_status("preparing"),
            "focus": {"reference": f"MedicationDispense/{created.id}"},
            "basedOn": [{"reference": f"MedicationRequest/{stored.id}"}],
            "for": mr["subject"],
            "encounter": mr.get("encounter"),
            "authoredOn": now,
            "lastModified": now,
        },
        rtype="Task",
    ).resource
    return {"dispense": created, "delivery": task}


def _delivery_status(step: str) -> dict:
    return {"coding": [{"system": DELIVERY_STATUS, "code": step}], "text": f"{DELIVERY_ZH[step]} / {step}"}


def _step_of(task: dict) -> str:
    return next((c.get("code") for c in (task.get("businessStatus") or {}).get("coding") or []), "preparing")


def update_delivery(repo: Repository, prescription_id: str, *, step: str, note: str | None = None) -> StoredResource:
    """Moves the delivery forward: preparing -> shipped -> in-transit -> delivered (pharmacy or courier)."""
    if repo.principal.role not in ("pharmacist", "integration"):
        raise Forbidden("只有药房或配送方可以更新配送状态", "Only the pharmacy or the courier may update a delivery")
    if step not in DELIVERY_STEPS:
        raise BadRequest(
            f"配送状态应为 {'、'.join(DELIVERY_STEPS)} 之一",
            f"The delivery status must be one of {', '.join(DELIVERY_STEPS)}",
            element="status",
        )
    _online_prescription(repo, prescription_id)
    dispenses = [d for d in _dispenses(repo, prescription_id) if d.as_dict().get("status") not in rules.NOT_HANDED_OUT]
    task = _delivery_task(repo, dispenses[0].id) if dispenses else None
    if task is None:
        raise Conflict("该处方尚未发药，没有配送记录", "The prescription has not been dispensed; there is no delivery")
    body = task.as_dict()
    current = _step_of(body)
    if DELIVERY_STEPS.index(step) <= DELIVERY_STEPS.index(current):
        raise Conflict(
            f"配送状态已是“{DELIVERY_ZH[current]}”，不能改为“{DELIVERY_ZH[step]}”",
            f"The delivery is already {current}; it cannot become {step}",
            element="status",
        )
    now = fhir_instant(_now())
    body["businessStatus"] = _delivery_status(step)
    body["lastModified"] = now
    if note and note.strip():
        body.setdefault("note", []).append({"text": note.strip()[:500], "time": now})
    if step == "delivered":
        body["status"] = "completed"
        handed = dispenses[0].as_dict()
        handed["status"] = "completed"
        handed["whenHandedOver"] = now
        _save(repo, dispenses[0], handed)
    return _save(repo, task, body)


def prescription_status(repo: Repository, prescription_id: str) -> dict:
    """What the patient and the physician see of a prescription: review, dispensing, delivery steps."""
    stored = _online_prescription(repo, prescription_id)
    mr = stored.as_dict()
    review = sub_values(extension(mr, REVIEW))
    view: dict = {
        "id": stored.id,
        "status": mr.get("status"),
        "medication": mr.get("medicationCodeableConcept"),
        "dosage": [d.get("text") for d in mr.get("dosageInstruction") or []],
        "consult": (mr.get("encounter") or {}).get("reference", "").removeprefix("Encounter/") or None,
        "review": {"outcome": review.get("outcome"), "at": review.get("at"), "reason": review.get("reason")}
        if review
        else None,
        "rejection_reason": (mr.get("statusReason") or {}).get("text"),
        "dispense": None,
        "delivery": None,
    }
    dispenses = _dispenses(repo, prescription_id)
    if dispenses:
        d = dispenses[-1].as_dict()
        view["dispense"] = {"id": d["id"], "status": d.get("status"), "handed_over": d.get("whenHandedOver")}
        task = _delivery_task(repo, d["id"])
        if task is not None:
            versions = repo.history("Task", task.id, count=50).versions
            steps = []
            for v in reversed(versions):
                step = _step_of(v.as_dict())
                if not steps or steps[-1]["status"] != step:
                    steps.append(
                        {"status": step, "status_zh": DELIVERY_ZH[step], "at": v.as_dict()["meta"]["lastUpdated"]}
                    )
            current = _step_of(task.as_dict())
            reached = {s["status"]: s["at"] for s in steps}
            view["delivery"] = {
                "status": current,
                "status_zh": DELIVERY_ZH[current],
                "history": steps,
                "next": DELIVERY_STEPS[DELIVERY_STEPS.index(current) + 1 :],
                "steps": [
                    {
                        "status": step,
                        "status_zh": DELIVERY_ZH[step],
                        "done": i <= DELIVERY_STEPS.index(current),
                        "current": step == current,
                        "at": reached.get(step),
                    }
                    for i, step in enumerate(DELIVERY_STEPS)
                ],
            }
    return view


def consult_prescriptions(repo: Repository, consult_id: str) -> list[StoredResource]:
    return repo.search("MedicationRequest", [("encounter", f"Encounter/{consult_id}"), ("_count", "100")]).matches
