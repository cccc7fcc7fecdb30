"""Dates with a clock time, short-year dates, grouped card numbers and more record / insurance labels."""

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
