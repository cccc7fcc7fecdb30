"""Code-list readers: the v601 workbook, code,name CSV in UTF-8 and GB18030, malformed rows, duplicates."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from tests.ingest.coding.shared_data import V601_CSV, V601_XLSX, need
from xinglin.ingest.coding.codeset import CodeSetError, Concept, load_code_set, read_code_set


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_v601_workbook_matches_csv() -> None:
    xlsx = load_code_set(need(V601_XLSX))
    csv_ = read_code_set(need(V601_CSV))
    assert len(xlsx.concepts) == 40474 == xlsx.rows_read
    assert xlsx.concepts[0] == Concept("A00", "霍乱")
    assert xlsx.concepts == csv_
    assert xlsx.duplicates == 0 and xlsx.conflicts == []


def test_small_workbook_with_header_and_numeric_codes(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编码", "名称"])
    ws.append(["I10.x00x002", "高血压"])
    ws.append([3751, "心脏移植"])  # a code typed as a number
    ws.append([None, None])
    ws.append(["E11.900", " 2型糖尿病 "])
    wb.save(tmp_path / "list.xlsx")
    assert read_code_set(tmp_path / "list.xlsx") == [
        Concept("I10.x00x002", "高血压"),
        Concept("3751", "心脏移植"),
        Concept("E11.900", "2型糖尿病"),
    ]


def test_csv_utf8_with_header_and_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", '\ufeffcode,name\nJ18.900,肺炎\nI10.x00x002,"高血压,原发性"\n')
    cs = load_code_set(path)
    assert cs.concepts == [Concept("J18.900", "肺炎"), Concept("I10.x00x002", "高血压,原发性")]
    assert cs.encoding == "utf-8"


def test_csv_gb18030_without_header(tmp_path: Path) -> None:
    rows = "J44.100,慢性阻塞性肺疾病急性加重\nI25.103,冠状动脉粥样硬化性心脏病\nE11.900,2型糖尿病\nK35.800,急性阑尾炎\n"
    path = _write(tmp_path / "gbk.csv", rows, "gb18030")
    cs = load_code_set(path)
    assert cs.encoding == "gb18030"
    assert [c.name for c in cs.concepts] == [
        "慢性阻塞性肺疾病急性加重",
        "冠状动脉粥样硬化性心脏病",
        "2型糖尿病",
        "急性阑尾炎",
    ]


def test_csv_chinese_header_other_column_order_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.tsv", "疾病名称\t疾病编码\t备注\n肺炎\tJ18.900\t常用\n")
    assert read_code_set(path) == [Concept("J18.900", "肺炎")]


def test_duplicates_are_deterministic(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "code,name\nA01,甲\nA01,甲\nA02,乙\nA02,丙\nA03,乙\n")
    cs = load_code_set(path)
    assert cs.concepts == [Concept("A01", "甲"), Concept("A02", "乙"), Concept("A03", "乙")]
    assert cs.duplicates == 1
    assert cs.conflicts == ["A02"]


@pytest.mark.parametrize(
    ("content", "zh", "en", "field", "row"),
    [
        (
            "code,name\nJ18.900,肺炎\nJ18.901,\n",
            "bad.csv 第3行 字段 name：名称为空",
            "bad.csv row 3, field name: the name is empty",
            "name",
            3,
        ),
        (
            "code,name\n,肺炎\n",
            "bad.csv 第2行 字段 code：编码为空",
            "bad.csv row 2, field code: the code is empty",
            "code",
            2,
        ),
        (
            "J18 900,肺炎\n",
            "bad.csv 第1行 字段 code：编码格式无效：'J18 900'（只允许字母、数字和 . + * / -）",
            "bad.csv row 1, field code: invalid code 'J18 900' (letters, digits and . + * / - only)",
            "code",
            1,
        ),
        (
            "A01,霍乱,由于,弧菌\n",
            "bad.csv 第1行 字段 name：多出 2 列；名称中含逗号时请加引号",
            "bad.csv row 1, field name: 2 extra column(s); quote names that contain commas",
            "name",
            1,
        ),
    ],
)
def test_malformed_rows(tmp_path: Path, content: str, zh: str, en: str, field: str, row: int) -> None:
    with pytest.raises(CodeSetError) as ei:
        read_code_set(_write(tmp_path / "bad.csv", content))
    err = ei.value
    assert (err.zh, err.en) == (zh, en)
    assert err.problems[0].field == field and err.problems[0].row == row
    assert err.file == "bad.csv"


def test_all_problems_counted(tmp_path: Path) -> None:
    with pytest.raises(CodeSetError) as ei:
        read_code_set(_write(tmp_path / "bad.csv", "code,name\nA01,\nA02,\nA03,乙\n,丁\n"))
    assert ei.value.total == 3
    assert [p.row for p in ei.value.problems] == [2, 3, 5]
    assert ei.value.zh.endswith("（共 3 处错误）")


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(CodeSetError, match="file not found"):
        read_code_set(tmp_path / "missing.csv")
    with pytest.raises(CodeSetError, match="holds no codes"):
        read_code_set(_write(tmp_path / "empty.csv", "code,name\n\n"))
    with pytest.raises(CodeSetError, match="cannot read the workbook"):
        read_code_set(_write(tmp_path / "fake.xlsx", "not a workbook"))


def test_unknown_header_words(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.csv", "dx_id,dx_desc\nK35.800,急性阑尾炎\n")
    assert read_code_set(path) == [Concept("K35.800", "急性阑尾炎")]
