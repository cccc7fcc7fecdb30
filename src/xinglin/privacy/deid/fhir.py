"""De-identification of structured FHIR R4 resources (JSON dicts).

Identifying elements (names, identifiers, telecom, addresses, photos, resource ids and
references) are replaced by keyed pseudonyms; every date/dateTime/instant is shifted by the
same number of days (intervals kept); free-text elements go through :func:`mask`.  Codes,
quantities and other clinical values are left as they are.  The input is not modified.
"""

from __future__ import annotations

import re
from typing import Any

from .models import ADDRESS, EMAIL, ID_NUMBER, PERSON, PHONE, RECORD_NUMBER
from .patterns import id_checksum_ok
from .pseudonym import pseudonym, shift_date
from .service import mask

# Elements holding narrative text written by people.
_FREE_TEXT = frozenset(
    {
        "div",
        "valueString",
        "valueMarkdown",
        "conclusion",
        "comment",
        "description",
        "summary",
        "patientInstruction",
        "note",
        "text",
    }
)
# Elements whose value is a machine code or a coded display: never touched.
_KEEP = frozenset({"system", "code", "version", "unit", "url", "profile", "resourceType", "status", "language"})
_ID_SYSTEM_HINTS = ("11643", "2.16.156.10011.1.1", "idcard", "resident", "身份证", "id-number")
_PERSON_REFS = ("Patient/", "Practitioner/", "RelatedPerson/", "PractitionerRole/", "Person/")
_DATE_VALUE = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(?P<rest>(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)")
_YEAR_MONTH = re.compile(r"(?P<y>\d{4})-(?P<m>\d{2})")
_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?P<hist>/_history/.*)?$")


class _Ctx:
    __slots__ = ("days", "key")

    def __init__(self, key: bytes, days: int) -> None:
        self.key = key
        self.days = days

    def pid(self, resource_type: str, rid: str) -> str:
        """Pseudonymous resource id: stable per export so references still resolve."""
        return pseudonym(resource_type, rid, self.key)[1:-1].split("-", 1)[1]

    def text(self, value: str) -> str:
        return mask(value, mode="pseudonym", key=self.key, date_shift_days=self.days).masked

    def date(self, value: str) -> str:
        m = _DATE_VALUE.fullmatch(value)
        if m is not None:
            shifted = shift_date(m.group("date"), self.days)
            return (shifted or value[:10]) + m.group("rest")
        m = _YEAR_MONTH.fullmatch(value)
        if m is not None:
            shifted = shift_date(f"{m.group('y')}-{m.group('m')}-15", self.days)
            return shifted[:7] if shifted else value
        return value  # a bare year is kept: it identifies no day


def _human_name(name: dict, ctx: _Ctx) -> dict:
    full = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
    token = pseudonym(PERSON, full, ctx.key)
    out = {k: v for k, v in name.items() if k in ("use", "period")}
    out["text"] = token
    if "period" in out:
        out["period"] = _walk(out["period"], ctx, "period")
    return out


def _identifier(ident: dict, ctx: _Ctx) -> dict:
    out = dict(ident)
    value = ident.get("value")
    if isinstance(value, str):
        system = str(ident.get("system", "")).lower()
        is_id = any(h in system for h in _ID_SYSTEM_HINTS) or id_checksum_ok(value)
        out["value"] = pseudonym(ID_NUMBER if is_id else RECORD_NUMBER, value, ctx.key)
    for k in ("assigner", "period", "type"):
        if k in out:
            out[k] = _walk(out[k], ctx, k)
    return out


def _telecom(cp: dict, ctx: _Ctx) -> dict:
    out = dict(cp)
    value = cp.get("value")
    if isinstance(value, str):
        kind = EMAIL if cp.get("system") == "email" or "@" in value else PHONE
        out["value"] = pseudonym(kind, value, ctx.key)
    return out


def _address(addr: dict, ctx: _Ctx) -> dict:
    """Keep country and province (state); everything finer becomes one pseudonym."""
    fine = [*addr.get("line", []), addr.get("district", ""), addr.get("city", ""), addr.get("postalCode", "")]
    out = {k: v for k, v in addr.items() if k in ("use", "type", "state", "country")}
    surface = addr.get("text") or "".join(fine)
    if surface:
        out["text"] = pseudonym(ADDRESS, surface, ctx.key)
    return out


def _reference(ref: dict, ctx: _Ctx) -> dict:
    out = dict(ref)
    target = ref.get("reference")
    if isinstance(target, str):
        m = _REFERENCE.match(target)
        if m is not None:
            out["reference"] = f"{m.group('type')}/{ctx.pid(m.group('type'), m.group('id'))}"
        elif not target.startswith("#"):
            out["reference"] = ctx.text(target)
    display = ref.get("display")
    if isinstance(display, str):
        is_person = isinstance(target, str) and target.startswith(_PERSON_REFS)
        out["display"] = pseudonym(PERSON, display, ctx.key) if is_person else ctx.text(display)
    if "identifier" in out:
        out["identifier"] = _identifier(out["identifier"], ctx)
    return out


def _is_date_key(key: str) -> bool:
    return (
        key in ("date", "issued", "recorded", "authoredOn", "birthDate", "start", "end", "lastUpdated", "instant")
        or key.endswith(("Date", "DateTime", "Instant"))
        or key in ("occurrenceDateTime", "effectiveDateTime", "onsetDateTime", "abatementDateTime")
    )


def _walk(node: Any, ctx: _Ctx, key: str = "") -> Any:
    if isinstance(node, list):
        return [_walk(item, ctx, key) for item in node]
    if isinstance(node, dict):
        if key in ("name", "contact_name") and ("family" in node or "given" in node or "text" in node):
            return _human_name(node, ctx)
        if key == "identifier":
            return _identifier(node, ctx)
        if key == "telecom":
            return _telecom(node, ctx)
        if key == "address":
            return _address(node, ctx)
        if "reference" in node or ("display" in node and key not in ("coding",) and "code" not in node):
            return _reference(node, ctx)
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "photo":
                continue  # a face is an identifier; nothing to keep
            if k == "id" and isinstance(v, str) and "resourceType" in node:
                out[k] = ctx.pid(node["resourceType"], v)
            elif k in _KEEP or (k == "display" and "code" in node):
                out[k] = v
            elif k == "note" and isinstance(v, list):
                out[k] = [_walk(n, ctx, "annotation") for n in v]
            elif k == "text" and isinstance(v, dict):
                out[k] = {kk: (ctx.text(vv) if kk == "div" and isinstance(vv, str) else vv) for kk, vv in v.items()}
            else:
                out[k] = _walk(v, ctx, k)
        return out
    if isinstance(node, str):
        if _is_date_key(key):
            return ctx.date(node)
        if key in _FREE_TEXT:
            return ctx.text(node)
        return node
    return node


def deidentify_resource(resource: dict, *, key: bytes, date_shift_days: int) -> dict:
    """A de-identified copy of a FHIR resource (or Bundle) for one export.

    ``key`` is the export's HMAC key; ``date_shift_days`` the patient's offset (see
    :func:`xinglin.privacy.deid.patient_date_shift`).
    """
    if not key:
        raise ValueError("a key is required / 需要密钥")
    return _walk(resource, _Ctx(key, date_shift_days))
