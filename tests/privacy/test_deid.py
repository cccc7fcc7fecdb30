"""De-identification engine: exact spans and masked strings."""

from __future__ import annotations

import pytest

from xinglin.privacy.deid import ENTITY_TYPES, Entity, detect, detect_many, mask, patient_date_shift, shift_date
from xinglin.privacy.deid.patterns import id_checksum_ok


def spans(text: str) -> list[tuple[str, str]]:
    return [(e.type, text[e.start : e.end]) for e in detect(text)]


def test_entity_types_are_exactly_the_documented_ten() -> None:
    assert ENTITY_TYPES == (
        "PERSON",
        "ID_NUMBER",
        "PHONE",
        "EMAIL",
        "ADDRESS",
        "RECORD_NUMBER",
        "INSURANCE_NUMBER",
        "DATE",
        "AGE",
        "PLATE",
    )


def test_entity_repr_and_dict_never_show_the_identifier() -> None:
    (ent,) = detect("电话13812345678")
    assert ent == Entity("PHONE", 2, 13)
    assert ent.text == "13812345678"
    assert "13812345678" not in repr(ent)
    assert ent.to_dict() == {"type": "PHONE", "start": 2, "end": 13}


def test_full_note_exact_spans_and_tags() -> None:
    text = (
        "患者王建国，男，65岁，身份证号110101199003074514，电话138-1234-5678，"
        "住址：浙江省杭州市西湖区文三路90号3栋2单元501室。"
    )
    assert [(e.type, e.start, e.end) for e in detect(text)] == [
        ("PERSON", 2, 5),
        ("ID_NUMBER", 16, 34),
        ("PHONE", 37, 50),
        ("ADDRESS", 54, 78),
    ]
    assert mask(text).masked == "患者[PERSON]，男，65岁，身份证号[ID_NUMBER]，电话[PHONE]，住址：[ADDRESS]。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证号110101199003074514。", [("ID_NUMBER", "110101199003074514")]),
        ("证件：11010519491231002x", [("ID_NUMBER", "11010519491231002x")]),  # lower-case x, valid check
        ("旧身份证130503670401001", [("ID_NUMBER", "130503670401001")]),  # 15-digit form
        ("手机13912345678", [("PHONE", "13912345678")]),
        ("电话+86 139 1234 5678", [("PHONE", "+86 139 1234 5678")]),
        ("电话139-1234-5678", [("PHONE", "139-1234-5678")]),
        ("座机0571-87654321", [("PHONE", "0571-87654321")]),
        ("座机(010)65432109", [("PHONE", "(010)65432109")]),
        ("邮箱zhang.wei@hospital.org.cn联系", [("EMAIL", "zhang.wei@hospital.org.cn")]),
        ("门诊号：MZ20240001", [("RECORD_NUMBER", "MZ20240001")]),
        ("住院号ZY-778899", [("RECORD_NUMBER", "ZY-778899")]),
        ("病案号 00123456", [("RECORD_NUMBER", "00123456")]),
        ("检验号：L2024030500017", [("RECORD_NUMBER", "L2024030500017")]),
        ("影像号：CT889900", [("RECORD_NUMBER", "CT889900")]),
        ("MRN: A1234567", [("RECORD_NUMBER", "A1234567")]),
        ("医保卡号：330100123456789", [("INSURANCE_NUMBER", "330100123456789")]),
        ("社保卡号 H12345678", [("INSURANCE_NUMBER", "H12345678")]),
        ("医保号：11010519491231002X", [("INSURANCE_NUMBER", "11010519491231002X")]),
        ("于2024年3月5日入院", [("DATE", "2024年3月5日")]),
        ("2024-03-05复查", [("DATE", "2024-03-05")]),
        ("2024/3/5复查", [("DATE", "2024/3/5")]),
        ("2024.3.5复查", [("DATE", "2024.3.5")]),
        ("出生日期：19900307", [("DATE", "19900307")]),
        ("3月5日出院", [("DATE", "3月5日")]),
        ("二〇二四年三月五日", [("DATE", "二〇二四年三月五日")]),
        ("admitted on March 5, 2024", [("DATE", "March 5, 2024")]),
        ("seen 5 Mar 2024", [("DATE", "5 Mar 2024")]),
        ("患者92岁", [("AGE", "92岁")]),
        ("患者九十二岁", [("AGE", "九十二岁")]),
        ("a man aged 95", [("AGE", "95")]),
        ("a 101-year-old woman", [("AGE", "101-year-old")]),
        ("车牌京A12345", [("PLATE", "京A12345")]),
        ("车牌沪B·D12345", [("PLATE", "沪B·D12345")]),
    ],
)
def test_structured_identifiers(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "患者65岁，体温36.5℃",  # ages up to 89 stay
        "身份证号110101199003074515",  # wrong check digit and no label -> not an ID ...
        "2024年复查",  # a year alone is not a date element
        "血红蛋白 135 g/L，白细胞 6.2×10^9/L",
    ],
)
def test_non_identifiers_are_kept(text: str) -> None:
    found = [t for t, _ in spans(text)]
    assert ("AGE" not in found and "DATE" not in found) or text.startswith("身份证")
    if text.startswith("身份证"):
        # ... but a labelled 18-digit number is masked anyway: a typo must not leak the ID
        assert found == ["ID_NUMBER"]
    else:
        assert found == []


