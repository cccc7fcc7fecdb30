"""Source readers: CSV/TSV, Excel .xlsx, JSON Lines and HL7 v2 files -> rows with their position in the file.

Each reader yields :class:`SourceRow` objects: the values keyed by column (HL7: by field, ``PID-5``), the
1-based row number a person sees (spreadsheet row including the header; JSONL line; HL7 message) and, for
HL7 results, the segment number of the OBX within its message. Problems with the file as a whole (unknown
encoding, no header, truncated quoting) raise :class:`SourceError` before any row is handed out: callers
check a file with :func:`open_source` (which reads it through once) before they write anything.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from xinglin.core.errors import BadRequest

SAMPLE_BYTES = 1 << 20


class SourceError(BadRequest):
    """The file as a whole cannot be read (encoding, format, truncation, missing columns)."""


@dataclass(slots=True)
class SourceRow:
    number: int  # 1-based: spreadsheet row (header is row 1), JSONL line, or HL7 message
    values: dict[str, Any]
    segment: int | None = None  # HL7: 1-based segment number of the OBX/PID the row comes from
    problem: tuple[str, str, str] | None = None  # (reason, zh, en) when the row itself is unreadable


@dataclass(slots=True)
class Block:
    """Consecutive rows of a source as columns: what the column-wise cleaner works on.

    ``columns`` holds the requested columns only, one value per row (None where the row has no such field);
    ``problems`` the rows that are unreadable as a whole (by index in the block); :meth:`source_rows` gives
    rows back as :class:`SourceRow` objects, exactly as :meth:`Source.rows` yields them.
    """

    numbers: list[int]
    segments: list[int | None] | None  # None: no row has one (everything but HL7)
    columns: dict[str, list[Any]]
    problems: dict[int, tuple[str, str, str]]
    rows_of: Callable[[list[int]], list[SourceRow]]
    text_only: bool = False  # every value present is a str (no dates or numbers from a spreadsheet)
    frame: Any = None  # the same columns as a Polars DataFrame, when the block was split by Polars

    def __len__(self) -> int:
        return len(self.numbers)

    def source_rows(self, indexes: list[int]) -> list[SourceRow]:
        return self.rows_of(indexes)


@dataclass(slots=True)
class Source:
    path: Path
    format: str  # csv | tsv | xlsx | jsonl | hl7
    headers: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    rows_total: int = 0
    message_types: dict[str, int] = field(default_factory=dict)  # HL7 only
    plain: bool = False  # CSV/TSV without quotes, NUL or lone CR: one line is one record

    def rows(self) -> Iterator[SourceRow]:
        if self.format in ("csv", "tsv"):
            return _csv_rows(self.path, self.encoding or "utf-8", self.delimiter or ",")
        if self.format == "xlsx":
            return _xlsx_rows(self.path)[1]
        if self.format == "jsonl":
            return _jsonl_rows(self.path, self.encoding or "utf-8")
        return _hl7_rows(self.path, self.encoding or "utf-8")

    def blocks(self, columns: list[str], size: int = 20_000) -> Iterator[Block]:
        """The rows in blocks of at most ``size``, as columns; plain CSV/TSV is split by Polars."""
        if self.plain and self.format in ("csv", "tsv"):
            return _plain_csv_blocks(self.path, self.encoding or "utf-8", self.delimiter or ",", columns, size)
        return _row_blocks(self.rows(), columns, size)


def _row_blocks(rows: Iterator[SourceRow], columns: list[str], size: int) -> Iterator[Block]:
    while batch := list(itertools.islice(rows, size)):
        segments = [r.segment for r in batch]
        yield Block(
            [r.number for r in batch],
            segments if any(s is not None for s in segments) else None,
            {c: [r.values.get(c) for r in batch] for c in columns},
            {i: r.problem for i, r in enumerate(batch) if r.problem},
            lambda idx, batch=batch: [batch[i] for i in idx],
        )


def _err(zh: str, en: str, path: Path) -> SourceError:
    return SourceError(f"{path.name}：{zh}", f"{path.name}: {en}", element="file")


# --------------------------------------------------------------------------------------------------
# Encoding

_GB = {"gb2312", "gbk", "gb18030", "hz", "cp936", "big5", "big5hkscs", "cp950"}


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) or GB18030 (a superset of GBK and GB2312); charset-normalizer for the rest."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = data[:SAMPLE_BYTES]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(data) <= SAMPLE_BYTES)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    guess = (best.encoding if best else "").lower().replace("-", "").replace("_", "")
    if not best or guess in _GB or _decodes(sample, "gb18030"):
        if guess in ("big5", "big5hkscs", "cp950") and not _decodes(sample, "gb18030"):
            return "big5"
        return "gb18030"
    return best.encoding


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _canonical_encoding(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key in ("gbk", "gb2312", "gb-2312", "cp936", "gb18030"):
        return "gb18030"
    if key in ("utf8", "utf-8"):
        return "utf-8"
    if key in ("utf-8-bom", "utf8-bom", "utf-8-sig"):
        return "utf-8-sig"
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise SourceError(f"不支持的编码 {name}", f"Unsupported encoding {name}", element="encoding") from None


def _check_decodes(path: Path, encoding: str) -> bool:
    """Reads the whole file through the decoder, so a wrong encoding fails before anything is written.

    Returns whether the text is *plain*: no double quote, NUL or lone carriage return, so that for CSV every
    line is one record and its fields are the line split at the delimiter.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    plain = True
    carry = ""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _err(
                    f"按 {encoding} 解码失败（第 {offset + exc.start} 字节），请用 --encoding 指定正确的编码",
                    f"cannot be decoded as {encoding} at byte {offset + exc.start}; state the encoding",
                    path,
                ) from None
            offset += len(chunk)
            if plain:
                text, carry = carry + text, ""
                if text.endswith("\r"):
                    text, carry = text[:-1], "\r"
                plain = '"' not in text and "\x00" not in text and text.count("\r") == text.count("\r\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _err("文件末尾的字符不完整（文件被截断？）", "ends inside a character (truncated?)", path) from None
    return plain and not carry


# --------------------------------------------------------------------------------------------------
# Opening


def sniff_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".hl7", ".hl7v2", ".er7"):
        return "hl7"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".xls":
        raise _err(
            "不支持旧版 .xls，请另存为 .xlsx 或 CSV", "old .xls files are not supported; save as .xlsx or CSV", path
        )
    with path.open("rb") as fh:
        head = fh.read(4096)
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped.startswith(b"MSH|") or stripped.startswith(b"FHS|") or stripped.startswith(b"BHS|"):
        return "hl7"
    if stripped.startswith(b"PK\x03\x04"):
        return "xlsx"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def open_source(
    path: str | Path, *, format: str | None = None, encoding: str | None = None, delimiter: str | None = None
) -> Source:
    """Opens and checks a source file; raises SourceError with a clear reason when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise _err("文件不存在", "file not found", path)
    if path.stat().st_size == 0:
        raise _err("文件为空", "the file is empty", path)
    fmt = (format or sniff_format(path)).lower()
    if fmt == "xlsx":
        headers, rows = _xlsx_rows(path)
        total = sum(1 for _ in rows)
        return Source(path, "xlsx", headers, rows_total=total)
    if fmt not in ("csv", "tsv", "jsonl", "hl7"):
        raise _err(f"不支持的格式 {fmt}", f"unsupported format {fmt}", path)
    if encoding:
        enc = _canonical_encoding(encoding)
    else:
        with path.open("rb") as fh:
            enc = detect_encoding(fh.read(SAMPLE_BYTES))
    plain = _check_decodes(path, enc)
    if fmt == "jsonl":
        headers, total = _jsonl_headers(path, enc)
        return Source(path, "jsonl", headers, enc, rows_total=total)
    if fmt == "hl7":
        types: dict[str, int] = {}
        total = 0
        keys: dict[str, None] = {}
        for row in _hl7_rows(path, enc):
            total += 1
            mtype = str(row.values.get("MSH-9", ""))
            types[mtype] = types.get(mtype, 0) + 1
            keys.update(dict.fromkeys(row.values))
        if total == 0:
            raise _err("没有找到 HL7 消息（MSH 段）", "no HL7 message (MSH segment) found", path)
        return Source(path, "hl7", list(keys), enc, rows_total=total, message_types=types)
    delim = delimiter or ("\t" if fmt == "tsv" else _sniff_delimiter(path, enc))
    headers = _csv_header(path, enc, delim)
    total = 0
    if plain and len(delim) == 1:  # no quoting: nothing can be truncated, and non-blank lines are the rows
        total = _plain_row_count(path, enc, delim)
    else:
        plain = False
        for row in _csv_rows(path, enc, delim):
            total += 1
            if row.problem and row.problem[0] == "file_truncated":
                raise _err(row.problem[1], row.problem[2], path)
    return Source(path, "tsv" if delim == "\t" else "csv", headers, enc, delim, rows_total=total, plain=plain)


# --------------------------------------------------------------------------------------------------
# CSV / TSV


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="") as fh:
        sample = fh.read(64 * 1024)
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in (",", "\t", ";", "|", "，")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _clean_header(value: Any, n: int) -> str:
    text = str(value if value is not None else "").replace("\ufeff", "").strip()
    return text or f"column_{n}"


def _csv_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        for raw in reader:
            if any(c.strip() for c in raw):
                return _dedupe([_clean_header(c, i + 1) for i, c in enumerate(raw)])
    raise _err("没有表头行", "no header row", path)


def _dedupe(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        if h in seen:
            seen[h] += 1
            out.append(f"{h}.{seen[h]}")
        else:
            seen[h] = 1
            out.append(h)
    return out


def _csv_rows(path: Path, encoding: str, delimiter: str) -> Iterator[SourceRow]:
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        headers: list[str] | None = None
        try:
            for raw in reader:
                number = reader.line_num
                if headers is None:
                    if any(c.strip() for c in raw):
                        headers = _dedupe([_clean_header(c, i + 1) for i, c in enumerate(raw)])
                    continue
                if not any(c.strip() for c in raw):
                    continue  # blank lines are not rows
                row = SourceRow(_row_number(reader, number), dict(zip(headers, raw, strict=False)))
                if len(raw) != len(headers):
                    extra = len(raw) > len(headers) and not any(c.strip() for c in raw[len(headers) :])
                    if not extra:
                        row.problem = (
                            "field_count",
                            f"该行有 {len(raw)} 列，表头有 {len(headers)} 列",
                            f"the row has {len(raw)} fields, the header {len(headers)}",
                        )
                yield row
        except csv.Error as exc:
            yield SourceRow(
                reader.line_num,
                {},
                problem=(
                    "file_truncated",
                    f"第 {reader.line_num} 行之后文件不完整：{exc}",
                    f"broken after line {reader.line_num}: {exc}",
                ),
            )


# What str.strip() removes: a CSV line is blank when nothing but these and delimiters remain.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _plain_header(fh: Any, delimiter: str) -> tuple[list[str] | None, int]:
    """Reads up to and including the header line; returns the headers and the number of lines read."""
    reader = csv.reader(fh, delimiter=delimiter)
    for raw in reader:
        if any(c.strip() for c in raw):
            return _dedupe([_clean_header(c, i + 1) for i, c in enumerate(raw)]), reader.line_num
    return None, reader.line_num


def _plain_row_count(path: Path, encoding: str, delimiter: str) -> int:
    strip = _WHITESPACE + delimiter
    with path.open(encoding=encoding, newline="") as fh:
        headers, _ = _plain_header(fh, delimiter)
        return 0 if headers is None else sum(1 for line in fh if line.strip(strip))


def _plain_csv_blocks(path: Path, encoding: str, delimiter: str, columns: list[str], size: int) -> Iterator[Block]:
    """Blocks of a plain CSV (see :func:`_check_decodes`): lines split into columns by Polars.

    Gives the same rows, numbers and problems as :func:`_csv_rows`: blank lines are skipped, a line's number
    is its line in the file, and a row whose field count differs from the header's is flagged ``field_count``
    (unless the extra fields are empty).
    """
    headers, chunks = plain_line_chunks(path, encoding, delimiter, size)
    for lines, line_no in chunks:
        block = plain_block(lines, line_no, headers, delimiter, columns)
        if block is not None:
            yield block


def plain_line_chunks(
    path: Path, encoding: str, delimiter: str, size: int
) -> tuple[list[str], Iterator[tuple[list[str], int]]]:
    """The header of a plain CSV and its lines in lists of ``size``, each with the line number before it.

    The cheap, sequential half of reading: :func:`plain_block` turns each list into a :class:`Block`
    (in another process, when the cleaning is spread over several).
    """
    fh = path.open(encoding=encoding, newline="")
    headers, line_no = _plain_header(fh, delimiter)

    def chunks(line_no: int = line_no) -> Iterator[tuple[list[str], int]]:
        with fh:
            if headers is None:
                return
            while lines := list(itertools.islice(fh, size)):
                yield lines, line_no
                line_no += len(lines)

    return headers or [], chunks()


# Encodings in which byte 0x0A is only ever a line feed (never part of another character): a file in one of
# them can be cut into lines as bytes, and the decoding left to whoever cleans them.
_LF_SAFE = {"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "ascii", "latin-1", "iso8859-1"}


def plain_byte_chunks(
    path: Path, encoding: str, delimiter: str, size: int
) -> tuple[list[str], Iterator[tuple[bytes, int]]] | None:
    """Like :func:`plain_line_chunks`, with each list of lines as the undecoded bytes (see :func:`decode_lines`).

    Cutting bytes at line feeds costs a fraction of decoding them, so the process that reads the file does
    little. None when the encoding is not one where that is safe (UTF-16, say).
    """
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None
    if name not in _LF_SAFE and encoding not in _LF_SAFE:
        return None
    fh = path.open("rb")
    line_no = 0
    headers: list[str] | None = None
    for raw in fh:
        line_no += 1
        text = raw.decode(encoding if line_no == 1 else _body_encoding(encoding))
        fields = next(csv.reader([text], delimiter=delimiter), [])
        if any(c.strip() for c in fields):
            headers = _dedupe([_clean_header(c, i + 1) for i, c in enumerate(fields)])
            break

    def chunks(line_no: int = line_no) -> Iterator[tuple[bytes, int]]:
        with fh:
            if headers is None:
                return
            while lines := list(itertools.islice(fh, size)):
                yield b"".join(lines), line_no
                line_no += len(lines)

    return headers or [], chunks()


def _body_encoding(encoding: str) -> str:
    # a BOM only begins the file: further on, U+FEFF is a character of the data
    return "utf-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig") else encoding


def decode_lines(data: bytes, encoding: str) -> list[str]:
    """The lines of a chunk from :func:`plain_byte_chunks` (without their line feeds)."""
    lines = data.decode(_body_encoding(encoding)).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def plain_block(lines: list[str], line_no: int, headers: list[str], delimiter: str, columns: list[str]) -> Block | None:
    """Lines of a plain CSV after line ``line_no`` as a :class:`Block` (None when all of them are blank)."""
    import polars as pl

    strip = _WHITESPACE + delimiter
    width = len(headers)
    where = {h: i for i, h in enumerate(headers)}
    wanted = [(c, where.get(c)) for c in columns]
    text = pl.Series("line", lines, dtype=pl.String).str.strip_suffix("\n").str.strip_suffix("\r")
    keep = text.str.strip_chars(strip) != ""
    numbers = pl.int_range(line_no + 1, line_no + 1 + len(lines), eager=True).filter(keep).to_list()
    body = text.filter(keep)
    if body.is_empty():
        return None
    odd = (body.str.count_matches(delimiter, literal=True) != width - 1).arg_true().to_list()
    problems: dict[int, tuple[str, str, str]] = {}
    for i, line in zip(odd, body.gather(odd).to_list(), strict=True):
        raw = line.split(delimiter)
        if len(raw) > width and not any(c.strip() for c in raw[width:]):
            continue
        problems[i] = (
            "field_count",
            f"该行有 {len(raw)} 列，表头有 {width} 列",
            f"the row has {len(raw)} fields, the header {width}",
        )
    fields = body.str.split_exact(delimiter, width - 1).struct.unnest() if width > 1 else body.to_frame()
    missing = [None] * len(body)
    frame = fields.select([pl.col(fields.columns[i]).alias(c) for c, i in wanted if i is not None])
    values = _FrameColumns(frame, {c: missing for c, i in wanted if i is None})

    def rows_of(idx: list[int]) -> list[SourceRow]:
        lines = body.gather(idx).to_list() if idx else []
        return [
            SourceRow(numbers[i], dict(zip(headers, line.split(delimiter), strict=False)), None, problems.get(i))
            for i, line in zip(idx, lines, strict=True)
        ]

    return Block(numbers, None, values, problems, rows_of, text_only=True, frame=frame)


class _FrameColumns(dict):
    """Columns of a Polars frame as Python lists, made when first asked for."""

    def __init__(self, frame: Any, absent: dict[str, list[None]]):
        super().__init__(absent)
        self.frame = frame

    def __missing__(self, column: str) -> list[Any]:
        values = self[column] = self.frame[column].to_list()
        return values


def _row_number(reader: Any, last_line: int) -> int:
    # csv reports the line the record ended on; records with embedded newlines keep their last line number,
    # which is what a person finds in a text editor. For one-line records that is the spreadsheet row.
    return last_line


# --------------------------------------------------------------------------------------------------
# Excel


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value if value.time() != time(0) else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return str(value).strip()


def _xlsx_rows(path: Path) -> tuple[list[str], Iterator[SourceRow]]:
    try:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise _err(
            f"无法作为 Excel 文件打开（{type(exc).__name__}）", f"cannot be opened as Excel ({exc})", path
        ) from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    headers: list[str] | None = None
    header_row = 0
    for n, raw in enumerate(it, start=1):
        if any(v not in (None, "") for v in raw):
            headers = _dedupe([_clean_header(v, i + 1) for i, v in enumerate(raw)])
            header_row = n
            break
    if headers is None:
        wb.close()
        raise _err("工作表没有表头行", "the sheet has no header row", path)

    def rows() -> Iterator[SourceRow]:
        try:
            for n, raw in enumerate(it, start=header_row + 1):
                if not any(v not in (None, "") for v in raw):
                    continue
                yield SourceRow(n, {h: _cell(v) for h, v in zip(headers, raw, strict=False)})
        finally:
            wb.close()

    return headers, rows()


# --------------------------------------------------------------------------------------------------
# JSON Lines


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = "；".join(str(x) for x in v if x is not None)
        else:
            out[key] = (
                "" if v is None else v if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else str(v)
            )
    return out


def _jsonl_rows(path: Path, encoding: str) -> Iterator[SourceRow]:
    with path.open(encoding=encoding) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield SourceRow(
                    n, {}, problem=("invalid_json", f"不是合法的 JSON：{exc.msg}", f"not valid JSON: {exc.msg}")
                )
                continue
            if not isinstance(obj, dict):
                yield SourceRow(
                    n, {}, problem=("invalid_json", "每行应为一个 JSON 对象", "each line must be a JSON object")
                )
                continue
            yield SourceRow(n, _flatten(obj))


def _jsonl_headers(path: Path, encoding: str) -> tuple[list[str], int]:
    keys: dict[str, None] = {}
    total = 0
    for row in _jsonl_rows(path, encoding):
        total += 1
        if total <= 1000:
            keys.update(dict.fromkeys(row.values))
    if total == 0:
        raise _err("没有数据行", "no rows", path)
    return list(keys), total


# --------------------------------------------------------------------------------------------------
# HL7 v2

_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")
# Which fields of which segments rows carry. CX-typed identifiers also give "PID-3[TYPE]" keys.
ADT_EVENTS = {"A01", "A04", "A08", "A28", "A31"}


def hl7_messages(text: str) -> Iterator[list[str]]:
    """Splits a file into messages (lists of segment strings); ``\\r``, ``\\n`` or ``\\r\\n`` separate segments."""
    current: list[str] = []
    for seg in _SEGMENT_SPLIT.split(text):
        seg = seg.strip("\x0b\x1c \t")  # MLLP framing characters
        if not seg:
            continue
        if seg.startswith(("FHS", "BHS", "FTS", "BTS")):
            continue
        if seg.startswith("MSH"):
            if current:
                yield current
            current = [seg]
        elif current:
            current.append(seg)
    if current:
        yield current


def _field_values(seg, name: str) -> dict[str, str]:
    """A parsed segment -> {"PID-5": raw, "PID-5.1": first component, "PID-3[NNCHN]": id ...}."""
    out: dict[str, str] = {}
    start = 1
    for i in range(start, len(seg)):
        fld = seg[i]
        raw = str(fld)
        if not raw:
            continue
        n = i  # python-hl7 keeps MSH-1 (the field separator) at index 1, so indexes are field numbers
        first = raw.split("~")[0]
        out[f"{name}-{n}"] = first
        comps = first.split("^")
        if len(comps) > 1:
            for j, c in enumerate(comps, start=1):
                if c:
                    out[f"{name}-{n}.{j}"] = c
        for rep in raw.split("~"):
            parts = rep.split("^")
            if len(parts) >= 5 and parts[4] and parts[0]:  # CX: id^check^scheme^authority^type
                out.setdefault(f"{name}-{n}[{parts[4]}]", parts[0])
    return out


def _hl7_rows(path: Path, encoding: str) -> Iterator[SourceRow]:
    """ADT^A01/A04/A08 -> one row per message; ORU^R01 -> one row per OBX (with PID/PV1/OBR values)."""
    import hl7

    with path.open(encoding=encoding, newline="") as fh:
        text = fh.read()
    for number, segments in enumerate(hl7_messages(text), start=1):
        try:
            msg = hl7.parse("\r".join(segments))
        except Exception as exc:
            yield SourceRow(
                number, {}, problem=("hl7_parse", f"HL7 消息无法解析：{exc}", f"HL7 message cannot be parsed: {exc}")
            )
            continue
        common: dict[str, str] = {}
        results: list[tuple[int, dict[str, str]]] = []
        obr: dict[str, str] = {}
        for seg_no, seg in enumerate(msg, start=1):
            name = str(seg[0])
            values = _field_values(seg, name)
            if name == "OBX":
                results.append((seg_no, {**obr, **values}))
            elif name == "OBR":
                obr = values
            elif name in ("DG1", "NTE") and any(k.startswith(name) for k in common):
                # further diagnoses: append to the first DG1's description
                for k, v in values.items():
                    if k in ("DG1-3.2", "DG1-3", "DG1-4"):
                        common[k] = f"{common.get(k, '')}；{v}".strip("；")
            else:
                for k, v in values.items():
                    common.setdefault(k, v)
        mtype = common.get("MSH-9.1", common.get("MSH-9", ""))
        event = common.get("MSH-9.2", "")
        common["MSH-9"] = f"{mtype}^{event}" if event else mtype
        if mtype == "ORU" and results:
            for seg_no, values in results:
                yield SourceRow(number, {**common, **values}, segment=seg_no)
        elif (mtype == "ADT" and event in ADT_EVENTS) or mtype == "ORU":
            yield SourceRow(number, common, segment=1)
        else:
            yield SourceRow(
                number,
                common,
                segment=1,
                problem=(
                    "unsupported_message",
                    f"不支持的消息类型 {common['MSH-9']}（支持 ADT^A01/A04/A08、ORU^R01）",
                    f"unsupported message type {common['MSH-9']} (ADT^A01/A04/A08 and ORU^R01 are)",
                ),
            )


def read_rows(path: str | Path, **kw: Any) -> Iterator[SourceRow]:
    """Convenience: open, check and iterate a file in one call."""
    return open_source(path, **kw).rows()


def decode_text(data: bytes, encoding: str | None = None) -> str:
    enc = _canonical_encoding(encoding) if encoding else detect_encoding(data)
    return io.TextIOWrapper(io.BytesIO(data), encoding=enc).read()
