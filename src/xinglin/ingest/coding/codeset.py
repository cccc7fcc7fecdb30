"""Readers for the diagnosis code list a hospital supplies.

Two forms: the Beijing clinical v601 workbook (``.xlsx``: code in column A, name in column B, no header) and
plain ``code,name`` CSV files (UTF-8 or GB18030/GBK, with or without a header row; national clinical 2.0 and
insurance 2.0 lists come in this form). The product ships no list: everything is read from the supplied file.

Duplicates are handled deterministically: a code repeated with the same name is dropped, a code repeated
with another name keeps the first row and is reported as a conflict; several codes sharing one name are all
kept (the coder picks the most specific one).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xinglin.core.errors import XinglinError

MAX_CODE_LEN = 40
MAX_NAME_LEN = 300
MAX_PROBLEMS = 20  # a broken file reports this many rows, then the total
# ICD-10 (A00, I10xx02, E11.211+N08.3*, M801000/3) and ICD-9-CM-3 (37.5100) codes: no spaces, a small alphabet.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+*/\-]*$")
_CODE_HEADERS = {
    "code",
    "codes",
    "icd",
    "icdcode",
    "icd10",
    "编码",
    "代码",
    "疾病编码",
    "诊断编码",
    "icd编码",
    "疾病代码",
}
_NAME_HEADERS = {"name", "names", "title", "名称", "疾病名称", "诊断名称", "名字", "描述", "中文名称", "手术名称"}


@dataclass(frozen=True, slots=True)
class Concept:
    """One entry of a code list."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One malformed row: 1-based row number in the file, the field and the reason in Chinese and English."""

    row: int
    field: str
    zh: str
    en: str


class CodeSetError(XinglinError):
    """The supplied code list cannot be used; ``problems`` lists the malformed rows (the first ``MAX_PROBLEMS``)."""

    status = 422

    def __init__(self, file: str, problems: list[Problem], total: int | None = None, *, zh: str = "", en: str = ""):
        self.file = file
        self.problems = problems
        self.total = total if total is not None else len(problems)
        if problems and not zh:
            p = problems[0]
            more_zh = f"（共 {self.total} 处错误）" if self.total > 1 else ""
            more_en = f" ({self.total} problems in all)" if self.total > 1 else ""
            zh = f"{file} 第{p.row}行 字段 {p.field}：{p.zh}{more_zh}"
            en = f"{file} row {p.row}, field {p.field}: {p.en}{more_en}"
        super().__init__(zh, en, element=problems[0].field if problems else None)


@dataclass(slots=True)
class CodeSet:
    """What was read: the concepts in file order and what was dropped on the way."""

    concepts: list[Concept]
    rows_read: int = 0
    duplicates: int = 0  # same code, same name again: dropped
    conflicts: list[str] = field(default_factory=list)  # same code, other name: first row kept
    encoding: str = "utf-8"


def _file_error(path: Path, zh: str, en: str) -> CodeSetError:
    return CodeSetError(path.name, [], zh=f"{path.name}：{zh}", en=f"{path.name}: {en}")


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes strictly, else charset-normalizer's guess (GBK -> GB18030)."""
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    enc = (best.encoding if best else "").lower().replace("-", "_")
    if enc in {"gbk", "gb2312", "gb18030", "hz", "cp936"} or not enc:
        enc = "gb18030"  # superset of GBK/GB2312; the usual export of Chinese hospital systems
    return enc


def _header_columns(cells: list[str]) -> tuple[int, int] | None:
    """Column indexes of code and name when ``cells`` is a header row, else None."""
    keys = [re.sub(r"[\s_\-]", "", c).lower() for c in cells]
    code_i = next((i for i, k in enumerate(keys) if k in _CODE_HEADERS), None)
    name_i = next((i for i, k in enumerate(keys) if k in _NAME_HEADERS), None)
    if code_i is None and name_i is None:
        return None
    if code_i is None or name_i is None:
        return (0, 1) if len(cells) >= 2 else None
    return code_i, name_i


