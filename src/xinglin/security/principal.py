"""Who is making a request: the Principal every store call is made on behalf of."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: int
    tenant_code: str
    username: str
    role: str
    user_id: int | None = None
    patient_id: str | None = None  # the Patient a `patient` user is linked to
    practitioner_id: str | None = None
    scopes: tuple[str, ...] = field(default_factory=tuple)
    client_address: str | None = None
    purpose: str = "TREAT"  # HL7 PurposeOfUse code recorded in audit

    @property
    def label(self) -> str:
        return f"{self.role}:{self.username}"

    def with_request(self, *, client_address: str | None, purpose: str | None = None) -> Principal:
        return replace(self, client_address=client_address, purpose=purpose or self.purpose)


def system_principal(tenant_id: int, tenant_code: str, *, name: str = "system", purpose: str = "HOPERAT"):
    """Xinglin itself acting (demo loader, migrations, jobs). Audited like anyone else."""
    return Principal(
        tenant_id=tenant_id,
        tenant_code=tenant_code,
        username=name,
        role="system",
        scopes=("system/*.*",),
        purpose=purpose,
    )