def test_id_checksum() -> None:
    assert id_checksum_ok("110101199003074514")
    assert id_checksum_ok("11010519491231002x")
    assert not id_checksum_ok("110101199003074515")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("主治医师欧阳娜娜查房。", "欧阳娜娜"),
        ("家属司马光签字。", "司马光"),
        ("诸葛亮医生会诊。", "诸葛亮"),
        ("患者上官婉儿，女，32岁。", "上官婉儿"),
        ("紧急联系人：东方明", "东方明"),
        ("由皇甫嵩主任手术。", "皇甫嵩"),
    ],
)
def test_compound_surnames(text: str, name: str) -> None:
    assert ("PERSON", name) in spans(text)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("请王建国医生会诊。", ["王建国"]),
        ("张主任查房，护士李敏测量血压。", ["张", "李敏"]),
        ("患者刘芳之子陈强代诉病史。", ["刘芳", "陈强"]),
        ("姓名：阿依古丽", ["阿依古丽"]),
        ("记录医师：赵小川", ["赵小川"]),
        ("Patient: John Smith, seen by Dr. Wang.", ["John Smith", "Wang"]),
    ],
)
def test_names_in_context(text: str, names: list[str]) -> None:
    assert [s for t, s in spans(text) if t == "PERSON"] == names


@pytest.mark.parametrize(
    "term",
    [
        "帕金森病",
        "唐氏综合征",
        "川崎病",
        "桥本甲状腺炎",
        "霍奇金淋巴瘤",
        "克罗恩病",
        "阿尔茨海默病",
        "高血压",
        "白内障",
        "王不留行",
        "何首乌",
        "冯·维勒布兰德病",
        "马兜铃酸肾病",
        "黄疸",
        "房颤",
        "梅毒",
    ],
)
def test_medical_terms_stay_readable(term: str) -> None:
    for text in (f"诊断：{term}。", f"患者有{term}病史。", f"既往{term}，规律治疗。"):
        assert mask(text).masked == text


def test_eponyms_next_to_real_names() -> None:
    text = "患者王建国，诊断帕金森病，由李明医生随访。"
    assert mask(text).masked == "患者[PERSON]，诊断帕金森病，由[PERSON]医生随访。"


def test_role_words_are_not_names() -> None:
    text = "由管床医生处理，值班护士巡视，经护士测量体温。"
    assert spans(text) == []


def test_addresses() -> None:
    assert spans("家住北京市朝阳区建国路88号院3号楼2单元1001室") == [
        ("ADDRESS", "北京市朝阳区建国路88号院3号楼2单元1001室")
    ]
    assert spans("现住：解放路12号阳光花园5栋302室。") == [("ADDRESS", "解放路12号阳光花园5栋302室")]
    assert spans("户籍地河南省周口市沈丘县付井镇李庄村3组。") == [("ADDRESS", "河南省周口市沈丘县付井镇李庄村3组")]
    assert spans("Lives at 221 Baker Street, London.") == [("ADDRESS", "221 Baker Street, London")]


