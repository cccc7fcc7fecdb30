"""Consent per purpose (PIPL arts. 29, 31, 23, 39), stored as FHIR R4 `Consent` resources.

Each purpose is a separate Consent: `Consent.category` and `Consent.provision.purpose` carry a code of
`https://xinglin.dev/CodeSystem/consent-purpose`. A Consent is in force while its status is `active` and
its provision is a `permit` whose period has not ended. Withdrawing sets the status to `inactive` and ends
the period at once, so no later processing finds it.

`require_consent` is THE check every processing path makes (online consultation, research export,
cross-border transfer ...). It looks the Consent up as Xinglin itself (`Repository.as_system`), so the
check works whatever the caller's role, and the lookup is audited naming the caller.

A child under 14 (age from Patient.birthDate, on today's date in China) consents through a guardian:
either a `RelatedPerson` reference or a name and relationship. The guardian is the Consent's performer
and is also written to the extension `https://xinglin.dev/StructureDefinition/consent-guardian`.
A Patient without a birth date is treated as an adult (the registration flow requires the date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, Forbidden, InvalidResource
from xinglin.store.repository import Repository, StoredResource

PURPOSE_SYSTEM = "https://xinglin.dev/CodeSystem/consent-purpose"
GUARDIAN_EXTENSION = "https://xinglin.dev/StructureDefinition/consent-guardian"
GUARDIAN_AGE = 14
CHINA = ZoneInfo("Asia/Shanghai")

PURPOSES: dict[str, tuple[str, str]] = {
    "treatment": ("诊疗", "treatment"),
    "online-consultation": ("互联网复诊", "online consultation"),
    "research": ("科研数据共享", "research sharing"),
    "cross-border": ("数据出境", "cross-border transfer"),
}


@dataclass(frozen=True, slots=True)
class Guardian:
    """Who consents for a child: a RelatedPerson reference, or a name with the relationship."""

    reference: str | None = None  # "RelatedPerson/<id>"
    name: str | None = None
    relationship: str | None = None  # e.g. 母亲 / mother

    @classmethod
    def from_dict(cls, data: dict | None) -> Guardian | None:
        if not data:
            return None
        return cls(reference=data.get("reference"), name=data.get("name"), relationship=data.get("relationship"))


def today_in_china() -> date:
    return utcnow().astimezone(CHINA).date()


def age_on(birth_date: str | None, day: date | None = None) -> int | None:
    """Whole years of age from a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD); None when unknown."""
    if not birth_date:
        return None
    parts = [int(p) for p in birth_date[:10].split("-")]
    year, month, dom = [*parts, 1, 1][:3]
    day = day or today_in_china()
    return day.year - year - ((day.month, day.day) < (month, dom))


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise BadRequest(
            f"未知的同意目的“{purpose}”（可选：{'、'.join(PURPOSES)}）",
            f"Unknown consent purpose '{purpose}' (one of {', '.join(PURPOSES)})",
            element="purpose",
        )


def _purpose_coding(purpose: str) -> dict:
    zh, en = PURPOSES[purpose]
    return {"system": PURPOSE_SYSTEM, "code": purpose, "display": f"{zh} / {en}"}


def guardian_parts(repo: Repository, patient_id: str, guardian: Guardian) -> tuple[dict, dict]:
    """(performer reference, guardian extension) for a guardian; refuses incomplete details.

    Shared with the telehealth guardian rule (a child under 6 at an online consult).
    """
    if guardian.reference:
        if not guardian.reference.startswith("RelatedPerson/"):
            raise InvalidResource(
                "监护人引用应为 RelatedPerson/<id>",
                "The guardian reference must be RelatedPerson/<id>",
                element="guardian.reference",
            )
        related = repo.as_system("consent guardian check").read("RelatedPerson", guardian.reference.split("/", 1)[1])
        if (related.as_dict().get("patient") or {}).get("reference") != f"Patient/{patient_id}":
            raise InvalidResource(
                "该监护人（RelatedPerson）与该患者无关",
                "The guardian is not related to this patient",
                element="guardian.reference",
            )
        performer = {"reference": guardian.reference}
        parts = [{"url": "reference", "valueReference": performer}]
        if guardian.relationship:
            parts.append({"url": "relationship", "valueString": guardian.relationship})
    else:
        if not (guardian.name and guardian.name.strip() and guardian.relationship and guardian.relationship.strip()):
            raise InvalidResource(
                "监护人信息不完整：需要监护人的姓名（guardian.name）和与患者的关系（guardian.relationship）",
                "Guardian details are incomplete: guardian.name and guardian.relationship are both required",
                element="guardian",
            )
        performer = {"display": guardian.name.strip()}
        parts = [
            {"url": "name", "valueString": guardian.name.strip()},
            {"url": "relationship", "valueString": guardian.relationship.strip()},
        ]
    return performer, {"url": GUARDIAN_EXTENSION, "extension": parts}


def _active_consents(repo: Repository, patient_id: str, purpose: str) -> list[StoredResource]:
    page = repo.search(
        "Consent",
        [
            ("patient", f"Patient/{patient_id}"),
            ("category", f"{PURPOSE_SYSTEM}|{purpose}"),
            ("status", "active"),
            ("_count", "100"),
        ],
    )
    return page.matches


def _in_force(consent: dict, now: datetime) -> bool:
    provision = consent.get("provision") or {}
    if consent.get("status") != "active" or provision.get("type", "permit") != "permit":
        return False
    end = (provision.get("period") or {}).get("end")
    return not (end and end <= fhir_instant(now))


def grant_consent(
    repo: Repository, patient_id: str, purpose: str, *, guardian: Guardian | dict | None = None
) -> StoredResource:
    """Records the patient's (or their guardian's) consent to one purpose; returns the Consent.

    Granting a purpose that is already in force returns the existing Consent unchanged.
    """
    _check_purpose(purpose)
    if isinstance(guardian, dict):
        guardian = Guardian.from_dict(guardian)
    patient = repo.read("Patient", patient_id).as_dict()
    age = age_on(patient.get("birthDate"))
    child = age is not None and age < GUARDIAN_AGE
    if child and guardian is None:
        raise InvalidResource(
            "未满 14 周岁的患者须由监护人同意：请提供监护人（guardian：RelatedPerson 引用，或姓名和关系）",
            "A patient under 14 needs a guardian's consent: give the guardian "
            "(guardian: a RelatedPerson reference, or name and relationship)",
            element="guardian",
        )
    now = utcnow()
    for existing in _active_consents(repo.as_system("consent check"), patient_id, purpose):
        if _in_force(existing.as_dict(), now):
            return existing
    body: dict = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [_purpose_coding(purpose)]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": fhir_instant(now),
        "policyRule": {"text": "《个人信息保护法》第二十九条（单独同意） / PIPL art. 29 (separate consent)"},
        "provision": {"type": "permit", "period": {"start": fhir_instant(now)}, "purpose": [_purpose_coding(purpose)]},
    }
    if guardian is not None and (child or guardian.reference or guardian.name):
        performer, extension = guardian_parts(repo, patient_id, guardian)
        body["performer"] = [performer]
        body["extension"] = [extension]
    else:
        body["performer"] = [{"reference": f"Patient/{patient_id}"}]
    return repo.create(body, rtype="Consent").resource


def withdraw_consent(repo: Repository, patient_id: str, purpose: str) -> list[StoredResource]:
    """Withdraws consent to a purpose, effective at once; returns the Consents that were withdrawn."""
    _check_purpose(purpose)
    repo.read("Patient", patient_id)  # the caller must be able to see this patient
    now = fhir_instant(utcnow())
    withdrawn = []
    for stored in _active_consents(repo.as_system("consent check"), patient_id, purpose):
        consent = stored.as_dict()
        consent["status"] = "inactive"
        provision = consent.setdefault("provision", {})
        provision.setdefault("period", {})["end"] = now
        withdrawn.append(repo.update("Consent", stored.id, consent, if_match=stored.version_id).resource)
    return withdrawn


def has_consent(repo: Repository, patient_id: str, purpose: str) -> bool:
    """Whether a consent to the purpose is in force now (checked as Xinglin itself, audited)."""
    _check_purpose(purpose)
    now = utcnow()
    return any(
        _in_force(c.as_dict(), now) for c in _active_consents(repo.as_system("consent check"), patient_id, purpose)
    )


def require_consent(repo: Repository, patient_id: str, purpose: str) -> None:
    """THE consent check of every processing path: raises Forbidden naming the missing purpose."""
    if not has_consent(repo, patient_id, purpose):
        zh, en = PURPOSES[purpose]
        raise Forbidden(
            f"患者尚未同意“{zh}”（{purpose}），或已撤回同意：请先取得患者的单独同意",
            f"The patient has not consented to {en} ({purpose}), or has withdrawn consent: "
            "obtain the patient's separate consent first",
            element="Consent",
        )
