"""Text handling for triage: normalisation, Chinese numerals, and facts read from free text.

Everything here is deterministic and cheap; the OpenCC converter is built once per process.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

MAX_ANALYSED_CHARS = 10_000  # longer input is cut (and flagged) so one request cannot stall a worker
LONG_TEXT_CHARS = 2_000

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}")
_SPACE_BETWEEN_CJK = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_SPACES = re.compile(r"\s+")
# A space between two Chinese words ends a clause in informal writing ("吐血了 之前胃就不好"): it becomes an
# ideographic space, which the engine reads as a clause separator and the safety model does not see.
CLAUSE_SPACE = "\u3000"
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'", "\u201c": '"', "\u201d": '"'})


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese (OpenCC ``t2s``); text without CJK is returned as is."""
    if not _CJK.search(text):
        return text
    return _t2s().convert(text)


def normalise(text: str) -> str:
    """Fold width and case, convert Traditional Chinese, tidy spaces. Positions are not preserved."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = to_simplified(text)
    text = _SPACES.sub(" ", text).strip()
    return _SPACE_BETWEEN_CJK.sub(CLAUSE_SPACE, text)


def has_words(text: str) -> bool:
    """True when the text has at least one CJK character or a Latin word (not only emoji/symbols)."""
    return bool(_CJK.search(text) or _LATIN_WORD.search(text))


# ------------------------------------------------------------------------------------------------
# Chinese numerals → digits, for reading numbers only (the matching view keeps "一直", "十二指肠").

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千]+(?:点[零〇一二三四五六七八九]+)?")


def _cn_int(s: str) -> int:
    total, current = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            current = current * 10 + _CN_DIGITS[ch] if current and s[0] not in _CN_UNITS else _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
    return total + current


def _cn_number(match: re.Match[str]) -> str:
    s = match.group(0)
    whole, _, frac = s.partition("点")
    if not any(ch in _CN_UNITS for ch in whole) and len(whole) > 1:
        value = "".join(str(_CN_DIGITS[ch]) for ch in whole)  # digit by digit: "一二零" = 120
    else:
        value = str(_cn_int(whole))
    if frac:
        value += "." + "".join(str(_CN_DIGITS[ch]) for ch in frac)
    return value


def numeric_view(text: str) -> str:
    return _CN_NUMBER.sub(_cn_number, text)


# ------------------------------------------------------------------------------------------------
# Vital signs written in the complaint ("血氧88", "体温39度5", "bp 80/50", "心率130次").

_NUM = r"(\d{1,3}(?:\.\d+)?)"
_VITAL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "temperature",
        re.compile(
            r"(?:体温|发烧|发热|高烧|低烧|烧到|烧了|烧)[^\d,;。]{0,4}"
            + _NUM
            + r"\s*(?:度|°c|°|℃|c\b)?(?:(\d)(?![\d.]|\s*(?:天|日|个|次|小时|岁|周|月|年)))?"
        ),
    ),
    ("temperature", re.compile(_NUM + r"\s*(?:°c|℃|摄氏度)")),
    ("temperature", re.compile(r"(?:量了|测了|测得|量得|腋温|耳温|肛温|额温)[^\d,;。]{0,3}" + _NUM)),
    # A bare "38度" / "39度5" is a body temperature in a complaint.
    (
        "temperature",
        re.compile(
            r"(?<![\d.])(?<!开到)(?<!调到)((?:3[7-9]|4[0-2])(?:\.\d)?)\s*度(?!\s*的?\s*(?:白酒|酒|高温|天气))"
            r"(?:(\d)(?![\d.]|\s*(?:天|日|个|次|小时|岁|周|月|年)))?"
        ),
    ),
    # A bare 35.0-42.9 with one decimal is a thermometer reading ("量了一下38.2").
    (
        "temperature",
        re.compile(r"(?<![\d.])((?:3[5-9]|4[0-2])\.\d)(?![\d.])(?!\s*(?:kg|公斤|斤|cm|mmol|%|万|元|岁|周|天|mg|g\b))"),
    ),
    (
        "temperature",
        re.compile(r"\b(?:temp|temperature|fever)(?: of| is| was| at|:)?\s*" + _NUM + r"\s*(?:°?\s*([cf])\b)?"),
    ),
    (
        "spo2",
        re.compile(
            r"(?:血氧饱和度|血氧|氧饱和度|指脉氧|spo2|sao2|o2 sat|oxygen saturation|oxygen level|sats|sat)"
            r"[^\d,;。]{0,6}?" + _NUM + r"\s*%?"
        ),
    ),
    ("heart_rate", re.compile(r"(?:心率|脉搏|脉率|heart rate|pulse|hr)[^\d,;。]{0,4}?" + _NUM)),
    ("heart_rate", re.compile(r"(?:心跳)[^\d,;。]{0,6}?" + _NUM + r"\s*(?:次|下|bpm)")),
    ("heart_rate", re.compile(_NUM + r"\s*(?:bpm|次/分钟|次/分|次每分钟)")),
    ("heart_rate", re.compile(r"心跳\s*(\d{2,3})(?!\s*(?:天|岁|个|分钟|小时|年|月|周|次以上))")),
    ("bp", re.compile(r"(?:血压|bp|blood pressure)[^\d,;。]{0,6}?(\d{2,3})\s*[/／]\s*(\d{2,3})")),
    ("systolic_bp", re.compile(r"(?:高压|收缩压|systolic)[^\d,;。]{0,4}?(\d{2,3})")),
    ("systolic_bp", re.compile(r"(?:血压)[^\d,;。/]{0,4}?(\d{2,3})(?!\s*[/／\d])")),
    ("diastolic_bp", re.compile(r"(?:低压|舒张压|diastolic)[^\d,;。]{0,4}?(\d{2,3})")),
    (
        "resp_rate",
        re.compile(
            r"(?:呼吸频率|呼吸次数|呼吸|respiratory rate|resp rate|rr)[^\d,;。]{0,4}?(\d{1,2})\s*(?:次|/min|breaths)"
        ),
    ),
    ("resp_rate", re.compile(r"(?:呼吸频率|respiratory rate|resp rate)[^\d,;。]{0,4}?(\d{1,2})")),
    ("gcs", re.compile(r"(?:gcs|格拉斯哥评分|格拉斯哥)[^\d,;。]{0,4}?(\d{1,2})")),
    (
        "pain",
        re.compile(r"(?:疼痛评分|疼痛|痛|疼|pain score|pain)[^\d,;。]{0,4}?(\d{1,2})\s*(?:分(?!钟)|/10|out of 10)"),
    ),
    (
        "glucose",
        re.compile(
            r"(?:血糖|blood sugar|glucose|(?<![a-z])sugar|(?<![a-z])bg(?![a-z]))[^\d,;。]{0,4}?(\d{1,2}(?:\.\d+)?)"
        ),
    ),
]
_RANGES = {
    "temperature": (28.0, 43.5),  # down to severe hypothermia (an old man found outdoors at 33 °C)
    "spo2": (40, 100),
    "heart_rate": (20, 260),
    "systolic_bp": (40, 300),
    "diastolic_bp": (20, 200),
    "resp_rate": (3, 80),
    "gcs": (3, 15),
    "pain": (0, 10),
    "glucose": (0.5, 40),
}


def read_vitals(num_text: str) -> dict[str, float]:
    """Vital signs found in the (numeric-view) text; the first plausible value of each wins."""
    found: dict[str, float] = {}
    for name, pattern in _VITAL_PATTERNS:
        for m in pattern.finditer(num_text):
            if name == "bp":
                sbp, dbp = float(m.group(1)), float(m.group(2))
                if 40 <= sbp <= 300 and 20 <= dbp <= 200 and sbp > dbp:
                    found.setdefault("systolic_bp", sbp)
                    found.setdefault("diastolic_bp", dbp)
                    break
                continue
            value = float(m.group(1))
            if name == "temperature":
                extra = m.group(2) if m.lastindex and m.lastindex >= 2 else None
                if extra and extra.isdigit() and value == int(value):  # "39度5" = 39.5
                    value += int(extra) / 10
                if (extra == "f" or value > 50) and 90 <= value <= 110:  # Fahrenheit
                    value = round((value - 32) * 5 / 9, 1)
            lo, hi = _RANGES[name]
            if lo <= value <= hi:
                found.setdefault(name, value)
                break
    return found


# ------------------------------------------------------------------------------------------------
# Age written in the complaint ("3岁", "出生20天", "5个月大的宝宝", "a 70-year-old", "2 weeks old").

_BABY = r"(?:宝宝|婴儿|孩子|小孩|女儿|儿子|宝|娃|男婴|女婴|小朋友|新生儿|患儿|孙子|孙女|外孙|外孙女)"
# Only these words may stand between "宝宝" and the age: "宝宝发烧3天" is a duration, not an age.
_GAP = r"(?:才|刚|现在|今年|已经|快|刚满|满|出生|是|有|今天)?"
_AGE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{1,3})\s*(?:周岁|岁)\s*(?:(\d{1,2})\s*个?月|半)?"), "years"),
    # "五十多岁", "七十来岁", "60出头": the decade is enough for the age rules.
    (re.compile(r"(\d{1,3})\s*(?:多|来|几)\s*(?:周岁|岁)"), "years"),
    (re.compile(r"(\d{2})\s*(?:出头)"), "years"),
    (re.compile(r"(\d{1,2})\s*几岁"), "years_approx"),
    (re.compile(r"半岁"), "half"),
    (re.compile(r"(?:出生|生下来|满)\s*(\d{1,3})\s*(?:天|日)"), "days"),
    (re.compile(r"(\d{1,3})\s*(?:天|日)\s*(?:大|的" + _BABY + r"|新生儿)"), "days"),
    (re.compile(_BABY + _GAP + r"(\d{1,3})\s*(?:天|日)(?:大|了)?(?!\s*(?:了|多|左右))"), "days"),
    (re.compile(r"(?:出生|满)\s*(\d{1,2})\s*(?:周|星期)"), "weeks"),
    (re.compile(r"(\d{1,2})\s*(?:周|星期)\s*(?:大|的" + _BABY + r")"), "weeks"),
    (re.compile(r"(?:出生|满)\s*(\d{1,2})\s*个?多?月"), "months"),
    (re.compile(r"(\d{1,2})\s*个?多?月\s*(?:大|的" + _BABY + r")"), "months"),
    (re.compile(_BABY + _GAP + r"(\d{1,2})\s*个多?月(?!\s*了)"), "months"),
    (re.compile(r"(\d{1,3}(?:\.\d)?)[\s-]*(?:years?|yrs?)[\s-]*old"), "years"),
    (re.compile(r"\b(?:aged?|i am|i'm|im)\s+(\d{1,3})\b(?!\s*(?:weeks?|days?|months?|kg|cm|%|times))"), "years"),
    (re.compile(r"\b(\d{1,3})\s*(?:yo|y/o|y\.o\.)\b"), "years"),
    (re.compile(r"\b(\d{1,3})\s*(?:m|f)\b(?=[\s,.;])"), "years_sexed"),
    (re.compile(r"(\d{1,2})[\s-]*months?[\s-]*old"), "months"),
    (re.compile(r"(\d{1,2})[\s-]*weeks?[\s-]*old"), "weeks"),
    (re.compile(r"(\d{1,3})[\s-]*days?[\s-]*old"), "days"),
]


def read_age(num_text: str) -> float | None:
    """The patient's age in years if the text states one; the youngest age wins when a child is named."""
    ages: list[float] = []
    for pattern, unit in _AGE_PATTERNS:
        for m in pattern.finditer(num_text):
            if unit == "half":
                ages.append(0.5)
                continue
            value = float(m.group(1))
            if unit == "years":
                extra = m.group(2) if m.re.groups >= 2 else None
                if extra:
                    value += float(extra) / 12
                elif m.group(0).endswith("半"):
                    value += 0.5
            elif unit == "years_approx":
                value += 5
            elif unit == "months":
                value /= 12
            elif unit == "weeks":
                value /= 52
            elif unit == "days":
                value /= 365
            if 0 <= value <= 120:
                ages.append(round(value, 3))
    if not ages:
        return None
    # "我30岁，孩子2岁发烧": the complaint is usually about the youngest person named.
    return min(ages) if any(a < 14 for a in ages) else ages[0]


