"""Residency and the cross-border export gate (PIPL arts. 38-39).

Storage and exports stay in the country by default. A destination is an Organization the tenant records
(identifier system DESTINATION_SYSTEM), marked domestic or abroad; an export abroad needs the legal basis
the tenant recorded for that destination (security assessment, standard contract or certification, with its
reference) AND each included patient's separate cross-border consent. A refusal says which is missing.
"""

from __future__ import annotations

from xinglin.core.errors import BadRequest, Forbidden, NotFound
from xinglin.privacy.consent import has_consent
from xinglin.store.repository import Repository, StoredResource

DESTINATION_SYSTEM = "https://xinglin.dev/export-destination"
RESIDENCY = "https://xinglin.dev/fhir/StructureDefinition/data-residency"
LEGAL_BASIS = "https://xinglin.dev/fhir/StructureDefinition/cross-border-legal-basis"
BASES = {
    "security-assessment": ("数据出境安全评估", "security assessment"),
    "standard-contract": ("个人信息出境标准合同", "standard contract"),
    "certification": ("个人信息保护认证", "certification"),
}


def register_destination(
    repo: Repository, name: str, *, abroad: bool, basis: str | None = None, basis_reference: str | None = None
) -> StoredResource:
    """Records where exported data may go; abroad destinations may carry the tenant's legal basis."""
    if basis is not None and basis not in BASES:
        raise BadRequest(
            f"未知的出境依据 {basis}（可选：{', '.join(BASES)}）",
            f"Unknown legal basis {basis} (one of {', '.join(BASES)})",
            element="basis",
        )
    if basis is not None and not (basis_reference or "").strip():
        raise BadRequest(
            "出境依据需要备案编号或合同编号",
            "A legal basis needs its reference (filing or contract number)",
            element="basis_reference",
        )
    extensions = [{"url": RESIDENCY, "valueCode": "abroad" if abroad else "domestic"}]
    if basis:
        extensions.append(
            {
                "url": LEGAL_BASIS,
                "extension": [
                    {"url": "kind", "valueCode": basis},
                    {"url": "reference", "valueString": basis_reference},
                ],
            }
        )
    body = {
        "resourceType": "Organization",
        "name": name,
        "active": True,
        "identifier": [{"system": DESTINATION_SYSTEM, "value": name}],
        "extension": extensions,
    }
    existing = repo.search("Organization", [("identifier", f"{DESTINATION_SYSTEM}|{name}")]).matches
    if existing:
        return repo.update("Organization", existing[0].id, {**body, "id": existing[0].id}).resource
    return repo.create(body).resource


def check_destination(repo: Repository, name: str, patient_ids: list[str]) -> None:
    """Raises Forbidden naming what is missing for an export of these patients to `name`."""
    found = repo.search("Organization", [("identifier", f"{DESTINATION_SYSTEM}|{name}")]).matches
    if not found:
        raise NotFound(
            f"未登记的导出目的地 {name}", f"Export destination {name} is not registered", element="destination"
        )
    org = found[0].as_dict()
    ext = {e["url"]: e for e in org.get("extension", [])}
    if ext.get(RESIDENCY, {}).get("valueCode") != "abroad":
        return
    missing_zh, missing_en = [], []
    basis = ext.get(LEGAL_BASIS)
    parts = {p["url"]: p for p in (basis or {}).get("extension", [])}
    if not basis or parts.get("kind", {}).get("valueCode") not in BASES or not parts.get("reference"):
        missing_zh.append("租户未登记出境法律依据（安全评估、标准合同或认证及其编号）")
        missing_en.append(
            "the tenant has recorded no legal basis (security assessment, standard contract or "
            "certification, with its reference)"
        )
    without = [pid for pid in patient_ids if not has_consent(repo, pid, "cross-border")]
    if without:
        missing_zh.append(f"{len(without)} 名患者（共 {len(patient_ids)} 名）未单独同意出境")
        missing_en.append(f"{len(without)} of {len(patient_ids)} patients have not given separate cross-border consent")
    if missing_zh:
        raise Forbidden(
            f"拒绝向境外目的地 {name} 导出：" + "；".join(missing_zh),
            f"Export to {name} (abroad) refused: " + "; ".join(missing_en),
            element="destination",
        )
