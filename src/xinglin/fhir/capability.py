"""The CapabilityStatement served at /metadata."""

from __future__ import annotations

from functools import lru_cache

from fhir.resources.R4B import fhirtypes

from xinglin import __version__
from xinglin.core.clock import fhir_instant, utcnow
from xinglin.store.search_params import params_for
from xinglin.store.validation import is_resource_type

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


@lru_cache
def resource_types() -> tuple[str, ...]:
    names = (n[: -len("Type")] for n in dir(fhirtypes) if n.endswith("Type"))
    return tuple(sorted(n for n in names if is_resource_type(n)))


@lru_cache
def capability_statement(base_url: str) -> dict:
    resources = []
    for rtype in resource_types():
        entry = {
            "type": rtype,
            "interaction": [{"code": c} for c in _INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}]
            + [{"name": sp.name, "type": sp.type} for sp in params_for(rtype).values()],
        }
        if rtype == "AuditEvent":
            entry["interaction"] = [{"code": "read"}, {"code": "search-type"}]
            entry["searchParam"] = [
                {"name": n, "type": t} for n, t in (("date", "date"), ("entity", "reference"), ("agent", "string"))
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_instant(utcnow()),
        "publisher": "Xinglin",
        "kind": "instance",
        "software": {"name": "Xinglin (杏林)", "version": __version__},
        "implementation": {"description": "Xinglin FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 bearer tokens from POST /auth/token (password, client_credentials)",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            }
        ],
    }
