"""Keyed pseudonyms (HMAC-SHA256) and date shifting that keeps the written form.

One key per export: the same surface value gets the same pseudonym within an export, and an
unrelated one under another key, so exports cannot be joined on pseudonyms.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from .models import AGE, EMAIL, ID_NUMBER, INSURANCE_NUMBER, PHONE, PLATE, RECORD_NUMBER
from .patterns import DATE_FORMS, TIME_AFTER_RE

_PSEUDONYM_HEX = 10


def _normalise(entity_type: str, surface: str) -> str:
    """Spelling variants of one value (spaces, +86, case) share a pseudonym."""
    value = surface.strip()
    if entity_type in (PHONE, ID_NUMBER, INSURANCE_NUMBER, RECORD_NUMBER, PLATE):
        value = re.sub(r"[\s\-·•・.()（）]", "", value).upper()
        if entity_type == PHONE:
            value = re.sub(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)", "", value)
    elif entity_type == EMAIL:
        value = value.lower()
    else:
        value = re.sub(r"\s+", " ", value)
    return value


def pseudonym(entity_type: str, surface: str, key: bytes) -> str:
    """``[TYPE-hex]``: stable for (key, type, value), meaningless without the key."""
    message = f"{entity_type}\x1f{_normalise(entity_type, surface)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()[:_PSEUDONYM_HEX]
    return f"[{entity_type}-{digest}]"


def patient_date_shift(key: bytes, patient_ref: str, max_days: int = 365) -> int:
    """A per-patient offset in ±[1, max_days] derived from the export key (never 0)."""
    digest = hmac.new(key, b"date-shift\x1f" + patient_ref.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big")
    days = value % max_days + 1
    return days if value >> 63 else -days


def age_surrogate(surface: str) -> str:
    """Ages over 89 are reported as one group (HIPAA safe-harbour style)."""
    return "≥90岁" if re.search(r"[岁歲]", surface) else "90+"


# --- dates ----------------------------------------------------------------------------------
_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS.update({"六": 6, "七": 7, "八": 8, "九": 9})
_CN_TEN = "零一二三四五六七八九"
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _cn_small(text: str) -> int:
    """一 .. 三十一 -> int."""
    if text.startswith("十"):
        return 10 + (_CN_DIGITS[text[1]] if len(text) > 1 else 0)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS[tens] * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text]


def _to_cn_small(n: int) -> str:
    if n < 10:
        return _CN_TEN[n]
    tens, ones = divmod(n, 10)
    return ("十" if tens == 1 else _CN_TEN[tens] + "十") + (_CN_TEN[ones] if ones else "")


def _to_cn_year(n: int, zero: str) -> str:
    return "".join(zero if d == "0" else _CN_TEN[int(d)] for d in str(n))


def _pad(value: int, original: str) -> str:
    return f"{value:0{len(original)}d}" if original.startswith("0") else str(value)


def _en_month(name: str) -> int:
    return next(i for i, full in enumerate(_EN_MONTHS, 1) if full.lower().startswith(name.lower()[:3]))


def _en_month_like(month: int, original: str) -> str:
    full = _EN_MONTHS[month - 1]
    if len(original) >= len(full) or original.lower() == full.lower():
        return full
    if original.lower() == "sept" and month == 9:
        return "Sept"
    return full[:3] if len(full) > 3 else full


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


# Dates without a year are shifted inside a non-leap reference year; 29 Feb uses a leap year.
def _ref_year(month: int, day: int) -> int:
    return 2000 if (month, day) == (2, 29) else 2001


def shift_date(surface: str, days: int) -> str | None:
    """``surface`` moved by ``days``, written the same way; None when it is not a valid date."""
    for form, rx in DATE_FORMS:
        m = rx.match(surface)
        if m is None or not (m.end() == len(surface) or TIME_AFTER_RE.fullmatch(surface, m.end())):
            continue
        try:
            return _shift_form(form, m, days) + surface[m.end() :]  # the time of day stays as written
        except (ValueError, KeyError, StopIteration, OverflowError):
            return None
    return None


def _shift_form(form: str, m: re.Match[str], days: int) -> str:
    g = m.groupdict()
    delta = dt.timedelta(days=days)
    if form == "cn":
        y, mo = int(g["y"]), int(g["m"])
        if g["d"] is None:  # month precision: move the middle of the month
            new = dt.date(y, mo, 15) + delta
            return f"{new.year}年{_pad(new.month, g['m'])}月"
        new = dt.date(y, mo, int(g["d"])) + delta
        return f"{new.year}年{_pad(new.month, g['m'])}月{_pad(new.day, g['d'])}{g['dsuf']}"
    if form == "cnnum":
        zero = "〇" if "〇" in g["y"] else ("零" if "零" in g["y"] else "〇")
        y = int("".join(str(_CN_DIGITS[c]) for c in g["y"]))
        mo = _cn_small(g["m"])
        if g["d"] is None:
            new = dt.date(y, mo, 15) + delta
            return f"{_to_cn_year(new.year, zero)}年{_to_cn_small(new.month)}月"
        new = dt.date(y, mo, _cn_small(g["d"])) + delta
        return f"{_to_cn_year(new.year, zero)}年{_to_cn_small(new.month)}月{_to_cn_small(new.day)}{g['dsuf']}"
    if form == "iso":
        new = dt.date(int(g["y"]), int(g["m"]), int(g["d"])) + delta
        sep = g["sep"]
        # zero-padded if the original was (2024-03-05, or any 0x part), otherwise as short as may be
        padded = g["m"].startswith("0") or g["d"].startswith("0") or (sep == "-" and len(g["m"]) == len(g["d"]) == 2)
        if padded:
            return f"{new.year}{sep}{new.month:02d}{sep}{new.day:02d}"
        return f"{new.year}{sep}{new.month}{sep}{new.day}"
    if form == "compact":
        new = dt.date(int(g["y"]), int(g["m"]), int(g["d"])) + delta
        return f"{new.year}{new.month:02d}{new.day:02d}"
    if form == "dmy":
        a, b = int(g["a"]), int(g["b"])
        day_first = a > 12
        mo, d = (b, a) if day_first else (a, b)
        new = dt.date(int(g["y"]), mo, d) + delta
        first, second = (new.day, new.month) if day_first else (new.month, new.day)
        sep = g["sep"]
        return f"{_pad(first, g['a'])}{sep}{_pad(second, g['b'])}{sep}{new.year}"
    if form == "yymd":
        new = dt.date(2000 + int(g["y"]), int(g["m"]), int(g["d"])) + delta
        return f"{new.year % 100:02d}/{_pad(new.month, g['m'])}/{_pad(new.day, g['d'])}"
    if form == "mdtime":
        mo, d = int(g["m"]), int(g["d"])
        new = dt.date(_ref_year(mo, d), mo, d) + delta
        return f"{_pad(new.month, g['m'])}-{_pad(new.day, g['d'])}"
    if form in ("md", "cnmd"):
        if form == "md":
            mo, d = int(g["m"]), int(g["d"])
        else:
            mo, d = _cn_small(g["m"]), _cn_small(g["d"])
        new = dt.date(_ref_year(mo, d), mo, d) + delta
        if form == "md":
            return f"{_pad(new.month, g['m'])}月{_pad(new.day, g['d'])}{g['dsuf']}"
        return f"{_to_cn_small(new.month)}月{_to_cn_small(new.day)}{g['dsuf']}"
    if form in ("en_mdy", "en_dmy"):
        mo, d = _en_month(g["mon"]), int(g["d"])
        y = int(g["y"]) if g["y"] else _ref_year(mo, d)
        new = dt.date(y, mo, d) + delta
        mon = _en_month_like(new.month, g["mon"])
        ord_ = _ordinal(new.day) if g["ord"] else ""
        tail = f"{g['ysep']}{new.year}" if g["y"] else ""
        if form == "en_mdy":
            dot = "." if m.group().startswith(g["mon"] + ".") else ""
            return f"{mon}{dot} {new.day}{ord_}{tail}"
        of = g["of"] or ""
        dot = "." if m.group()[m.end("mon") - m.start() : m.end("mon") - m.start() + 1] == "." else ""
        return f"{new.day}{ord_} {of}{mon}{dot}{tail}"
    if form == "en_my":
        new = dt.date(int(g["y"]), _en_month(g["mon"]), 15) + delta
        dot = "." if m.group().startswith(g["mon"] + ".") else ""
        return f"{_en_month_like(new.month, g['mon'])}{dot} {new.year}"
    raise ValueError(form)


__all__ = ["AGE", "age_surrogate", "patient_date_shift", "pseudonym", "shift_date"]
