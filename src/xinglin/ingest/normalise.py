"""Normalisers: one messy export value in, one clean value out (or a reason why not).

Every function is pure and cached where values repeat (dates, names, units). A value that cannot be
normalised raises :class:`InvalidValue` with a reason code the report counts, and a message in Chinese
and English that never repeats the value itself (values may be personal data).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from xinglin.core.identity import RESIDENT_ID_SYSTEM, id_check_char

# --------------------------------------------------------------------------------------------------
# Errors


class InvalidValue(ValueError):
    """A value that cannot be normalised. ``reason`` is a stable code (``date_format``, ``id_checksum`` ...)."""

    def __init__(self, reason: str, zh: str, en: str):
        super().__init__(en)
        self.reason = reason
        self.zh = zh
        self.en = en


def _fold(text: str) -> str:
    """Full-width to half-width (NFKC), ideographic space to space, trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


BLANKS = frozenset(("", "-", "--", "/", "NULL", "null", "None", "N/A", "n/a", "NA", "无", "空"))


def blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in BLANKS
    return False


# --------------------------------------------------------------------------------------------------
# Names

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_DOTS = re.compile(r"\s*[·•・．.\u00b7\u2022\u30fb\uff0e]\s*")
_NAME_BAD = re.compile(r"[0-9@#$%&*=+<>?!/\\|{}\[\]]")
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "端木",
        "澹台",
        "独孤",
        "南宫",
        "西门",
        "司空",
        "万俟",
        "闻人",
        "呼延",
        "申屠",
        "太史",
        "钟离",
        "百里",
        "东郭",
        "公冶",
        "赫连",
        "第五",
    ]
)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s").convert


def to_simplified(text: str) -> str:
    return _t2s()(text) if _CJK.search(text) else text


@dataclass(frozen=True, slots=True)
class PersonName:
    text: str
    family: str | None
    given: str | None


@lru_cache(maxsize=65536)
def normalise_name(value: str) -> PersonName:
    """`` 張 三 `` / ``张^三`` (HL7) / ``ＺＨＡＮＧ San`` -> a clean name with family and given parts.

    Full-width folded, whitespace collapsed (and removed between Chinese characters), traditional
    characters simplified, middle dots of minority names unified to ``·``.
    """
    raw = _fold(str(value))
    if "^" in raw:  # HL7 XPN: family^given^middle...
        parts = [p.strip() for p in raw.split("^")[:3] if p.strip()]
        raw = ("" if all(_CJK.search(p) for p in parts) else " ").join(parts)
    raw = re.sub(r"\s+", " ", raw).strip()
    if not raw:
        raise InvalidValue("name_missing", "姓名为空", "The name is empty")
    if _NAME_BAD.search(raw):
        raise InvalidValue("name_invalid", "姓名含有数字或符号", "The name contains digits or symbols")
    if _CJK.search(raw):
        return chinese_name(to_simplified(raw))
    return PersonName(raw, None, None)  # romanised names: the order of family and given names varies


PLAIN_CJK_NAME = re.compile(r"[\u4e00-\u9fff]+")  # normalise_name(v) == chinese_name(to_simplified(v)) for these


_CJK_SPACE = re.compile(r"(?<=[\u3400-\u9fff·])\s+|\s+(?=[\u3400-\u9fff·])")


def chinese_name(simplified: str) -> PersonName:
    """The end of :func:`normalise_name` for a name with Chinese characters, once simplified."""
    text = simplified
    if not PLAIN_CJK_NAME.fullmatch(text):  # (plain text has no dots or spaces, and only Chinese characters)
        text = _CJK_SPACE.sub("", _DOTS.sub("·", text))
        if "·" in text or not all(_CJK.match(c) for c in text):
            return PersonName(text, None, None)
    if len(text) < 2:
        raise InvalidValue("name_invalid", "中文姓名至少两个字", "A Chinese name has at least two characters")
    family = text[:2] if text[:2] in COMPOUND_SURNAMES and len(text) > 2 else text[0]
    return PersonName(text, family, text[len(family) :])


