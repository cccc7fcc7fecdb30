"""Turns a resource's JSON into the rows of the search-parameter index tables."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from xinglin.store.search_params import params_for

MIN_DATE = datetime(1, 1, 1)
MAX_DATE = datetime(9999, 12, 31, 23, 59, 59)
_STRING_LIMIT = 512


def fold(text: str) -> str:
    """Form strings are matched on: NFKC folds full-width letters and digits, casefold ignores case."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


# --- walking paths ----------------------------------------------------------------------------------

_FILTER = re.compile(r"^(?P<field>[A-Za-z]+)(?:\[x\])?(?:\((?P<key>\w+)=(?P<value>[^)]+)\))?$")


def _matches(item: Any, key: str, value: str) -> bool:
    if not isinstance(item, dict):
        return False
    if key == "type" and "reference" in item:
        # A reference's type is its explicit `type` or the prefix of `reference`.
        return item.get("type") == value or str(item.get("reference", "")).startswith(value + "/")
    return item.get(key) == value


@lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[tuple[str, bool, str | None, str | None], ...] | None:
    """A path parsed once: per step (field, is a choice type, filter key, filter value); None if malformed."""
    steps = []
    for step in path.split("."):
        m = _FILTER.match(step)
        if m is None:
            return None
        steps.append((m.group("field"), step.endswith("[x]") or "[x](" in step, m.group("key"), m.group("value")))
    return tuple(steps)


def _walk(node: Any, steps, at: int, key: str) -> Iterator[tuple[Any, str]]:
    """(value, json-key) pairs reached from ``node`` by the parsed path ``steps`` (from step ``at`` on); the key
    tells the choice type."""
    if node is None or steps is None:
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, steps, at, key)
        return
    if at == len(steps):
        yield node, key
        return
    if not isinstance(node, dict):
        return
    field, choice, fkey, fvalue = steps[at]
    # value[x] is valueQuantity, valueString ...
    names = (
        [k for k in node if k.startswith(field) and k[len(field) : len(field) + 1].isupper()] if choice else (field,)
    )
    for name in names:
        child = node.get(name)
        if child is None:
            continue
        if fkey:
            items = child if isinstance(child, list) else [child]
            child = [i for i in items if _matches(i, fkey, fvalue)]
        yield from _walk(child, steps, at + 1, name)


# --- values per parameter type ----------------------------------------------------------------------


def _string_values(value: Any, key: str) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        if key == "name":  # HumanName (Organization.name etc. are plain strings, handled above)
            yield from _name_values(value)
        else:  # Address and other complex types: every string part
            for k in ("text", "line", "city", "district", "state", "postalCode", "country"):
                v = value.get(k)
                if isinstance(v, list):
                    yield from (x for x in v if isinstance(x, str))
                elif isinstance(v, str):
                    yield v


def _name_values(name: dict) -> Iterator[str]:
    """All the ways a HumanName can be searched, including the joined form Chinese names use."""
    family = name.get("family") or ""
    given = [g for g in name.get("given") or [] if isinstance(g, str)]
    parts = [
        p for p in (name.get("text"), family, *given, *(name.get("prefix") or []), *(name.get("suffix") or [])) if p
    ]
    full = family + "".join(given)
    if full and full not in parts:
        parts.append(full)
    yield from parts
    # A Chinese name is written without spaces; "any part of it" must match, so every suffix of a
    # CJK name is indexed too (names are 2-4 characters, so this costs a handful of rows).
    for text in {name.get("text") or "", full}:
        if text and all(_is_cjk(c) for c in text):
            for i in range(1, len(text)):
                yield text[i:]


def _token_values(value: Any, key: str) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "system" not in value and "value" not in value):
            for coding in value.get("coding") or []:
                if coding.get("code"):
                    yield coding.get("system"), coding["code"]
        elif "code" in value:  # Coding, Quantity used as token
            yield value.get("system"), value["code"]
        elif "value" in value:  # Identifier, ContactPoint
            yield value.get("system"), str(value["value"])


