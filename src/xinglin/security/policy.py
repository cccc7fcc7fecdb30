"""Who may do what. The repository asks `authorize` before every read and write.

Rules, in order:
1. Tokens carry SMART-style scopes (`patient/*.read`, `user/*.*`, `system/*.*`); an action needs a scope
   that grants it.
2. Roles narrow that: a patient sees only their own compartment (and the hospital directory); staff see
   their tenant, within what their job needs; researchers see no identified data at all; audit records
   are read by admins only and written by nobody.
Tenant scope is not a rule here: the repository filters every query by the principal's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

from xinglin.core.errors import Forbidden
from xinglin.security.principal import Principal
from xinglin.store.search_params import DIRECTORY_TYPES, PATIENT_COMPARTMENT

READ_ACTIONS = frozenset({"read", "vread", "search", "history"})
WRITE_ACTIONS = frozenset({"create", "update", "delete"})

ROLE_SCOPES = {
    "patient": ("patient/*.read", "patient/*.write"),
    "physician": ("user/*.*",),
    "nurse": ("user/*.*",),
    "pharmacist": ("user/*.*",),
    "registrar": ("user/*.*",),
    "admin": ("user/*.*",),
    "researcher": ("user/*.read",),
    "integration": ("system/*.*",),
}

# What a patient may write about themselves through the API (requests, consent, messages, uploads).
PATIENT_WRITABLE = frozenset(
    {"Appointment", "Consent", "Communication", "QuestionnaireResponse", "DocumentReference", "Task"}
)
# Pharmacists review and dispense; they read the whole record but write only these.
PHARMACIST_WRITABLE = frozenset(
    {
        "MedicationRequest",
        "MedicationDispense",
        "MedicationAdministration",
        "Medication",
        "Provenance",
        "Task",
        "Communication",
    }
)
# Registration staff manage people, bookings and visits, not clinical findings.
REGISTRAR_TYPES = frozenset(
    {
        "Patient",
        "RelatedPerson",
        "Appointment",
        "Schedule",
        "Slot",
        "Encounter",
        "Coverage",
        "Consent",
        "Task",
        "Account",
    }
)
ADMIN_ONLY_READ = frozenset({"AuditEvent"})


@dataclass(frozen=True, slots=True)
class Access:
    """What the caller may see of a type: everything in the tenant, or one patient's compartment."""

    compartment_patient: str | None = None


def _deny(principal: Principal, action: str, resource_type: str) -> Forbidden:
    return Forbidden(
        f"角色“{principal.role}”无权对 {resource_type} 执行 {action} 操作",
        f"Role '{principal.role}' may not {action} {resource_type}",
    )


def _scope_allows(scopes: tuple[str, ...], action: str, resource_type: str) -> bool:
    need = "read" if action in READ_ACTIONS else "write"
    for scope in scopes:
        _, _, rest = scope.partition("/")
        rtype, _, perm = rest.rpartition(".")
        if rtype in ("*", resource_type) and perm in ("*", need):
            return True
    return False


def authorize(principal: Principal, action: str, resource_type: str) -> Access:
    """Raises Forbidden, or says how far the caller's view of the type reaches."""
    if principal.role == "system":
        if action in WRITE_ACTIONS and resource_type == "AuditEvent":
            raise _deny(principal, action, resource_type)
        return Access()
    if not _scope_allows(principal.scopes, action, resource_type):
        raise _deny(principal, action, resource_type)
    if resource_type == "AuditEvent":
        if action in READ_ACTIONS and principal.role in ("admin", "integration"):
            return Access()
        raise _deny(principal, action, resource_type)
    role = principal.role
    if role == "patient":
        if not principal.patient_id:
            raise _deny(principal, action, resource_type)
        if resource_type in DIRECTORY_TYPES and action in READ_ACTIONS:
            return Access()
        if resource_type != "Patient" and resource_type not in PATIENT_COMPARTMENT:
            raise _deny(principal, action, resource_type)
        if action in WRITE_ACTIONS and resource_type not in PATIENT_WRITABLE:
            raise _deny(principal, action, resource_type)
        return Access(compartment_patient=principal.patient_id)
    if role == "researcher":
        # Identified data never reaches researchers through the clinical API; they get de-identified
        # data sets from the share module.
        raise _deny(principal, action, resource_type)
    if role == "pharmacist" and action in WRITE_ACTIONS and resource_type not in PHARMACIST_WRITABLE:
        raise _deny(principal, action, resource_type)
    if (
        role == "registrar"
        and resource_type not in REGISTRAR_TYPES
        and not (resource_type in DIRECTORY_TYPES and action in READ_ACTIONS)
    ):
        raise _deny(principal, action, resource_type)
    if role in ("physician", "nurse", "pharmacist", "registrar", "admin", "integration"):
        return Access()
    raise _deny(principal, action, resource_type)


def in_compartment(patient_id: str, resource_type: str, resource_id: str, references: list[dict]) -> bool:
    """Whether a resource (given its reference index rows) belongs to the patient's compartment."""
    if resource_type == "Patient":
        return resource_id == patient_id
    params = PATIENT_COMPARTMENT.get(resource_type, ())
    return any(
        r["param"] in params and r["target_id"] == patient_id and r["target_type"] in ("Patient", None)
        for r in references
    )