def to_simplified_many(texts: list[str]) -> list[str]:
    """:func:`to_simplified` of many single-line texts in one OpenCC call (a line break is never part of a phrase)."""
    if not texts:
        return []
    out = _t2s()("\n".join(texts)).split("\n")
    if len(out) != len(texts):  # not expected; stay exact whatever happens
        return [to_simplified(t) for t in texts]
    return out


@lru_cache(maxsize=65536)
def name_key(text: str) -> str:
    """Matching form of a clean name: simplified, no spaces or dots, case-folded."""
    return to_simplified(text).replace("·", "").replace(" ", "").casefold()


@lru_cache(maxsize=65536)
def name_pinyin(text: str) -> str:
    """Toneless pinyin of a name (``张伟`` and ``章玮`` both give ``zhangwei``)."""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(name_key(text))).casefold()


# --------------------------------------------------------------------------------------------------
# Sex

GB2261_SYSTEM = "https://xinglin.dev/CodeSystem/gb-t-2261.1"
GB2261_DISPLAY = {"0": "未知的性别", "1": "男", "2": "女", "9": "未说明的性别"}
_SEX = {
    "男": "1", "男性": "1", "m": "1", "male": "1", "1": "1", "man": "1", "先生": "1",
    "女": "2", "女性": "2", "f": "2", "female": "2", "2": "2", "woman": "2", "女士": "2",
    "未知": "0", "0": "0", "u": "0", "unknown": "0", "不详": "0",
    "未说明": "9", "9": "9", "其他": "9", "o": "9", "other": "9", "未说明的性别": "9",
}  # fmt: skip
_FHIR_GENDER = {"1": "male", "2": "female", "0": "unknown", "9": "unknown"}


@dataclass(frozen=True, slots=True)
class Sex:
    fhir: str  # male | female | unknown
    gb: str  # GB/T 2261.1: 0 unknown, 1 male, 2 female, 9 unspecified


@lru_cache(maxsize=256)
def normalise_sex(value: str, value_map: tuple[tuple[str, str], ...] = ()) -> Sex:
    """男/女/1/2/M/F/male/female/未知 -> FHIR gender and GB/T 2261.1 code. ``value_map`` maps source codes first."""
    key = _fold(str(value)).casefold()
    mapped = dict(value_map).get(key) or dict(value_map).get(_fold(str(value)))
    if mapped is not None:
        key = mapped.casefold()
    gb = _SEX.get(key)
    if gb is None:
        raise InvalidValue("sex_invalid", "无法识别的性别取值", "Unrecognised sex value")
    return Sex(_FHIR_GENDER[gb], gb)


# --------------------------------------------------------------------------------------------------
# Dates

EXCEL_EPOCH = datetime(1899, 12, 30)
_DATE_PATTERNS = [
    # 2024年3月5日 [8时30分 | 08:30]
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]?(?:\s*(\d{1,2})[时点:](?:(\d{1,2})分?)?(?::?(\d{1,2})秒?)?)?$"),
    # 2024-03-05, 2024/3/5, 2024.3.5 [08:00[:00[.fff]]] [T...] [+08:00|Z]
    re.compile(
        r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
    ),
    # 20240305 [083000] (HL7 TS, compact exports)
    re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(?:\.\d+)?(Z|[+-]\d{4})?$"),
]


def _bad_date() -> InvalidValue:
    return InvalidValue("date_format", "日期格式无法识别", "Unrecognised date format")


@lru_cache(maxsize=65536)
def _parse_date_text(text: str, formats: tuple[str, ...]) -> date | datetime:
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed if any(c in fmt for c in "HIMS") else parsed.date()
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh = m.group(4)
        try:
            if hh is None:
                return date(y, mo, d)
            return datetime(y, mo, d, int(hh), int(m.group(5) or 0), int(m.group(6) or 0))
        except ValueError:
            raise InvalidValue("date_invalid", "日期不存在（月或日超出范围）", "The date does not exist") from None
    if re.fullmatch(r"\d{4,5}(\.\d+)?", text):
        return excel_serial(float(text))
    raise _bad_date()


