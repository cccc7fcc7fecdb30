"""Store rules of online prescribing: they hold however a MedicationRequest is written (API, FHIR, import).

* A MedicationRequest tagged `https://xinglin.dev/tags|machine-generated` is never created or updated:
  AI must never generate a prescription (互联网诊疗监管细则 第十三条).
* An online prescription (tagged `online-prescription`): created only as `draft`, never for a narcotic or
  psychotropic drug; only a pharmacist makes it `active`; the tag cannot be removed.
* A MedicationDispense of an online prescription needs that prescription approved (`active`/`completed`).
"""

from __future__ import annotations

from xinglin.core.errors import Conflict, Forbidden, Gone, InvalidResource, NotFound
from xinglin.store.hooks import register
from xinglin.store.repository import Repository
from xinglin.telehealth.models import MACHINE_GENERATED, ONLINE_PRESCRIPTION_TAG, controlled_drugs, has_tag

APPROVED = frozenset({"active", "completed"})
NOT_HANDED_OUT = frozenset({"cancelled", "stopped", "declined", "entered-in-error"})


def ai_refused() -> Forbidden:
    return Forbidden(
        "人工智能不得生成处方：处方必须由医师本人开具",
        "AI must never generate a prescription: the physician must issue it personally",
        element="MedicationRequest.meta.tag",
    )


def controlled_refused(medication: dict | None) -> InvalidResource | None:
    drug = controlled_drugs().match(medication)
    if drug is None:
        return None
    kind_en = "narcotic" if drug.kind == "narcotic" else "psychotropic"
    return InvalidResource(
        f"互联网诊疗不得开具{drug.kind_zh}：{drug.zh}，请到医院线下就诊",
        f"Narcotic and psychotropic drugs cannot be prescribed online: {drug.en} is a {kind_en} drug; "
        "please see a doctor in person",
        element="MedicationRequest.medicationCodeableConcept",
    )


def guard_prescription(repo: Repository, action: str, new: dict | None, old: dict | None) -> None:
    if new is None:
        return
    if has_tag(new, MACHINE_GENERATED):
        raise ai_refused()
    online = has_tag(new, ONLINE_PRESCRIPTION_TAG["code"])
    if has_tag(old, ONLINE_PRESCRIPTION_TAG["code"]) and not online:
        raise Forbidden(
            "互联网处方的标记不能移除",
            "The online-prescription tag cannot be removed",
            element="MedicationRequest.meta",
        )
    if not online:
        return
    if action == "create" and new.get("status") != "draft":
        raise InvalidResource(
            "互联网处方须以草稿（draft）开具，药师审核通过后才生效",
            "An online prescription is created as draft; it takes effect only when a pharmacist approves it",
            element="MedicationRequest.status",
        )
    refusal = controlled_refused(new.get("medicationCodeableConcept"))
    if refusal is not None:
        raise refusal
    was_active = (old or {}).get("status") in APPROVED
    if new.get("status") in APPROVED and not was_active and repo.principal.role != "pharmacist":
        raise Forbidden(
            "互联网处方须经药师审核通过后才能生效",
            "Only a pharmacist's approval makes an online prescription active",
            element="MedicationRequest.status",
        )


def guard_dispense(repo: Repository, action: str, new: dict | None, old: dict | None) -> None:
    if new is None or new.get("status") in NOT_HANDED_OUT:
        return
    for ref in new.get("authorizingPrescription") or []:
        target = (ref or {}).get("reference", "")
        if not target.startswith("MedicationRequest/"):
            continue
        try:
            prescription = repo.as_system("dispense check").read("MedicationRequest", target.split("/", 2)[1]).as_dict()
        except (NotFound, Gone):
            raise InvalidResource(
                f"发药所依据的处方 {target} 不存在",
                f"The prescription {target} being dispensed does not exist",
                element="MedicationDispense.authorizingPrescription",
            ) from None
        if has_tag(prescription, ONLINE_PRESCRIPTION_TAG["code"]) and prescription.get("status") not in APPROVED:
            raise Conflict(
                "处方未经药师审核通过，不能发药",
                "The prescription has not been approved by a pharmacist, so it cannot be dispensed",
                element="MedicationDispense.authorizingPrescription",
            )


register("MedicationRequest", guard_prescription)
register("MedicationDispense", guard_dispense)
