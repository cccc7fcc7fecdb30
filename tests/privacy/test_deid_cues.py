"""Cues in clinical text: dates with a clock time, short-year dates, grouped card numbers, record and insurance
labels, and the places names stand in (after a bed number, as a chat speaker, after staff and kin words)."""

import pytest

from xinglin.privacy.deid.pseudonym import shift_date
from xinglin.privacy.deid.service import detect


def _found(text: str, *types: str) -> list[tuple[str, str]]:
    return [(e.type, text[e.start : e.end]) for e in detect(text) if not types or e.type in types]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("入院时间2023年9月8日11:40。", [("DATE", "2023年9月8日11:40")]),
        ("急诊病历　2023年10月24日 19:40 患者诉胸痛", [("DATE", "2023年10月24日 19:40")]),
        ("出生时间：2023年7月8日4时0分 出生地点", [("DATE", "2023年7月8日4时0分")]),
        ("于2024-12-03 02:15因腹痛入院", [("DATE", "2024-12-03 02:15")]),
        ("入院时间：24/2/10　出院时间：24/2/17", [("DATE", "24/2/10"), ("DATE", "24/2/17")]),
        ("2-19 12:20　协助患者床上翻身", [("DATE", "2-19 12:20")]),
        # no clock time: a dash between small numbers is a range, and a count after a date is not a time
        ("每日2-3次，口服", []),
        ("2024年3月5日 3次", [("DATE", "2024年3月5日")]),
        ("血压130/80 mmHg", []),
    ],
)
def test_dates_take_their_clock_time(text, expected):
    assert _found(text, "DATE") == expected


@pytest.mark.parametrize(
    ("surface", "shifted"),
    [
        ("2023年10月24日 19:40", "2023年11月23日 19:40"),
        ("4月17日3时20分", "5月17日3时20分"),
        ("2024-12-03 02:15", "2025-01-02 02:15"),
        ("24/2/10", "24/3/11"),
        ("2-19 12:20", "3-21 12:20"),
    ],
)
def test_the_date_moves_and_the_time_of_day_stays(surface, shifted):
    assert shift_date(surface, 30) == shifted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("社保卡号：7826 6367 8867 1873 现住址", [("INSURANCE_NUMBER", "7826 6367 8867 1873")]),
        ("新农合证号：M90033894 接诊医生", [("INSURANCE_NUMBER", "M90033894")]),
        ("insurance card 8123965667787292; vehicle", [("INSURANCE_NUMBER", "8123965667787292")]),
        ("体检编号：L2406253403", [("RECORD_NUMBER", "L2406253403")]),
        ("心电图 ID：MZ-2297998 窦性心律", [("RECORD_NUMBER", "MZ-2297998")]),
        ("Accession: BL240815137", [("RECORD_NUMBER", "BL240815137")]),
    ],
)
def test_more_number_labels(text, expected):
    assert _found(text) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("班记录 30床 许嘉懿　良性阵发性位置性眩晕", "许嘉懿"),
        ("宇文素芬：先查个血气，我十分钟到。", "宇文素芬"),
        ("抢救室。分诊护士：黄素芬", "黄素芬"),  # 黄素 is also a medical word; the staff label decides
        ("已告知值班李医生。", "李"),  # 值班 is a role, 李 the doctor
        ("患者田长江，男，60岁", "田长江"),  # 长 and 生 belong to given names too
        ("儿科王春生主任医师的号", "王春生"),
        ("肇事司机蒯璐电话+86-189-2972-9401", "蒯璐"),
        ("患者的女儿林婉清来电，称父亲头晕", "林婉清"),
        ("姓名许子轩。X线：右跟骨骨折", "许子轩"),
    ],
)
def test_names_where_clinical_text_puts_them(text, name):
    assert ("PERSON", name) in _found(text, "PERSON")


@pytest.mark.parametrize("text", ["经护士测量血压", "管床医生查房", "患者高血压病史十年", "值班护士巡视病房"])
def test_roles_and_diseases_stay(text):
    assert _found(text, "PERSON") == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("地址：上海市静安区国定路123号南湖新村7号楼5门1450　邮编", "上海市静安区国定路123号南湖新村7号楼5门1450"),
        ("联系地址：静安区南京西路818号桂花园19栋3单元1603室　电话", "静安区南京西路818号桂花园19栋3单元1603室"),
        ("呼救地址：广州市海珠区江南大道中12号16栋1002室 病情", "广州市海珠区江南大道中12号16栋1002室"),
        ("He lives in Xuhui District, Shanghai. Known", "Xuhui District, Shanghai"),
        (
            "I live at Room 605, Building 8, No. 16 Keji Road, Futian District, Shenzhen. My",
            "Room 605, Building 8, No. 16 Keji Road, Futian District, Shenzhen",
        ),
    ],
)
def test_addresses_down_to_the_flat(text, address):
    assert ("ADDRESS", address) in _found(text, "ADDRESS")