def excel_serial(serial: float) -> date | datetime:
    """Excel's day number (1900 system, 1900-03-01 onwards) -> date, or datetime when it has a time part."""
    if not 61 <= serial < 2958466:
        raise _bad_date()
    moment = EXCEL_EPOCH + timedelta(days=serial)
    if serial == int(serial):
        return moment.date()
    return moment.replace(microsecond=0)


def parse_date(value: Any, formats: tuple[str, ...] = ()) -> date | datetime:
    """2024年3月5日, 2024/3/5, 20240305, 2024.3.5, 2024-03-05 08:00, Excel serial numbers -> date or datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.time() != datetime.min.time() else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float):
        return excel_serial(float(value))
    text = _fold(str(value))
    if not text:
        raise InvalidValue("date_missing", "日期为空", "The date is empty")
    return _parse_date_text(text, tuple(formats))


def parse_birth_date(value: Any, formats: tuple[str, ...] = (), *, today: date | None = None) -> date:
    parsed = parse_date(value, formats)
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    if day > (today or date.today()) or day.year < 1880:
        raise InvalidValue("birth_date_range", "出生日期不在合理范围内", "The birth date is out of range")
    return day


def fhir_datetime(moment: date | datetime, utc_offset: str = "+08:00") -> str:
    """A FHIR date or dateTime: dates stay dates, times get the tenant's UTC offset."""
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + utc_offset
    return moment.isoformat()


# --------------------------------------------------------------------------------------------------
# Resident identity card numbers (GB 11643-1999)

ID_CARD_SYSTEM = RESIDENT_ID_SYSTEM


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    birth_date: date
    sex: Sex
    province_code: str
    upgraded: bool = False  # from a 15-digit first-generation number


@lru_cache(maxsize=65536)
def normalise_id_number(value: str) -> ResidentId:
    """Checks a resident ID number: format, region, birth date and check character; upgrades 15 digits to 18."""
    text = re.sub(r"[\s\-]", "", _fold(str(value))).upper()
    if re.fullmatch(r"\d+\.0", text):  # a spreadsheet stored it as a number
        text = text[:-2]
    upgraded = False
    if re.fullmatch(r"\d{15}", text):
        first17 = text[:6] + "19" + text[6:]
        text = first17 + id_check_char(first17)
        upgraded = True
    if not re.fullmatch(r"\d{17}[\dX]", text):
        raise InvalidValue(
            "id_format", "身份证号应为18位（末位可为X）或15位数字", "The ID number must be 18 characters"
        )
    if text[:2] not in province_codes():
        raise InvalidValue("id_region", "身份证号的地区码不存在", "The ID number's region code does not exist")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidValue(
            "id_birth_date", "身份证号中的出生日期不存在", "The ID number holds an impossible birth date"
        ) from None
    if born > date.today() or born.year < 1880:
        raise InvalidValue("id_birth_date", "身份证号中的出生日期不合理", "The ID number's birth date is out of range")
    if id_check_char(text[:17]) != text[17]:
        raise InvalidValue("id_checksum", "身份证号校验位错误", "The ID number's check character is wrong")
    sex = Sex("male", "1") if int(text[16]) % 2 else Sex("female", "2")
    return ResidentId(text, born, sex, text[:2], upgraded)


# --------------------------------------------------------------------------------------------------
# Phone numbers

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")


@dataclass(frozen=True, slots=True)
class Phone:
    value: str
    kind: str  # mobile | landline