_PILL_COUNT = re.compile(
    r"(\d{1,4})\s*(?:多|来|几|余)?\s*(?:[a-z]+\s+)?(?:片|粒|颗|丸|pills|pill|tablets|tablet|tabs|capsules|caps)"
)
# "took like 30 paracetamol", "吞了二十几个安眠药": a number after a verb of taking, before anything but time.
_TOOK_COUNT = re.compile(
    r"(?:took|taken|swallowed|ate|had|吃了|吞了|服了|吃咗|食咗|吞咗)\s*(?:like|about|around|maybe|over|nearly|almost|"
    r"at least|up to|some|大概|大约|差不多|将近|起码|至少)?\s*(\d{1,4})\s*(?:多|来|几)?\s*(?!\s*(?:"
    r"hours?|hrs?|minutes?|mins?|days?|weeks?|months?|years?|times?|am|pm|ml|mg|g\b|kg|%|度|天|小时|分钟|次|岁|号|点|年|月|周|口|个月|斤|公斤|毫升|ml))"
)


def read_pill_count(num_text: str) -> int | None:
    """The largest number of tablets named ("吃了30片", "took 40 pills", "took like 30 paracetamol"),
    for overdose rules."""
    counts = [int(m.group(1)) for m in _PILL_COUNT.finditer(num_text)]
    counts += [int(m.group(1)) for m in _TOOK_COUNT.finditer(num_text)]
    return max(counts) if counts else None
