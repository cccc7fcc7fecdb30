"""`_summary` and `_elements`: returning part of a resource, marked as such.

Mobile clients list dozens of resources on a small screen and need a few elements of each. FHIR lets them ask
for the summary elements (`_summary=true`, as the R4 definitions mark them), the narrative only
(`_summary=text`), everything but the narrative (`_summary=data`) or named top-level elements (`_elements=a,b`).
A subsetted resource carries the SUBSETTED tag so that nobody mistakes it for the whole record (or writes it
back as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from xinglin.core.errors import BadRequest
from xinglin.store.validation import model_class

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")
SUMMARY_MODES = ("true", "text", "data", "false")


@dataclass(frozen=True, slots=True)
class Subset:
    mode: str  # "true" | "text" | "data" | "elements"
    elements: frozenset[str] = frozenset()


def parse_subset(summary: str | None, elements: str | None) -> Subset | None:
    """The subset asked for by `_summary` (other than count) and `_elements`; None for the whole resource."""
    if summary is not None and summary not in (*SUMMARY_MODES, "count"):
        raise BadRequest(
            f"不支持的 _summary 取值 {summary}", f"Unsupported _summary value '{summary}'", element="_summary"
        )
    if summary in ("true", "text", "data"):
        return Subset(summary)
    if elements:
        names = frozenset(e.strip() for e in elements.split(",") if e.strip())
        bad = sorted(n for n in names if not n.isalnum())
        if bad:
            raise BadRequest(
                f"_elements 中的“{bad[0]}”不是元素名",
                f"'{bad[0]}' in _elements is not an element name",
                element="_elements",
            )
        return Subset("elements", names)
    return None


@lru_cache(maxsize=256)
def _marked(resource_type: str, mark: str) -> frozenset[str]:
    cls = model_class(resource_type)
    if cls is None:
        return frozenset()
    return frozenset(name for name, f in cls.model_fields.items() if (f.json_schema_extra or {}).get(mark))


def apply_subset(resource: dict, subset: Subset) -> dict:
    rtype = resource.get("resourceType", "")
    required = _marked(rtype, "element_required")
    if subset.mode == "true":
        keep = _marked(rtype, "summary_element_property") | required
    elif subset.mode == "text":
        keep = required | {"text"}
    elif subset.mode == "data":
        keep = frozenset(k for k in resource if k != "text")
    else:
        keep = subset.elements | required
    out = {k: v for k, v in resource.items() if k in keep or k in _ALWAYS}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(t for t in meta.get("tag", []) if t != SUBSETTED), SUBSETTED]
    out["meta"] = meta
    return out