@lru_cache(maxsize=65536)
def normalise_phones(value: str) -> tuple[Phone, ...]:
    """``+86 139-1234-5678`` / ``(010)12345678`` / several split by / , ; 、 -> clean numbers.

    Mobile numbers become 11 digits; landlines ``0AA-NNNNNNNN`` (3-digit area codes 010 and 02x, else 4).
    """
    text = _fold(str(value))
    if "^" in text:  # HL7 XTN: the number is the first component or the 12th (unformatted)
        comps = text.split("^")
        text = next((c for c in (comps[11:12] + comps[:1]) if c.strip()), "")
    text = re.sub(r"(转|ext\.?|x)\s*\d+$", "", text, flags=re.I)
    phones = []
    for part in re.split(r"[/,;、|]+|\s{2,}", text):
        digits = re.sub(r"[\s\-()（）.]", "", part)
        digits = re.sub(r"^(\+86|0086|86(?=1[3-9]\d{9}$))", "", digits)
        if not digits:
            continue
        if _MOBILE.match(digits):
            phones.append(Phone(digits, "mobile"))
        elif _LANDLINE.match(digits):
            area = 3 if digits.startswith(("010", "02")) else 4
            local = digits[area:]
            if len(local) not in (7, 8):
                raise InvalidValue("phone_invalid", "电话号码位数不对", "The phone number has the wrong length")
            phones.append(Phone(f"{digits[:area]}-{local}", "landline"))
        elif re.fullmatch(r"[2-9]\d{6,7}", digits):
            phones.append(Phone(digits, "landline"))
        else:
            raise InvalidValue("phone_invalid", "无法识别的电话号码", "Unrecognised phone number")
    if not phones:
        raise InvalidValue("phone_invalid", "电话号码为空", "The phone number is empty")
    return tuple(phones)


# --------------------------------------------------------------------------------------------------
# Addresses


@lru_cache(maxsize=1)
def _regions() -> list[dict]:
    text = resources.files("xinglin.ingest").joinpath("data/regions.json").read_text(encoding="utf-8")
    return json.loads(text)["provinces"]


@lru_cache(maxsize=1)
def province_codes() -> dict[str, str]:
    return {p["code"]: p["name"] for p in _regions()}


@dataclass(frozen=True, slots=True)
class Address:
    text: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    line: str | None = None

    def fhir(self) -> dict:
        out: dict[str, Any] = {"text": self.text}
        if self.line:
            out["line"] = [self.line]
        if self.city:
            out["city"] = self.city
        if self.district:
            out["district"] = self.district
        if self.province:
            out["state"] = self.province
        out["country"] = "CN"
        return out


_CITY = re.compile(r"^(.{2,9}?(?:自治州|地区|盟|市))")
_DISTRICT = re.compile(r"^(.{1,8}?(?:自治县|自治旗|新区|区|县|市|旗))")


@lru_cache(maxsize=65536)
def normalise_address(value: str) -> Address:
    """``广东省深圳市南山区科技园路1号`` -> province 广东省, city 深圳市, district 南山区, line 科技园路1号."""
    text = re.sub(r"\s+", "", _fold(str(value)))
    if "^" in text:  # HL7 XAD: street^other^city^state^zip^country^type^other^county
        c = [*text.split("^"), *[""] * 9]
        text = "".join(x for x in (c[3], c[2], c[8], c[0], c[1]) if x)
    text = to_simplified(text)
    if not text:
        raise InvalidValue("address_missing", "地址为空", "The address is empty")
    rest = text
    province = city = district = None
    for p in _regions():
        for form in (p["name"], p["short"]):
            if rest.startswith(form):
                province, rest = p["name"], rest[len(form) :]
                break
        if province:
            if p.get("municipality"):
                city = p["name"]
            else:
                for c in p["cities"]:
                    for cform in (c, c.removesuffix("市")):
                        if rest.startswith(cform) and len(cform) >= 2:
                            city, rest = c, rest[len(cform) :]
                            break
                    if city:
                        break
            break
    if province is None:  # a city without its province: find it in the table
        for p in _regions():
            for c in p["cities"]:
                if rest.startswith(c):
                    province, city, rest = p["name"], c, rest[len(c) :]
                    break
            if province:
                break
    if city is None and province is not None:
        m = _CITY.match(rest)
        if m:
            city, rest = m.group(1), rest[m.end() :]
    if city is not None:
        m = _DISTRICT.match(rest)
        if m and len(rest) > m.end() - 1:
            district, rest = m.group(1), rest[m.end() :]
    return Address(text, province, city, district, rest or None)


