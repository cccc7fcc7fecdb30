"""Normalisers: exact clean values for the messy spellings hospitals export."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from xinglin.ingest.normalise import (
    InvalidValue,
    find_analyte,
    name_pinyin,
    normalise_address,
    normalise_id_number,
    normalise_lab,
    normalise_name,
    normalise_phones,
    normalise_sex,
    parse_date,
    parse_ref_range,
    parse_result,
    ucum_unit,
)


@pytest.mark.parametrize(
    ("raw", "text", "family", "given"),
    [
        (" 張 三 ", "张三", "张", "三"),
        ("欧阳娜娜", "欧阳娜娜", "欧阳", "娜娜"),
        ("王^小红", "王小红", "王", "小红"),
        ("ＬＩ　Ｌｅｉ", "LI Lei", None, None),
        ("买买提 • 艾力", "买买提·艾力", None, None),
    ],
)
def test_names(raw, text, family, given):
    n = normalise_name(raw)
    assert (n.text, n.family, n.given) == (text, family, given)


@pytest.mark.parametrize("raw", ["张3", "", "李"])
def test_bad_names(raw):
    with pytest.raises(InvalidValue):
        normalise_name(raw)


def test_pinyin_variants():
    assert name_pinyin("张伟") == name_pinyin("章玮") == name_pinyin("張偉") == "zhangwei"


@pytest.mark.parametrize(
    ("raw", "fhir", "gb"),
    [("男", "male", "1"), ("女性", "female", "2"), ("1", "male", "1"), ("2", "female", "2"), ("M", "male", "1"),
     ("f", "female", "2"), ("Female", "female", "2"), ("未知", "unknown", "0"), ("9", "unknown", "9")],
)  # fmt: skip
def test_sex(raw, fhir, gb):
    s = normalise_sex(raw)
    assert (s.fhir, s.gb) == (fhir, gb)


def test_sex_value_map_and_invalid():
    assert normalise_sex("A", (("A", "男"),)).fhir == "male"
    with pytest.raises(InvalidValue) as exc:
        normalise_sex("x?")
    assert exc.value.reason == "sex_invalid"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024年3月5日", date(2024, 3, 5)),
        ("2024/3/5", date(2024, 3, 5)),
        ("20240305", date(2024, 3, 5)),
        ("2024.3.5", date(2024, 3, 5)),
        ("2024-03-05 08:00", datetime(2024, 3, 5, 8, 0)),
        ("2024-03-05T08:00:30", datetime(2024, 3, 5, 8, 0, 30)),
        ("20240305083000", datetime(2024, 3, 5, 8, 30)),
        ("２０２４年３月５日", date(2024, 3, 5)),
        ("45356", date(2024, 3, 5)),
        (45356.5, datetime(2024, 3, 5, 12, 0)),
        (datetime(2024, 3, 5), date(2024, 3, 5)),
    ],
)
def test_dates(raw, expected):
    assert parse_date(raw) == expected


def test_date_profile_format_and_errors():
    assert parse_date("05/03/2024", ("%d/%m/%Y",)) == date(2024, 3, 5)
    for raw, reason in (("2024-02-30", "date_invalid"), ("next tuesday", "date_format"), ("", "date_missing")):
        with pytest.raises(InvalidValue) as exc:
            parse_date(raw)
        assert exc.value.reason == reason


def test_id_numbers():
    rid = normalise_id_number(" 44030519850312001x ")
    assert (rid.number, rid.birth_date, rid.sex.fhir, rid.sex.gb, rid.province_code) == (
        "44030519850312001X",
        date(1985, 3, 12),
        "male",
        "1",
        "44",
    )
    assert normalise_id_number("110101199005170024").sex.fhir == "female"
    old = normalise_id_number("110101900517002")  # first-generation 15 digits
    assert (old.number, old.upgraded, old.birth_date) == ("110101199005170024", True, date(1990, 5, 17))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("110101199005170021", "id_checksum"), ("11010119900517002", "id_format"), ("990101199005170024", "id_region"),
     ("110101199002300024", "id_birth_date")],
)  # fmt: skip
def test_bad_id_numbers(raw, reason):
    with pytest.raises(InvalidValue) as exc:
        normalise_id_number(raw)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "values"),
    [
        ("+86 139-1234-5678", ["13912345678"]),
        ("008613912345678", ["13912345678"]),
        ("(010)12345678", ["010-12345678"]),
        ("0755-8888 8888", ["0755-88888888"]),
        ("13912345678/021-12345678", ["13912345678", "021-12345678"]),
        ("88886666", ["88886666"]),
    ],
)
def test_phones(raw, values):
    assert [p.value for p in normalise_phones(raw)] == values


@pytest.mark.parametrize("raw", ["12345", "1391234567", "23912345678"])
def test_bad_phones(raw):
    with pytest.raises(InvalidValue):
        normalise_phones(raw)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("广东省深圳市南山区科技园路1号", ("广东省", "深圳市", "南山区", "科技园路1号")),
        ("北京市朝阳区建国路88号", ("北京市", "北京市", "朝阳区", "建国路88号")),
        ("上海浦东新区世纪大道100号", ("上海市", "上海市", "浦东新区", "世纪大道100号")),
        ("杭州市西湖区文三路 90 号", ("浙江省", "杭州市", "西湖区", "文三路90号")),
        ("廣東省廣州市天河區", ("广东省", "广州市", "天河区", None)),
        ("河北省某某市某某县某村", ("河北省", "某某市", "某某县", "某村")),
    ],
)
def test_addresses(raw, parts):
    a = normalise_address(raw)
    assert (a.province, a.city, a.district, a.line) == parts


@pytest.mark.parametrize(
    ("item", "key", "loinc"),
    [("GLU", "glucose", "14749-6"), ("血糖", "glucose", "14749-6"), ("葡萄糖(GLU)", "glucose", "14749-6"),
     ("空腹血糖", "fasting_glucose", "14771-0"), ("HbA1c", "hba1c", "4548-4"), ("血清肌酐", "creatinine", "14682-9"),
     ("谷丙转氨酶", "alt", "1742-6"), ("TBIL", "total_bilirubin", "14631-6"), ("LDL-C", "ldl", "22748-8"),
     ("HGB", "hemoglobin", "718-7"), ("血小板计数", "platelets", "777-3"), ("K^钾^L", "potassium", "2823-3"),
     ("TSH", "tsh", "3016-3"), ("尿素氮", "urea", "22664-7")],
)  # fmt: skip
def test_lab_synonyms(item, key, loinc):
    a = find_analyte(item)
    assert a is not None and (a.key, a.loinc) == (key, loinc)


def test_lab_unit_conversions():
    glu = normalise_lab("GLU", "100.8", "mg/dL", "70-110")
    assert (glu.value.value, glu.unit, glu.converted) == (5.6, "mmol/L", True)
    assert (glu.ref.low, glu.ref.high, glu.ref.text) == (3.89, 6.11, "70-110")
    cr = normalise_lab("肌酐", "1.2", "mg/dl", "0.6～1.2")
    assert (cr.value.value, cr.unit, cr.ref.low, cr.ref.high) == (106.0, "umol/L", 53.0, 106.0)
    assert normalise_lab("TC", "200", "mg/dL").value.value == 5.17
    assert normalise_lab("TG", "150", "mg/dL").value.value == 1.69
    assert normalise_lab("BUN", "14", "mg/dL").value.value == 5.0
    assert normalise_lab("HbA1c", "53", "mmol/mol").value.value == 7.0
    assert normalise_lab("HGB", "13.5", "g/dL").value.value == 135.0
    wbc = normalise_lab("WBC", "6.5", "×10^9/L", "3.5-9.5")
    assert (wbc.value.value, wbc.unit, wbc.converted) == (6.5, "10*9/L", False)
    same = normalise_lab("GLU", "5.6↑", "mmol/L", "3.9～6.1")
    assert (same.value.value, same.converted, same.ref.low, same.ref.high) == (5.6, False, 3.9, 6.1)
    inline = normalise_lab("GLU", "6.1mmol/L", None)
    assert (inline.value.value, inline.unit) == (6.1, "mmol/L")


def test_lab_unknowns():
    with pytest.raises(InvalidValue) as exc:
        normalise_lab("GLU", "5", "IU/L")
    assert exc.value.reason == "unit_unconvertible"
    with pytest.raises(InvalidValue) as exc:
        normalise_lab("GLU", "5", "furlongs")
    assert exc.value.reason == "unit_unknown"
    odd = normalise_lab("某特殊项目", "阴性", None, "阴性")
    assert (odd.analyte, odd.value.value, odd.value.text, odd.ref.text) == (None, None, "阴性", "阴性")


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [("3.9-6.1", 3.9, 6.1), ("3.9～6.1", 3.9, 6.1), ("3.9~6.1 mmol/L", 3.9, 6.1), ("<5.2", None, 5.2),
     ("≤5.2", None, 5.2), (">=1.0", 1.0, None), ("阴性", None, None)],
)  # fmt: skip
def test_reference_ranges(raw, low, high):
    r = parse_ref_range(raw)
    assert (r.low, r.high) == (low, high)


def test_results_and_units():
    assert parse_result("<0.5").comparator == "<" and parse_result("<0.5").value == 0.5
    assert parse_result("5.6 H").value == 5.6
    assert parse_result("阳性(+)").value is None
    assert ucum_unit("μmol/L") == ucum_unit("µmol/l") == "umol/L"
    assert ucum_unit("x10E9/L") == "10*9/L"
    assert ucum_unit("uIU/mL") == "u[IU]/mL"