def _parse_rows(rows: Iterable[tuple[int, list[str]]], label: str) -> CodeSet:
    """Validate ``(row number, cells)`` pairs into concepts; collects problems and raises once at the end."""
    problems: list[Problem] = []
    total_problems = 0
    out: list[Concept] = []
    seen: dict[str, str] = {}
    result = CodeSet(concepts=out)
    cols: tuple[int, int] | None = None
    first = True

    def bad(row: int, fld: str, zh: str, en: str) -> None:
        nonlocal total_problems
        total_problems += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(row, fld, zh, en))

    for row_no, raw in rows:
        cells = [("" if c is None else str(c)).strip() for c in raw]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue  # blank rows are not data
        if first:
            first = False
            cols = _header_columns(cells)
            if cols is None and not any(ch.isdigit() for ch in cells[0]):
                cols = (0, 1)  # every code has a digit: a first row without one is a header we do not know
            if cols is not None:
                continue
        result.rows_read += 1
        ci, ni = cols or (0, 1)
        if cols is None and len(cells) > 2:
            bad(
                row_no,
                "name",
                f"多出 {len(cells) - 2} 列；名称中含逗号时请加引号",
                f"{len(cells) - 2} extra column(s); quote names that contain commas",
            )
            continue
        code = cells[ci] if ci < len(cells) else ""
        name = " ".join(cells[ni].split()) if ni < len(cells) else ""
        if not code:
            bad(row_no, "code", "编码为空", "the code is empty")
            continue
        if len(code) > MAX_CODE_LEN or not _CODE.match(code):
            shown = code[:MAX_CODE_LEN]
            bad(
                row_no,
                "code",
                f"编码格式无效：{shown!r}（只允许字母、数字和 . + * / -）",
                f"invalid code {shown!r} (letters, digits and . + * / - only)",
            )
            continue
        if not name:
            bad(row_no, "name", "名称为空", "the name is empty")
            continue
        if len(name) > MAX_NAME_LEN:
            bad(row_no, "name", f"名称超过 {MAX_NAME_LEN} 个字符", f"the name is longer than {MAX_NAME_LEN} characters")
            continue
        prev = seen.get(code)
        if prev is not None:
            if prev == name:
                result.duplicates += 1
            else:
                result.conflicts.append(code)
            continue
        seen[code] = name
        out.append(Concept(code, name))
    if total_problems:
        raise CodeSetError(label, problems, total_problems)
    if not out:
        raise CodeSetError(label, [], zh=f"{label}：文件中没有编码", en=f"{label}: the file holds no codes")
    return result


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip/xml errors of a damaged or mislabelled file
        raise _file_error(
            path, f"无法读取 Excel 文件（{type(exc).__name__}）", f"cannot read the workbook ({exc})"
        ) from exc
    try:
        ws = wb.worksheets[0]
        for row_no, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield row_no, [_cell(c) for c in row]
    finally:
        wb.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a numeric code cell such as 3751 read back as 3751.0
    return str(value)


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for row in reader:
        yield reader.line_num, row


def load_code_set(path: str | Path, *, encoding: str | None = None) -> CodeSet:
    """Read a code list (``.xlsx`` workbook or ``code,name`` CSV/TSV) with its statistics."""
    path = Path(path)
    if not path.is_file():
        raise _file_error(path, "找不到文件", "file not found")
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        result = _parse_rows(_xlsx_rows(path), path.name)
        result.encoding = "xlsx"
        return result
    if suffix == ".xls":
        raise _file_error(
            path, "不支持旧版 .xls，请另存为 .xlsx 或 CSV", "old .xls is not supported: save as .xlsx or CSV"
        )
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":
        raise _file_error(path, "这是 Excel 文件，请使用 .xlsx 扩展名", "this is a workbook: give it the .xlsx suffix")
    enc = encoding or detect_encoding(data)
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise _file_error(path, f"无法按 {enc} 解码", f"cannot decode as {enc}: {exc}") from exc
    if "\x00" in text:
        raise _file_error(
            path, "文件含有空字符，可能是二进制或 UTF-16 文件", "the file holds NUL bytes (binary or UTF-16?)"
        )
    result = _parse_rows(_csv_rows(text), path.name)
    result.encoding = "utf-8" if enc == "utf-8-sig" else enc
    return result


def read_code_set(path: str | Path, *, encoding: str | None = None) -> list[Concept]:
    """Concepts of a code list in file order (see ``load_code_set`` for the counts)."""
    return load_code_set(path, encoding=encoding).concepts