# --------------------------------------------------------------------------------------------------
# Laboratory results

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
_UNIT_DISPLAY = {"umol/L": "µmol/L", "m[IU]/L": "mIU/L", "u[IU]/mL": "µIU/mL", "10*9/L": "10^9/L", "10*12/L": "10^12/L"}
# Normalised spelling (lower case, µ/μ -> u, × and x prefixes dropped, ^ and e -> *) -> UCUM code.
_UNIT_ALIASES = {
    "mmol/l": "mmol/L", "umol/l": "umol/L", "mol/l": "mol/L", "nmol/l": "nmol/L", "pmol/l": "pmol/L",
    "mg/dl": "mg/dL", "g/dl": "g/dL", "g/l": "g/L", "mg/l": "mg/L", "ug/l": "ug/L", "ng/l": "ng/L",
    "ng/ml": "ng/mL", "pg/ml": "pg/mL", "ng/dl": "ng/dL", "ug/ml": "ug/mL", "ug/dl": "ug/dL",
    "u/l": "U/L", "iu/l": "[IU]/L", "miu/l": "m[IU]/L", "uiu/ml": "u[IU]/mL", "miu/ml": "m[IU]/mL",
    "meq/l": "meq/L", "mmol/mol": "mmol/mol", "%": "%", "l/l": "L/L", "fl": "fL", "pg": "pg",
    "10*9/l": "10*9/L", "10*12/l": "10*12/L", "10*3/ul": "10*3/uL", "10*6/ul": "10*6/uL", "/nl": "/nL",
    "/pl": "/pL", "k/ul": "10*3/uL", "m/ul": "10*6/uL", "s": "s", "sec": "s", "秒": "s", "inr": "{INR}",
    "{inr}": "{INR}", "ratio": "1", "1": "1",
}  # fmt: skip


@lru_cache(maxsize=4096)
def ucum_unit(value: str) -> str | None:
    """A unit as written in an export -> its UCUM code, or None when not recognised."""
    text = _fold(str(value)).replace("μ", "u").replace("µ", "u").replace(" ", "")
    text = text.lower().replace("^", "*")
    text = re.sub(r"^[x×]\s*", "", text)
    text = re.sub(r"10e(\d+)", r"10*\1", text)
    text = re.sub(r"^10(9|12|3|6)/", r"10*\1/", text)  # 10⁹/L folds to 109/L
    return _UNIT_ALIASES.get(text)


def unit_display(code: str) -> str:
    return _UNIT_DISPLAY.get(code, code)


@dataclass(frozen=True, slots=True)
class Analyte:
    key: str
    loinc: str
    display: str
    zh: str
    unit: str  # canonical UCUM code
    decimals: int
    convert: dict[str, tuple[float, float]] = field(default_factory=dict)  # unit -> (factor, offset)

    def to_canonical(self, value: float, unit: str | None) -> float:
        if unit is None or unit == self.unit:
            return value
        factor, offset = self.convert[unit]
        return value * factor + offset


def _conversion(spec: str) -> tuple[float, float]:
    m = re.fullmatch(r"([*/])([\d.]+)(?:([+-])([\d.]+))?", spec.replace(" ", ""))
    if not m:
        raise ValueError(f"bad conversion {spec!r}")
    k = float(m.group(2))
    factor = k if m.group(1) == "*" else 1 / k
    offset = float(m.group(4) or 0) * (-1 if m.group(3) == "-" else 1)
    return factor, offset


def _synonym_key(text: str) -> str:
    key = _fold(str(text)).casefold().replace("μ", "u").replace("γ", "g")
    key = re.sub(r"[\s_]+", "", key)
    key = re.sub(r"[(（\[【].*?[)）\]】]", "", key)  # units or method in brackets
    return re.sub(r"^(血清|血浆|静脉血|全血|serum|plasma)(?=.)", "", key)


