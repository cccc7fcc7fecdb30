"""Data shapes of the online follow-up consultation: codes, extensions, the consult state machine, drug lists.

How the workflow maps onto FHIR R4 (no private tables):

* consult = `Encounter`, class `VR` (virtual), tagged `https://xinglin.dev/tags|online-consultation`.
  Its workflow state is Encounter.status (see STATE_OF_STATUS): requested = `planned`, in-progress,
  finished, cancelled; every change is appended to Encounter.statusHistory. The department (诊疗科目 code)
  is in Encounter.serviceType and, so the queue is a plain search, in Encounter.type. There is no
  separate queue Task: the queue of a department is `Encounter?class=VR&status=planned&type=<dept>`.
* the earlier in-person visit, diagnosis or uploaded record = extension FOLLOW_UP_OF (and
  Encounter.reasonReference when it is a Condition); a child's guardian = Encounter.participant
  (type v3-RoleCode GUARD, a RelatedPerson or a name).
* the physician's real-name re-authentication = extension REAL_NAME (short-lived, single use); the
  acceptance = extension ACCEPTED (practitioner, account, time) plus Encounter.participant PPRF.
* messages = `Communication` (payload contentString, or contentAttachment with an image/* type).
* summary = `DocumentReference` (LOINC 11488-4 consult note, context.encounter), part of the outpatient
  record; follow-up reminder = `Task` (code follow-up) due at executionPeriod.start / restriction.period.end.
* e-prescription = `MedicationRequest` tagged ONLINE_PRESCRIPTION_TAG, status draft until a pharmacist
  approves (active) or rejects it (cancelled, statusReason); the pharmacist's review is the extension
  REVIEW. Signature = `Provenance` targeting it, with an HMAC-SHA256 `signature` (see service.sign).
* dispensing = `MedicationDispense`; delivery = `Task` (code delivery, focus the dispense) whose
  businessStatus follows DELIVERY_STEPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from xinglin.core.errors import Conflict

TAGS = "https://xinglin.dev/tags"
CONSULT_TAG = {"system": TAGS, "code": "online-consultation"}
ONLINE_PRESCRIPTION_TAG = {"system": TAGS, "code": "online-prescription"}
MACHINE_GENERATED = "machine-generated"

SD = "https://xinglin.dev/StructureDefinition/"
FOLLOW_UP_OF = SD + "follow-up-of"
REAL_NAME = SD + "real-name-confirmation"
ACCEPTED = SD + "consult-accepted"
REVIEW = SD + "pharmacist-review"
SIGNER_SYSTEM = "https://xinglin.dev/user"

TASK_CODES = "https://xinglin.dev/CodeSystem/telehealth-task"
DELIVERY_STATUS = "https://xinglin.dev/CodeSystem/delivery-status"
CONSULT_TYPE = "https://xinglin.dev/CodeSystem/encounter-type"
DEPARTMENTS = "https://xinglin.dev/CodeSystem/zlkm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ATC = "http://www.whocc.no/atc"

GUARDIAN_AGE = 6  # a child under 6 needs a guardian present (互联网诊疗管理办法 第十七条)
REAL_NAME_TTL_SECONDS = 300
IN_PERSON_CLASSES = frozenset({"AMB", "IMP"})
# Images in consult messages: the formats every browser shows, recognised by their first bytes as well.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_SIGNATURES = {
    "image/jpeg": lambda raw: raw[:3] == b"\xff\xd8\xff",
    "image/png": lambda raw: raw[:8] == b"\x89PNG\r\n\x1a\n",
    "image/webp": lambda raw: raw[:4] == b"RIFF" and raw[8:12] == b"WEBP",
}
MAX_IMAGE_BYTES = 5 * 1024 * 1024

# workflow state <-> Encounter.status
STATUS_OF_STATE = {
    "requested": "planned",
    "in-progress": "in-progress",
    "finished": "finished",
    "cancelled": "cancelled",
}
STATE_OF_STATUS = {v: k for k, v in STATUS_OF_STATE.items()}
STATE_ZH = {"requested": "待接诊", "in-progress": "问诊中", "finished": "已结束", "cancelled": "已取消"}

# (state, action) -> next state
TRANSITIONS = {
    ("requested", "accept"): "in-progress",
    ("requested", "cancel"): "cancelled",
    ("in-progress", "close"): "finished",
}
ACTION_ZH = {
    "accept": "接诊",
    "cancel": "取消",
    "close": "结束问诊",
    "message": "发送消息",
    "prescribe": "开具处方",
    "confirm": "实名认证",
}
# actions that need the consult in a state without changing it
STATE_NEEDED = {"message": "in-progress", "prescribe": "in-progress", "confirm": "requested"}

DELIVERY_STEPS = ("preparing", "shipped", "in-transit", "delivered")
DELIVERY_ZH = {"preparing": "备药中", "shipped": "已发货", "in-transit": "配送中", "delivered": "已送达"}


def state_of(encounter: dict) -> str:
    return STATE_OF_STATUS.get(encounter.get("status", ""), encounter.get("status", "unknown"))


def next_state(state: str, action: str) -> str:
    """The state after an action, or 409 naming the state and the action (zh/en)."""
    target = TRANSITIONS.get((state, action))
    if target is None and STATE_NEEDED.get(action) == state:
        return state
    if target is None:
        raise Conflict(
            f"问诊当前状态为“{STATE_ZH.get(state, state)}”，不能{ACTION_ZH.get(action, action)}",
            f"The consult is {state}; it cannot be {_EN_DONE.get(action, action)}",
            element="Encounter.status",
        )
    return target


_EN_DONE = {
    "accept": "accepted",
    "cancel": "cancelled",
    "close": "closed",
    "message": "messaged",
    "prescribe": "prescribed in",
    "confirm": "confirmed for acceptance",
}


@dataclass(frozen=True, slots=True)
class ControlledDrug:
    zh: str
    en: str
    atc: tuple[str, ...]
    kind: str  # narcotic | psychotropic
    aliases: tuple[str, ...] = ()

    @property
    def kind_zh(self) -> str:
        return "麻醉药品" if self.kind == "narcotic" else "精神药品"


@dataclass(frozen=True, slots=True)
class ControlledList:
    drugs: tuple[ControlledDrug, ...]
    atc_prefixes: tuple[str, ...]

    def match(self, medication: dict | None) -> ControlledDrug | None:
        """The controlled drug a medicationCodeableConcept names (by code or name), if any."""
        if not medication:
            return None
        codes = {str(c.get("code", "")).upper() for c in medication.get("coding") or [] if c.get("code")}
        names = [medication.get("text") or ""] + [c.get("display") or "" for c in medication.get("coding") or []]
        text = " ".join(names).lower()
        for drug in self.drugs:
            if codes & set(drug.atc):
                return drug
            if any(n.lower() in text for n in (drug.zh, drug.en, *drug.aliases) if n):
                return drug
        for code in codes:
            if any(code.startswith(p) for p in self.atc_prefixes):
                return ControlledDrug(
                    zh=code, en=code, atc=(code,), kind="narcotic" if "N02A" in code else "psychotropic"
                )
        return None


@lru_cache(maxsize=1)
def controlled_drugs() -> ControlledList:
    text = resources.files("xinglin.telehealth").joinpath("data/controlled_drugs.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return ControlledList(
        drugs=tuple(
            ControlledDrug(
                zh=d["zh"],
                en=d["en"],
                atc=tuple(str(a).upper() for a in d.get("atc") or ()),
                kind=d["class"],
                aliases=tuple(d.get("aliases") or ()),
            )
            for d in data["drugs"]
        ),
        atc_prefixes=tuple(str(p).upper() for p in data.get("atc_prefixes") or ()),
    )


def has_tag(resource: dict | None, code: str) -> bool:
    meta = (resource or {}).get("meta") or {}
    return any(
        t.get("system") == TAGS and t.get("code") == code
        for t in (meta.get("tag") or []) + (meta.get("security") or [])
    )


def extension(resource: dict, url: str) -> dict | None:
    return next((e for e in resource.get("extension") or [] if e.get("url") == url), None)


def sub_values(ext: dict | None) -> dict:
    """{url: value} of a complex extension's parts."""
    out = {}
    for part in (ext or {}).get("extension") or []:
        for key, value in part.items():
            if key.startswith("value"):
                out[part["url"]] = value
    return out
