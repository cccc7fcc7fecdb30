"""What the portal pages call besides the domain services: registration, readable colours, trend charts.

Messages meant for people are English msgids translated through the portal catalogs (`i18n.py`);
`FieldError.message` is such a msgid and `params` fill its %(name)s placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape

from markupsafe import Markup

from xinglin.core.clock import utcnow
from xinglin.core.errors import Conflict
from xinglin.core.identity import RESIDENT_ID_SYSTEM, id_check_char
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy
from xinglin.tenancy.service import Tenant

PHONE = re.compile(r"^1[3-9]\d{9}$")
NAME = re.compile(r"^[\u4e00-\u9fff·A-Za-z .'-]{2,40}$")


@dataclass
class FieldError:
    field: str
    message: str  # English msgid
    params: dict = field(default_factory=dict)


class RegistrationError(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__(", ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def by_field(self) -> dict[str, FieldError]:
        out: dict[str, FieldError] = {}
        for e in self.errors:
            out.setdefault(e.field, e)
        return out


# --- resident ID (GB 11643-1999) and phone ------------------------------------------------------------------


def check_resident_id(number: str, birth_date: str | None, sex: str | None) -> list[FieldError]:
    """Errors of an 18-character resident ID number, cross-checked against the birth date and sex given."""
    errors: list[FieldError] = []
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return [FieldError("id_number", "The ID number must be 17 digits followed by a digit or X")]
    if id_check_char(number[:17]) != number[17]:
        return [FieldError("id_number", "The check character of the ID number is wrong; please check the number")]
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return [FieldError("id_number", "The ID number contains an impossible birth date")]
    if born > utcnow().date():
        return [FieldError("id_number", "The ID number contains an impossible birth date")]
    if birth_date and birth_date != born.isoformat():
        errors.append(FieldError("birth_date", "The birth date does not match the ID number"))
    id_sex = "male" if int(number[16]) % 2 else "female"
    if sex in ("male", "female") and sex != id_sex:
        errors.append(FieldError("sex", "The sex does not match the ID number"))
    return errors


def normalise_phone(phone: str) -> str:
    p = re.sub(r"[\s-]", "", phone or "")
    for prefix in ("+86", "0086"):
        if p.startswith(prefix):
            p = p[len(prefix) :]
    return p


@dataclass
class Registration:
    name: str = ""
    id_number: str = ""
    birth_date: str = ""
    sex: str = ""
    phone: str = ""
    password: str = ""
    password_confirm: str = ""

    @classmethod
    def from_form(cls, form) -> Registration:
        return cls(**{k: str(form.get(k, "") or "").strip() for k in cls.__dataclass_fields__})

    def validate(self) -> list[FieldError]:
        errors: list[FieldError] = []
        self.id_number = self.id_number.upper()
        self.phone = normalise_phone(self.phone)
        if not self.name:
            errors.append(FieldError("name", "Please enter your real name as on your ID card"))
        elif not NAME.match(self.name):
            errors.append(FieldError("name", "The name must be 2 to 40 Chinese characters or letters"))
        if not self.birth_date:
            errors.append(FieldError("birth_date", "Please enter your date of birth"))
        elif not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.birth_date):
            errors.append(FieldError("birth_date", "The date of birth must be YYYY-MM-DD"))
        if self.sex not in ("male", "female"):
            errors.append(FieldError("sex", "Please choose your sex"))
        if not self.id_number:
            errors.append(FieldError("id_number", "Please enter your resident ID number"))
        else:
            known = {e.field for e in errors}
            errors += [
                e
                for e in check_resident_id(
                    self.id_number,
                    self.birth_date if "birth_date" not in known else None,
                    self.sex if "sex" not in known else None,
                )
            ]
        if not PHONE.match(self.phone):
            errors.append(FieldError("phone", "The mobile number must be 11 digits starting with 13 to 19"))
        if len(self.password) < 8:
            errors.append(FieldError("password", "The password must have at least 8 characters"))
        elif self.password != self.password_confirm:
            errors.append(FieldError("password_confirm", "The two passwords are not the same"))
        return errors


def register_patient(store: Store, tenant: Tenant, reg: Registration, *, client_address: str | None = None) -> str:
    """Creates the Patient and its `patient` user (username = mobile number) in one transaction, as
    Xinglin itself (audited as portal registration). Returns the Patient id; RegistrationError when invalid."""
    errors = reg.validate()
    if errors:
        raise RegistrationError(errors)
    actor = system_principal(tenant.id, tenant.code, name="portal registration").with_request(
        client_address=client_address
    )
    with store.unit_of_work(actor) as repo:
        existing = repo.search("Patient", [("identifier", f"{RESIDENT_ID_SYSTEM}|{reg.id_number}"), ("_count", "1")])
        if existing.matches:
            raise RegistrationError([FieldError("id_number", "This ID number is already registered; please sign in")])
        patient = repo.create(
            {
                "resourceType": "Patient",
                "active": True,
                "identifier": [
                    {
                        "use": "official",
                        "system": RESIDENT_ID_SYSTEM,
                        "value": reg.id_number,
                        "type": {"text": "居民身份证"},
                    }
                ],
                "name": [{"use": "official", "text": reg.name}],
                "gender": reg.sex,
                "birthDate": reg.birth_date,
                "telecom": [{"system": "phone", "value": reg.phone, "use": "mobile"}],
            }
        ).resource
        try:
            # same transaction: a failed account leaves no orphan Patient behind
            tenancy.create_user(
                repo.conn,
                tenant.code,
                reg.phone,
                reg.password,
                "patient",
                patient_id=patient.id,
                display_name=reg.name,
                actor="portal registration",
            )
        except Conflict:
            raise RegistrationError(
                [FieldError("phone", "This mobile number is already registered; please sign in")]
            ) from None
    return patient.id


# --- colours (WCAG 2.x contrast) ---------------------------------------------------------------------------


def _channel(c: int) -> float:
    s = c / 255
    return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_text(background: str) -> str:
    """White or near-black, whichever reads better on the background."""
    dark = "#111111"
    return "#ffffff" if contrast("#ffffff", background) >= contrast(dark, background) else dark


def _mix(hex_colour: str, toward: int, amount: float) -> str:
    h = hex_colour.lstrip("#")
    rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{round(c + (toward - c) * amount):02x}" for c in rgb)


def accessible_on(colour: str, background: str = "#ffffff", ratio: float = 4.5) -> str:
    """The colour, darkened (or lightened on a dark background) just enough to reach the contrast ratio."""
    toward = 0 if luminance(background) > 0.5 else 255
    amount = 0.0
    candidate = colour.lower()
    while contrast(candidate, background) < ratio and amount < 1:
        amount += 0.05
        candidate = _mix(colour, toward, amount)
    return candidate


def theme(tenant: Tenant) -> dict[str, str]:
    primary, accent = tenant.primary_color, tenant.accent_color
    return {
        "primary": primary,
        "on_primary": readable_text(primary),
        "accent": accent,
        "on_accent": readable_text(accent),
        "link": accessible_on(primary),  # links and headings in the primary colour on white
        "focus": accessible_on(accent, ratio=3.0),  # focus ring: non-text contrast 3:1
    }


# --- lab trend chart (inline SVG, server-side) ---------------------------------------------------------------


@dataclass
class LabPoint:
    when: str  # ISO date-time
    value: float
    unit: str = ""
    low: float | None = None
    high: float | None = None


def trend_svg(points: list[LabPoint], title: str, *, width: int = 320, height: int = 120) -> Markup:
    """A small line chart of one analyte, with its reference range as a band; accessible by its title."""
    pts = sorted(points, key=lambda p: p.when)
    values = [p.value for p in pts]
    low = next((p.low for p in reversed(pts) if p.low is not None), None)
    high = next((p.high for p in reversed(pts) if p.high is not None), None)
    span = [*values, *(v for v in (low, high) if v is not None)]
    vmin, vmax = min(span), max(span)
    if vmax == vmin:
        vmin, vmax = vmin - 1, vmax + 1
    pad = (vmax - vmin) * 0.1
    vmin, vmax = vmin - pad, vmax + pad
    left, right, top, bottom = 36, 8, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(pts) - 1) if len(pts) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (vmax - v) / (vmax - vmin)

    parts = [
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="t">'
        f"<title>{escape(title)}</title>"
    ]
    if low is not None and high is not None:
        parts.append(
            f'<rect class="range" x="{left}" y="{y(high):.1f}" width="{plot_w}" height="{y(low) - y(high):.1f}"/>'
        )
    for v in (vmax - pad, vmin + pad):
        parts.append(f'<text class="axis" x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    coords = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(pts))
    parts.append(f'<polyline class="line" fill="none" points="{coords}"/>')
    for i, p in enumerate(pts):
        out = (low is not None and p.value < low) or (high is not None and p.value > high)
        cls = "pt out" if out else "pt"
        parts.append(
            f'<circle class="{cls}" cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5">'
            f"<title>{escape(p.when[:10])}: {p.value:g} {escape(p.unit)}</title></circle>"
        )
    if pts:
        parts.append(f'<text class="axis" x="{left}" y="{height - 4}">{escape(pts[0].when[:10])}</text>')
        if len(pts) > 1:
            parts.append(
                f'<text class="axis" x="{width - right}" y="{height - 4}" text-anchor="end">'
                f"{escape(pts[-1].when[:10])}</text>"
            )
    parts.append("</svg>")
    # a unique id for the title reference is not needed: aria-labelledby falls back to <title>
    return Markup("".join(parts).replace(' aria-labelledby="t"', ""))


def lab_trends(observations: list[dict]) -> list[dict]:
    """Laboratory Observations grouped by analyte: name, unit, reference range, rows and a chart."""
    groups: dict[str, dict] = {}
    for obs in observations:
        q = obs.get("valueQuantity") or {}
        if "value" not in q:
            continue
        code = obs.get("code") or {}
        key = next((f"{c.get('system')}|{c.get('code')}" for c in code.get("coding") or []), code.get("text", "?"))
        name = code.get("text") or next((c.get("display") for c in code.get("coding") or []), key)
        rr = (obs.get("referenceRange") or [{}])[0]
        point = LabPoint(
            when=obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or "",
            value=float(q["value"]),
            unit=q.get("unit") or q.get("code") or "",
            low=(rr.get("low") or {}).get("value"),
            high=(rr.get("high") or {}).get("value"),
        )
        g = groups.setdefault(key, {"name": name, "unit": point.unit, "points": []})
        g["points"].append(point)
    out = []
    for g in groups.values():
        g["points"].sort(key=lambda p: p.when, reverse=True)
        latest = g["points"][0]
        g["low"], g["high"] = latest.low, latest.high
        g["chart"] = trend_svg(g["points"], g["name"]) if len(g["points"]) >= 1 else None
        out.append(g)
    return sorted(out, key=lambda g: g["name"])


def local_time(value: str | None, zone: str) -> str:
    """An ISO instant shown in the tenant's time zone, `YYYY-MM-DD HH:MM`."""
    if not value:
        return ""
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M") if "T" in value else value
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