@lru_cache(maxsize=1)
def analytes() -> tuple[dict[str, Analyte], dict[str, str]]:
    """The shipped analyte table and its synonym index (folded synonym -> analyte key)."""
    text = resources.files("xinglin.ingest").joinpath("data/lab_analytes.yaml").read_text(encoding="utf-8")
    table: dict[str, Analyte] = {}
    index: dict[str, str] = {}
    for key, spec in yaml.safe_load(text).items():
        conv = {u: _conversion(str(s)) for u, s in (spec.get("convert") or {}).items()}
        table[key] = Analyte(key, spec["loinc"], spec["display"], spec["zh"], spec["unit"], int(spec["decimals"]), conv)
        for syn in [*spec["synonyms"], spec["zh"], key]:
            k = _synonym_key(str(syn))
            if index.get(k, key) != key:
                raise ValueError(f"synonym {syn!r} names both {index[k]} and {key}")
            index[k] = key
    return table, index


@lru_cache(maxsize=16384)
def find_analyte(item: str) -> Analyte | None:
    """An item name (``GLU``, ``血糖``, ``葡萄糖(GLU)``, HL7 ``GLU^葡萄糖^L``) -> its analyte, or None."""
    table, index = analytes()
    text = str(item)
    candidates = [c for c in text.split("^")[:2] if c.strip()] if "^" in text else [text]
    for cand in candidates:
        key = _synonym_key(cand)
        if key in index:
            return table[index[key]]
        m = re.search(r"[(（\[]([^)）\]]+)[)）\]]", _fold(cand))  # 葡萄糖(GLU): try what is in brackets
        if m and _synonym_key(m.group(1)) in index:
            return table[index[_synonym_key(m.group(1))]]
    return None


_RESULT = re.compile(
    r"^(?P<cmp><=|>=|≤|≥|<|>)?\s*(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))\s*(?P<rest>.*?)\s*$"
)  # fmt: skip
_FLAG = re.compile(r"(?:^|\s+)\(?[HLhl]\)?$|\s*\(?[↑↓*]+\)?$")  # 5.6 H, 5.6(L), 5.6↑, 5.6 mmol/L ↑
_CMP = {"<=": "<=", "≤": "<=", ">=": ">=", "≥": ">=", "<": "<", ">": ">"}


@dataclass(frozen=True, slots=True)
class LabValue:
    value: float | None  # None for a text result (阴性, 阳性(+) ...)
    text: str
    comparator: str | None = None
    inline_unit: str | None = None  # a unit written after the number in the result cell


@lru_cache(maxsize=65536)
def parse_result(value: str) -> LabValue:
    """``5.6``, ``5.6↑``, ``5.6 H``, ``<0.5``, ``6.1mmol/L``, ``阴性`` -> number (+ comparator) or text."""
    text = _fold(str(value))
    if not text:
        raise InvalidValue("result_missing", "检验结果为空", "The result is empty")
    m = _RESULT.match(text)
    if m:
        rest = _FLAG.sub("", m.group("rest")).strip()
        unit = ucum_unit(rest) if rest else None
        if not rest or unit:
            return LabValue(float(m.group("num")), text, _CMP.get(m.group("cmp") or ""), unit)
    return LabValue(None, text)


_RANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(?:-{1,2}|–|—|~|～|〜|至|到)\s*([+-]?\d+(?:\.\d+)?)\s*(.*)$")
_BOUND = re.compile(r"^\s*(<=|>=|≤|≥|<|>)\s*(\d+(?:\.\d+)?)\s*(.*)$")


@dataclass(frozen=True, slots=True)
class RefRange:
    low: float | None
    high: float | None
    text: str
    unit: str | None = None  # a unit written inside the range text


@lru_cache(maxsize=16384)
def parse_ref_range(value: str) -> RefRange:
    """``3.9-6.1``, ``3.9～6.1``, ``<5.2``, ``≥1.0``, ``3.9-6.1 mmol/L``, ``阴性`` -> low/high (text kept)."""
    text = _fold(str(value))
    m = _RANGE.match(text)
    if m:
        return RefRange(float(m.group(1)), float(m.group(2)), text, ucum_unit(m.group(3)) if m.group(3) else None)
    m = _BOUND.match(text)
    if m:
        bound = float(m.group(2))
        unit = ucum_unit(m.group(3)) if m.group(3) else None
        if m.group(1) in ("<", "<=", "≤"):
            return RefRange(None, bound, text, unit)
        return RefRange(bound, None, text, unit)
    return RefRange(None, None, text)