_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The period [low, high) a FHIR date, dateTime or instant covers, in naive UTC."""
    m = _DATE_RE.match(text.strip())
    if not m:
        return None
    y, mo, d = int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)
    try:
        if m["H"] is None:
            low = datetime(y, mo, d)
            if m["d"]:
                high = low + timedelta(days=1)
            elif m["m"]:
                high = datetime(y + (mo == 12), mo % 12 + 1, 1)
            else:
                high = datetime(y + 1, 1, 1)
            return low, high
        frac = m["f"] or ""
        micro = int((frac + "000000")[:6]) if frac else 0
        low = datetime(y, mo, d, int(m["H"]), int(m["M"]), int(m["S"] or 0), micro)
        tz = m["tz"]
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            low -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        if frac:
            step = timedelta(microseconds=10 ** max(0, 6 - len(frac)))
        elif m["S"]:
            step = timedelta(seconds=1)
        else:
            step = timedelta(minutes=1)
        return low, low + step
    except (ValueError, OverflowError):
        return None


def _date_values(value: Any) -> Iterator[tuple[datetime, datetime]]:
    if isinstance(value, str):
        r = date_range(value)
        if r:
            yield r
    elif isinstance(value, dict) and ("start" in value or "end" in value):  # Period
        start = date_range(value["start"]) if value.get("start") else None
        end = date_range(value["end"]) if value.get("end") else None
        yield (start[0] if start else MIN_DATE), (end[1] if end else MAX_DATE)


def _reference_values(value: Any) -> Iterator[tuple[str | None, str]]:
    ref = value.get("reference") if isinstance(value, dict) else value if isinstance(value, str) else None
    if not ref or ref.startswith("#"):
        return
    parts = ref.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        yield parts[-2], parts[-1]
    else:
        yield (value.get("type") if isinstance(value, dict) else None), ref


def _quantity_values(value: Any) -> Iterator[tuple[float, str | None, str | None]]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        yield float(value), None, None
    elif isinstance(value, dict) and isinstance(value.get("value"), int | float):
        yield float(value["value"]), value.get("system"), value.get("code") or value.get("unit")


def extract(resource: dict) -> dict[str, list[dict]]:
    """Index rows (without resource_pk/tenant/type) per index table for one resource."""
    rows: dict[str, list[dict]] = {"string": [], "token": [], "date": [], "reference": [], "quantity": []}
    for sp in params_for(resource["resourceType"]).values():
        seen: set = set()
        for path in sp.paths:
            steps = _steps(path)
            if steps and not steps[0][1] and steps[0][0] not in resource:
                continue  # most parameters' first field is absent: skip the walk (half of all indexing time)
            for value, key in _walk(resource, steps, 0, ""):
                if sp.type == "string":
                    for s in _string_values(value, key):
                        s = s[:_STRING_LIMIT]
                        entry = (fold(s), s)
                        if entry not in seen:
                            seen.add(entry)
                            rows["string"].append({"param": sp.name, "value": entry[0], "exact": s})
                elif sp.type == "token":
                    for system, code in _token_values(value, key):
                        entry = (system, code[:256])
                        if entry not in seen:
                            seen.add(entry)
                            rows["token"].append({"param": sp.name, "system": system, "code": entry[1]})
                elif sp.type == "date":
                    for low, high in _date_values(value):
                        if (low, high) not in seen:
                            seen.add((low, high))
                            rows["date"].append({"param": sp.name, "low": low, "high": high})
                elif sp.type == "reference":
                    for ttype, tid in _reference_values(value):
                        if (ttype, tid) not in seen:
                            seen.add((ttype, tid))
                            rows["reference"].append({"param": sp.name, "target_type": ttype, "target_id": tid[:256]})
                elif sp.type in ("quantity", "number"):
                    for num, system, code in _quantity_values(value):
                        if (num, system, code) not in seen:
                            seen.add((num, system, code))
                            rows["quantity"].append({"param": sp.name, "value": num, "system": system, "code": code})
    return rows


def to_naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
