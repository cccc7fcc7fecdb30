"""Source readers: encodings, delimiters, Excel, JSON Lines, HL7 v2, and whole-file errors."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.ingest.samples import ID_WANG, gbk_csv, hl7_file, jsonl_file, xlsx_file
from xinglin.ingest.readers import SourceError, detect_encoding, hl7_messages, open_source


def test_gbk_csv_detected_with_row_numbers(tmp_path):
    src = open_source(gbk_csv(tmp_path))
    assert (src.format, src.encoding, src.delimiter) == ("csv", "gb18030", ",")
    assert src.headers[:4] == ["病人姓名", "性别", "出生日期", "身份证号"]
    rows = list(src.rows())
    assert src.rows_total == len(rows) == 8
    assert [r.number for r in rows] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert rows[0].values["病人姓名"] == "張 三 "
    assert rows[1].values["单位"] == "mg/dl"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("姓名,性别\n张三,男\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "姓名,性别\n张三,男\n".encode(), "utf-8-sig"),
        ("姓名,性别\n张三,男\n欧阳娜娜,女\n".encode("gb18030"), "gb18030"),
    ],
)
def test_detect_encoding(data, expected):
    assert detect_encoding(data) == expected


def test_tsv_and_bom_and_blank_lines(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + "姓名\t性别\n张三\t男\n\n李四\t女\n".encode())
    src = open_source(path)
    assert (src.format, src.encoding, src.headers) == ("tsv", "utf-8-sig", ["姓名", "性别"])
    assert [(r.number, r.values) for r in src.rows()] == [
        (2, {"姓名": "张三", "性别": "男"}),
        (4, {"姓名": "李四", "性别": "女"}),
    ]


def test_semicolon_delimiter_sniffed_and_short_row_flagged(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("姓名;性别;电话\n张三;男;139\n李四;女\n", encoding="utf-8")
    rows = list(open_source(path).rows())
    assert rows[0].problem is None
    assert rows[1].number == 3 and rows[1].problem[0] == "field_count"


def test_wrong_stated_encoding_fails_before_reading(tmp_path):
    path = gbk_csv(tmp_path)
    with pytest.raises(SourceError) as exc:
        open_source(path, encoding="utf-8")
    assert "cannot be decoded as utf-8" in exc.value.en


def test_truncated_quoted_field_is_a_file_error(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text('姓名,诊断\n张三,"高血压\n', encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        open_source(path)
    assert "unexpected end of data" in exc.value.en


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_source(tmp_path / "empty.csv")
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "nope.csv")


def test_xlsx_rows_keep_dates_and_numbers(tmp_path):
    src = open_source(xlsx_file(tmp_path))
    assert src.format == "xlsx" and src.rows_total == 2
    first, second = src.rows()
    assert first.number == 2 and second.number == 3
    assert first.values["DOB"] == date(1990, 5, 17)
    assert first.values["ID_Card"] == ID_WANG
    assert first.values["Mobile"] == "13912345679"
    assert first.values["GLU(mg/dL)"] == "126"
    assert second.values["Visit Date"] == "45357"
    assert not isinstance(first.values["DOB"], datetime)


def test_jsonl_flattens_and_flags_bad_lines(tmp_path):
    src = open_source(jsonl_file(tmp_path))
    assert src.format == "jsonl" and src.rows_total == 3
    assert "patient.name" in src.headers and "test" in src.headers
    rows = list(src.rows())
    assert rows[0].values["patient.name"] == "周九"
    assert rows[1].number == 2 and rows[1].problem[0] == "invalid_json"
    assert rows[2].values["result"] == "35"


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_hl7_adt_and_oru(tmp_path, sep):
    src = open_source(hl7_file(tmp_path, sep=sep))
    assert src.format == "hl7"
    assert src.message_types == {"ADT^A01": 1, "ORU^R01": 2, "ADT^A03": 1}
    rows = list(src.rows())
    assert [(r.number, r.segment) for r in rows] == [(1, 1), (2, 4), (2, 5), (3, 1)]
    adt, glu, k, a03 = rows
    assert adt.values["PID-5"] == "王^小红"
    assert adt.values["PID-3[NNCHN]"] == ID_WANG
    assert adt.values["PID-3[PI]"] == "MRN001"
    assert adt.values["PV1-44"] == "20240305080000"
    assert adt.values["DG1-3.2"] == "2型糖尿病"
    assert glu.values["OBX-3"] == "GLU^葡萄糖^L" and glu.values["OBX-5"] == "126" and glu.values["OBX-6"] == "mg/dL"
    assert k.values["OBX-7"] == "3.5-5.3"
    assert glu.values["PID-7"] == "19900517"
    assert a03.problem[0] == "unsupported_message"


def test_hl7_messages_split_and_mllp_framing():
    text = "\x0bMSH|^~\\&|A\rPID|1\r\x1c\r\nMSH|^~\\&|B\nPID|2\n"
    assert list(hl7_messages(text)) == [["MSH|^~\\&|A", "PID|1"], ["MSH|^~\\&|B", "PID|2"]]