def test_clinical_words_ending_like_places_are_kept() -> None:
    for text in ("转入病区3床", "心前区无隆起", "社区医院随访", "进城务工", "呼吸道通畅，消化道出血"):
        assert spans(text) == [], text


def test_tag_mode_replaces_every_type() -> None:
    text = (
        "姓名：张伟 身份证110101199003074514 手机13812345678 邮箱zw@163.com 住址：上海市黄浦区南京东路100号 "
        "住院号ZY123456 医保卡号：H87654321 2024年3月5日 95岁 车牌沪A12345"
    )
    result = mask(text)
    assert result.masked == (
        "姓名：[PERSON] 身份证[ID_NUMBER] 手机[PHONE] 邮箱[EMAIL] 住址：[ADDRESS] "
        "住院号[RECORD_NUMBER] 医保卡号：[INSURANCE_NUMBER] [DATE] [AGE] 车牌[PLATE]"
    )
    assert {e.type for e in result.entities} == set(ENTITY_TYPES)


def test_pseudonyms_are_consistent_within_a_key_and_differ_across_keys() -> None:
    text = "患者王建国，电话13812345678；家属说王建国电话+86 138 1234 5678。"
    a = mask(text, mode="pseudonym", key=b"export-1").masked
    b = mask(text, mode="pseudonym", key=b"export-2").masked
    assert "王建国" not in a and "13812345678" not in a
    tokens_a = [t for t in a.replace("]", "[").split("[") if t.startswith(("PERSON-", "PHONE-"))]
    assert len(tokens_a) == 4
    assert tokens_a[0] == tokens_a[2]  # same person
    assert tokens_a[1] == tokens_a[3]  # the same phone written two ways
    assert a != b
    assert mask(text, mode="pseudonym", key=b"export-1").masked == a  # deterministic


def test_pseudonym_mode_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        mask("王建国", mode="pseudonym")
    with pytest.raises(ValueError, match="mode"):
        mask("王建国", mode="other")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("surface", "days", "expected"),
    [
        ("2024年3月5日", 30, "2024年4月4日"),
        ("2024-03-05", -5, "2024-02-29"),
        ("2024/3/5", 365, "2025/3/5"),
        ("2024.12.31", 1, "2025.1.1"),
        ("20240305", 10, "20240315"),
        ("3月5日", 1, "3月6日"),
        ("2024年3月", 31, "2024年4月"),
        ("二〇二四年三月五日", 30, "二〇二四年四月四日"),
        ("March 5, 2024", 30, "April 4, 2024"),
        ("5 Mar 2024", -5, "29 Feb 2024"),
        ("3/5/2024", 1, "3/6/2024"),
    ],
)
def test_shift_date_keeps_the_written_form(surface: str, days: int, expected: str) -> None:
    assert shift_date(surface, days) == expected


def test_date_shift_keeps_intervals() -> None:
    text = "2024年3月5日入院，2024年3月12日手术，2024-03-19出院。"
    out = mask(text, mode="pseudonym", key=b"k", date_shift_days=-40).masked
    assert out == "2024年1月25日入院，2024年2月1日手术，2024-02-08出院。"


def test_age_over_89_is_grouped_in_pseudonym_mode() -> None:
    assert mask("患者92岁", mode="pseudonym", key=b"k").masked == "患者≥90岁"


def test_patient_date_shift_is_stable_and_nonzero() -> None:
    a = patient_date_shift(b"key", "Patient/1")
    assert a == patient_date_shift(b"key", "Patient/1")
    assert a != 0 and -365 <= a <= 365
    assert {patient_date_shift(b"key", f"Patient/{i}") for i in range(20)} != {a}


def test_detect_many_matches_detect() -> None:
    texts = ["患者王建国，电话13812345678", "", "2024年3月5日入院", "邮箱a@b.cn", "诊断：帕金森病"]
    assert detect_many(texts) == [detect(t) for t in texts]


def test_empty_text() -> None:
    assert detect("") == []
    assert mask("").masked == ""