@dataclass(frozen=True, slots=True)
class LabResult:
    analyte: Analyte | None
    item: str
    value: LabValue
    unit: str | None  # UCUM code of the stored value, None when unknown
    unit_text: str | None  # the unit as written, when it was not recognised
    ref: RefRange | None
    converted: bool = False


def _round(value: float, decimals: int) -> float:
    out = round(value, decimals)
    return float(int(out)) if decimals == 0 else out


def normalise_lab(item: str, result: Any, unit: Any = None, ref_range: Any = None, default_unit: str | None = None):
    """One lab result -> canonical analyte, value in the analyte's canonical unit, reference range converted too.

    Raises InvalidValue(``unit_unconvertible``) when the unit is known but cannot be converted for the analyte.
    """
    return finish_lab(lab_context(item, unit, ref_range, default_unit), parse_result(str(result)))


@dataclass(frozen=True, slots=True)
class LabContext:
    """What :func:`normalise_lab` makes of everything but the result: shared by the results of one test."""

    item: str
    analyte: Analyte | None
    unit_text: str | None
    ucum: str | None
    ref: RefRange | None
    default_ucum: str | None


def lab_context(item: Any, unit: Any = None, ref_range: Any = None, default_unit: str | None = None) -> LabContext:
    item_text = _fold(str(item))
    if not item_text:
        raise InvalidValue("lab_item_missing", "检验项目为空", "The test item is empty")
    unit_text = None if blank(unit) else _fold(str(unit))
    return LabContext(
        item_text,
        find_analyte(item_text),
        unit_text,
        ucum_unit(unit_text) if unit_text else None,
        _ref(ref_range),
        ucum_unit(default_unit) if default_unit else None,
    )


def finish_lab(ctx: LabContext, value: LabValue) -> LabResult:
    """:func:`normalise_lab` of a parsed result in its context."""
    item_text, analyte, unit_text, ucum, ref = ctx.item, ctx.analyte, ctx.unit_text, ctx.ucum, ctx.ref
    if unit_text and ucum is None and not value.inline_unit:
        if analyte is None:
            return LabResult(None, item_text, value, None, unit_text, ref)
        raise InvalidValue("unit_unknown", "无法识别的单位", "Unrecognised unit")
    ucum = ucum or value.inline_unit or ctx.default_ucum
    if ref is not None and ref.unit and ucum is None:
        ucum = ref.unit
    if analyte is None:
        return LabResult(None, item_text, value, ucum, unit_text if ucum is None else None, ref)
    if ucum is None:
        ucum = analyte.unit  # no unit given: assume the canonical one (reported as completeness of 单位)
    if ucum != analyte.unit and ucum not in analyte.convert:
        raise InvalidValue("unit_unconvertible", "该项目的单位无法换算", "The unit cannot be converted for this item")
    converted = ucum != analyte.unit
    if value.value is not None:
        value = LabValue(
            _round(analyte.to_canonical(value.value, ucum), analyte.decimals), value.text, value.comparator
        )
    if ref is not None and converted:
        ref_unit = ref.unit or ucum
        ref = RefRange(
            None if ref.low is None else _round(analyte.to_canonical(ref.low, ref_unit), analyte.decimals),
            None if ref.high is None else _round(analyte.to_canonical(ref.high, ref_unit), analyte.decimals),
            ref.text,
            analyte.unit,
        )
    return LabResult(analyte, item_text, value, analyte.unit, None, ref, converted)


def _ref(ref_range: Any) -> RefRange | None:
    return None if blank(ref_range) else parse_ref_range(str(ref_range))


# --------------------------------------------------------------------------------------------------
# Free text (diagnoses)

_DX_SEP = re.compile(r"[;；,，、\n]+")


def split_diagnoses(value: str) -> list[str]:
    """Splits on explicit separators only (``;`` ``，`` ``、``); the coding engine splits further."""
    return [p.strip() for p in _DX_SEP.split(_fold(str(value))) if p.strip()]
