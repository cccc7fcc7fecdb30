"""Cleaning rows: a profile applied to source rows gives normalised values, or a rejection with its reason.

:class:`RowCleaner` cleans one row at a time and is the definition of the results. :class:`BlockCleaner` is
its column-wise twin for speed: it normalises each distinct value of a column once (per-value caches over
blocks of rows that Polars split), builds the rows whose every value is valid from those, and hands every
other row -- any invalid value, a cross-check that fails, an unreadable row -- to the row cleaner, so the
results, counts, warnings and rejections are the same whichever path a row takes.

A big plain CSV is cleaned by several processes (:func:`clean_source`): this one cuts the file into blocks of
lines (as bytes, undecoded) and hands them out; a cleaning process reads its block and does all of
:meth:`BlockCleaner.prepare` -- the outcome of every distinct value, the rows for the row cleaner, the counts --
and sends back each outcome it has not sent before plus one number per row; this one turns the numbers back
into outcomes and builds the row objects (:func:`assemble`), block after block in file order, with at most a
few blocks in flight.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import os
import pickle
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import compress, repeat
from typing import Any
from urllib.parse import quote

import orjson

from xinglin.core.config import get_settings
from xinglin.core.identity import ID_CHECK_CHARS as ID_CHECK  # the one GB 11643 rule, vectorised here
from xinglin.core.identity import ID_WEIGHTS
from xinglin.ingest import mpi
from xinglin.ingest.normalise import (
    BLANKS,
    PLAIN_CJK_NAME,
    Address,
    Analyte,
    InvalidValue,
    LabResult,
    LabValue,
    PersonName,
    Phone,
    RefRange,
    ResidentId,
    Sex,
    blank,
    chinese_name,
    finish_lab,
    lab_context,
    normalise_address,
    normalise_id_number,
    normalise_lab,
    normalise_name,
    normalise_phones,
    normalise_sex,
    parse_birth_date,
    parse_date,
    parse_result,
    province_codes,
    split_diagnoses,
    to_simplified_many,
)
from xinglin.ingest.profile import Profile
from xinglin.ingest.readers import (
    Block,
    Source,
    SourceRow,
    decode_lines,
    plain_block,
    plain_byte_chunks,
    plain_line_chunks,
)
from xinglin.ingest.report import IngestReport

BLOCK_ROWS = 20_000
MEMO_MAX = 100_000  # distinct values remembered per column; the cache starts again beyond that


def source_system(source: str) -> str:
    return mpi.SOURCE_SYSTEM + quote(source, safe="")


# --------------------------------------------------------------------------------------------------
# Cleaning one row


@dataclass(slots=True)
class CleanRow:
    file: str
    number: int
    segment: int | None
    hash: str
    person: mpi.Person
    address: Address | None = None
    visit: date | datetime | None = None
    visit_id: str | None = None
    diagnoses: list[str] = field(default_factory=list)
    labs: list[tuple[LabResult, date | datetime | None]] = field(default_factory=list)


class RowRejected(Exception):
    def __init__(self, column: str, reason: str, zh: str = "", en: str = ""):
        super().__init__(reason)
        self.column = column
        self.reason = reason
        self.zh = zh
        self.en = en


class RowCleaner:
    """Applies a profile to rows: normalised values, or RowRejected; counts land in the report."""

    def __init__(self, profile: Profile, file: str, source: str, report: IngestReport):
        self.p = profile
        self.file = file
        self.source = source
        self.system = source_system(source)
        self.report = report
        self.cols = {k: profile.column(k) for k in (
            "name", "sex", "birth_date", "id_number", "patient_id", "phone", "address", "visit_date", "visit_id",
            "diagnosis", "test", "result", "unit", "ref_range", "observed_at",
        )}  # fmt: skip
        self.identity = profile.identity_columns()
        self.mapped = [c for c, fm in profile.columns.items() if fm.key != "ignore"]

    def _raw(self, row: SourceRow, key: str) -> tuple[str | None, Any]:
        col = self.cols[key]
        if col is None:
            return None, None
        value = row.values.get(col)
        fm = self.p.columns[col]
        if isinstance(value, str) and fm.value_map:
            value = fm.value_map.get(value.strip(), value)
        if blank(value):
            return col, None
        self.report.present[col] += 1
        return col, value

    def _ok(self, col: str) -> None:
        self.report.valid[col] += 1

    def _warn(self, row: SourceRow, col: str, exc: InvalidValue) -> None:
        self.report.warn(self.file, row.number, col, exc.reason, row.segment)

    def row_hash(self, row: SourceRow) -> str:
        values = [str(row.values.get(c, "")) for c in self.mapped]
        if self.p.format == "hl7":
            values += [str(row.values.get("MSH-10", "")), str(row.segment)]
        return hashlib.sha256(orjson.dumps(values)).hexdigest()[:32]

    def clean(self, row: SourceRow) -> CleanRow:
        if row.problem:
            reason, zh, en = row.problem
            raise RowRejected("MSH-9" if reason == "unsupported_message" else "", reason, zh, en)
        person = mpi.Person()
        # resident ID number first: the other identity columns are checked against it
        col, value = self._raw(row, "id_number")
        rid = None
        if value is not None:
            try:
                rid = normalise_id_number(str(value))
            except InvalidValue as exc:
                self.report.invalid(self.file, row.number, col, exc.reason, row.segment)
                raise RowRejected(col, exc.reason) from None
            self._ok(col)
            person.id_number = rid.number
        col, value = self._raw(row, "name")
        if value is not None:
            try:
                person.name = normalise_name(str(value))
                self._ok(col)
            except InvalidValue as exc:
                if rid is None:
                    self.report.invalid(self.file, row.number, col, exc.reason, row.segment)
                    raise RowRejected(col, exc.reason) from None
                self._warn(row, col, exc)
        col, value = self._raw(row, "birth_date")
        if value is not None:
            try:
                person.birth_date = parse_birth_date(value, tuple(self.p.columns[col].date_formats))
                self._ok(col)
            except InvalidValue as exc:
                self._warn(row, col, exc)
        if rid is not None:
            if person.birth_date is not None and person.birth_date != rid.birth_date:
                raise RowRejected(col or "", "id_birth_date_mismatch")
            person.birth_date = rid.birth_date
        col, value = self._raw(row, "sex")
        if value is not None:
            try:
                fm = self.p.columns[col]
                person.sex = normalise_sex(str(value), tuple(fm.value_map.items()))
                self._ok(col)
            except InvalidValue as exc:
                self._warn(row, col, exc)
        if rid is not None:
            if person.sex is not None and person.sex.fhir in ("male", "female") and person.sex != rid.sex:
                raise RowRejected(col or "", "id_sex_mismatch")
            if person.sex is None or person.sex.fhir == "unknown":
                person.sex = rid.sex
        col, value = self._raw(row, "phone")
        if value is not None:
            try:
                person.phones = tuple(p.value for p in normalise_phones(str(value)))
                self._ok(col)
            except InvalidValue as exc:
                self._warn(row, col, exc)
        col, value = self._raw(row, "patient_id")
        if value is not None:
            person.source_id = (self.system, str(value).strip())
            self._ok(col)
        if person.id_number is None and person.name is None and person.source_id is None:
            raise RowRejected(self.cols["name"] or self.cols["id_number"] or "", "no_identity")
        clean = CleanRow(self.file, row.number, row.segment, self.row_hash(row), person)
        col, value = self._raw(row, "address")
        if value is not None:
            try:
                clean.address = normalise_address(str(value))
                self._ok(col)
            except InvalidValue as exc:
                self._warn(row, col, exc)
        col, value = self._raw(row, "visit_date")
        if value is not None:
            try:
                clean.visit = parse_date(value, tuple(self.p.columns[col].date_formats))
                self._ok(col)
            except InvalidValue as exc:
                self.report.invalid(self.file, row.number, col, exc.reason, row.segment)
                raise RowRejected(col, exc.reason) from None
        col, value = self._raw(row, "visit_id")
        if value is not None:
            clean.visit_id = str(value).strip()
            self._ok(col)
        col, value = self._raw(row, "diagnosis")
        if value is not None:
            clean.diagnoses = split_diagnoses(str(value))
            self._ok(col)
        observed = clean.visit
        col, value = self._raw(row, "observed_at")
        if value is not None:
            try:
                observed = parse_date(value, tuple(self.p.columns[col].date_formats))
                self._ok(col)
            except InvalidValue as exc:
                self.report.invalid(self.file, row.number, col, exc.reason, row.segment)
                raise RowRejected(col, exc.reason) from None
        self._labs(row, clean, observed)
        return clean

    def _labs(self, row: SourceRow, clean: CleanRow, observed: date | datetime | None) -> None:
        tcol, item = self._raw(row, "test")
        rcol, result = self._raw(row, "result")
        ucol, unit = self._raw(row, "unit")
        fcol, ref = self._raw(row, "ref_range")
        if item is not None and result is None:
            self._warn(row, rcol or tcol, InvalidValue("result_missing", "", ""))
        if item is not None and result is not None:
            fm = self.p.columns[rcol]
            try:
                lab = normalise_lab(str(item), result, unit, ref, fm.unit)
            except InvalidValue as exc:
                self.report.invalid(self.file, row.number, ucol or rcol, exc.reason, row.segment)
                raise RowRejected(ucol or rcol, exc.reason) from None
            for c in (tcol, rcol, ucol, fcol):
                if c is not None and row.values.get(c) not in (None, ""):
                    self._ok(c)
            clean.labs.append((lab, observed))
        for col, fm in self.p.wide_columns():
            value = row.values.get(col)
            if blank(value):
                continue
            self.report.present[col] += 1
            try:
                lab = normalise_lab(fm.analyte, value, None, None, fm.unit)
            except InvalidValue as exc:
                self.report.invalid(self.file, row.number, col, exc.reason, row.segment)
                raise RowRejected(col, exc.reason) from None
            self._ok(col)
            clean.labs.append((lab, observed))


# --------------------------------------------------------------------------------------------------
# Cleaning a block of rows, column by column


class _Bad:
    """Outcome of a value that does not normalise: the row goes to the row cleaner, which says why."""

    __slots__ = ()


BAD = _Bad()
FALLBACK: Any = object()  # a fast twin's "ask the normaliser itself"
_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # normalise_phones(v) == (Phone(v, "mobile"),) for these
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_DATE_SHAPE = (
    r"^([0-9]{4})(?:年([0-9]{1,2})月([0-9]{1,2})[日号]?|[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})|([0-9]{2})([0-9]{2}))$"
)
_MALE, _FEMALE = Sex("male", "1"), Sex("female", "2")


def _count_none(values: list[Any]) -> int:
    return sum(1 for v in values if v is None)  # (list.count(None) would call __eq__ of every value)


def _count_not_none(values: list[Any]) -> int:
    return len(values) - _count_none(values)


def _phones(value: Any) -> tuple[str, ...]:
    return tuple(p.value for p in normalise_phones(str(value)))


def _id_numbers(values: list[Any]) -> list[Any]:
    """normalise_id_number of 18 plain characters, checked by Polars; FALLBACK for other shapes and failures."""
    out = [FALLBACK] * len(values)
    idx = [i for i, v in enumerate(values) if v.__class__ is str and _ID_SHAPE.fullmatch(v)]
    if not idx:
        return out
    import polars as pl

    texts = [values[i].upper() for i in idx]
    t = pl.col("t")
    born = t.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)
    frame = pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(
        born=pl.when(born.dt.year() >= 1880).then(born),
        residue=pl.sum_horizontal([t.str.slice(k, 1).cast(pl.Int32) * w for k, w in enumerate(ID_WEIGHTS)]) % 11,
    )
    today, regions = date.today(), province_codes()
    for i, text, day, residue in zip(idx, texts, frame["born"].to_list(), frame["residue"].to_list(), strict=True):
        if day is not None and day <= today and text[:2] in regions and ID_CHECK[residue] == text[17]:
            out[i] = ResidentId(text, day, _MALE if int(text[16]) % 2 else _FEMALE, text[:2], False)
    return out


def _names(values: list[Any]) -> list[Any]:
    """normalise_name of names in plain Chinese characters: simplified in one OpenCC call."""
    out = [FALLBACK] * len(values)
    idx = [i for i, v in enumerate(values) if v.__class__ is str and PLAIN_CJK_NAME.fullmatch(v)]
    for i, simplified in zip(idx, to_simplified_many([values[i] for i in idx]), strict=True):
        try:
            out[i] = chinese_name(simplified)
        except InvalidValue:
            out[i] = BAD
    return out


def _dates(values: list[Any]) -> list[Any]:
    """parse_date (no profile formats) of 2024年3月5日, 2024-03-05, 2024/3/5, 2024.3.5 and 20240305, by Polars."""
    out = [FALLBACK] * len(values)
    idx = [i for i, v in enumerate(values) if v.__class__ is str]
    if not idx:
        return out
    import polars as pl

    g = pl.col("t").str.extract_groups(_DATE_SHAPE)
    day = pl.concat_str(
        g.struct[0],
        pl.coalesce(g.struct[1], g.struct[3], g.struct[5]).str.zfill(2),
        pl.coalesce(g.struct[2], g.struct[4], g.struct[6]).str.zfill(2),
    ).str.to_date("%Y%m%d", strict=False)
    frame = pl.DataFrame({"t": [values[i] for i in idx]}, schema={"t": pl.String}).select(
        day=pl.when(day.dt.year() >= 1).then(day)
    )
    for i, parsed in zip(idx, frame["day"].to_list(), strict=True):
        if parsed is not None:
            out[i] = parsed
    return out


def _birth_dates(values: list[Any]) -> list[Any]:
    """parse_birth_date: :func:`_dates`, then the range check."""
    out = _dates(values)
    today = date.today()
    for i, day in enumerate(out):
        if day is not FALLBACK and (day > today or day.year < 1880):
            out[i] = BAD
    return out


_PERSON_KEYS = ("id_number", "name", "birth_date", "sex", "phone", "patient_id")
_ROW_KEYS = ("address", "visit_date", "visit_id", "diagnosis", "observed_at")
_LAB_KEYS = ("test", "result", "unit", "ref_range")


class BlockCleaner:
    """Column-wise twin of :class:`RowCleaner` (same results; see the module docstring).

    :meth:`clean` turns a :class:`Block` into one entry per row, in order: a :class:`CleanRow`, or the
    :class:`SourceRow` itself for the row cleaner to clean (or reject) -- which the caller does when it
    wants that row's warnings and rejection recorded. It also returns what the rows it cleaned add to the
    report's ``present`` and ``valid`` counts.
    """

    def __init__(self, profile: Profile, file: str, source: str):
        self.p = profile
        self.file = file
        self.system = source_system(source)
        ref = RowCleaner(profile, file, source, IngestReport())
        self.cols = ref.cols
        self.mapped = ref.mapped
        self.wide = profile.wide_columns()
        self.hl7 = profile.format == "hl7"
        self.memos: dict[str, dict[Any, Any]] = {}
        self.slow: list[int] = []  # rows of the block in hand for the row cleaner
        self.fns: dict[str, Callable[[Any], Any]] = {}
        for key, col in self.cols.items():
            if col is not None:
                self.fns[key] = self._fn(key, col)
        for col, fm in self.wide:
            self.fns["wide:" + col] = self._wide_fn(fm.analyte or "", fm.unit)

    def columns(self) -> list[str]:
        """The columns a block must carry."""
        return [*self.mapped, "MSH-10"] if self.hl7 else list(self.mapped)

    # --- per distinct value -------------------------------------------------------------------------

    def _fn(self, key: str, col: str) -> Callable[[list[Any]], list[Any]]:
        """Outcomes of distinct values of a column: RowCleaner._raw, then the normaliser (None for a blank value).

        Values of the common shapes go through a fast twin of the normaliser (Polars over all of them, or an
        exact pre-check); the others, and any the twin does not vouch for, through the normaliser itself.
        """
        fm = self.p.columns[col]
        vm = fm.value_map
        formats = tuple(fm.date_formats)
        sex_map = tuple(vm.items())
        system = self.system
        normalisers: dict[str, Callable[[Any], Any]] = {
            "id_number": lambda v: normalise_id_number(str(v)),
            "name": lambda v: normalise_name(str(v)),
            "birth_date": lambda v: parse_birth_date(v, formats),
            "sex": lambda v: normalise_sex(str(v), sex_map),
            "phone": lambda v: (v,) if v.__class__ is str and _MOBILE.fullmatch(v) else _phones(v),
            "patient_id": lambda v: (system, str(v).strip()),
            "address": lambda v: normalise_address(str(v)),
            "visit_date": lambda v: parse_date(v, formats),
            "visit_id": lambda v: str(v).strip(),
            "diagnosis": lambda v: tuple(split_diagnoses(str(v))),
            "observed_at": lambda v: parse_date(v, formats),
        }
        normalise = normalisers.get(key)
        fast: Callable[[list[Any]], list[Any]] | None = {
            "id_number": _id_numbers,
            "name": _names,
            "birth_date": None if formats else _birth_dates,
            "visit_date": None if formats else _dates,
            "observed_at": None if formats else _dates,
        }.get(key)

        def many(values: list[Any]) -> list[Any]:
            if vm:
                values = [vm.get(v.strip(), v) if isinstance(v, str) else v for v in values]
            # blank(): None, or a str that strips to one of BLANKS (other types are never blank)
            prepped = [
                (None if v.strip() in BLANKS else v) if v.__class__ is str else (None if blank(v) else v)
                for v in values
            ]
            if normalise is None:  # the lab columns: the mapped value, normalised together per row
                return prepped
            out = fast(prepped) if fast is not None else [FALLBACK] * len(prepped)
            for i in [i for i, o in enumerate(out) if o is FALLBACK]:
                value = prepped[i]
                if value is None:
                    out[i] = None
                else:
                    try:
                        out[i] = normalise(value)
                    except InvalidValue:
                        out[i] = BAD
            return out

        return many

    @staticmethod
    def _wide_fn(analyte: str, unit: str | None) -> Callable[[list[Any]], list[Any]]:
        def fn(value: Any) -> Any:
            if blank(value):
                return None
            try:
                return normalise_lab(analyte, value, None, None, unit)
            except InvalidValue:
                return BAD

        return lambda values: [fn(v) for v in values]

    def _labs(self, keys: list[tuple[Any, Any, Any, Any]]) -> list[Any]:
        """normalise_lab of (test, result, unit, reference range): the context once per test, plain numbers directly."""
        default_unit = self.p.columns[self.cols["result"] or ""].unit if self.cols["result"] else None
        contexts = self.memos.get("lab-context")
        if contexts is None or len(contexts) > MEMO_MAX:
            contexts = self.memos["lab-context"] = {}
        out: list[Any] = []
        for item, result, unit, ref in keys:
            if item is None:
                out.append(None)
                continue
            if result is None:  # a warning (result_missing): the row cleaner records it
                out.append(BAD)
                continue
            ctx = contexts.get((item, unit, ref))
            if ctx is None:
                try:
                    ctx = lab_context(str(item), unit, ref, default_unit)
                except InvalidValue:
                    ctx = BAD
                contexts[(item, unit, ref)] = ctx
            if ctx is BAD:
                out.append(BAD)
                continue
            try:
                if result.__class__ is str and _PLAIN_NUMBER.fullmatch(result):
                    value = LabValue(float(result), result, None, None)  # parse_result of a plain number
                else:
                    value = parse_result(str(result))
                out.append(finish_lab(ctx, value))
            except InvalidValue:
                out.append(BAD)
        return out

    def _outcomes(self, name: str, values: list[Any], many: Callable[[list[Any]], list[Any]]) -> list[Any]:
        """The outcome of every value, computed once per distinct value; rows with a BAD one go to ``self.slow``."""
        memo = self.memos.get(name)
        if memo is None or len(memo) > MEMO_MAX:
            memo = self.memos[name] = {}
        distinct = set(values)
        new = [v for v in distinct if v not in memo]
        if new:
            memo.update(zip(new, many(new), strict=True))
        out = list(map(memo.__getitem__, values))
        if any(memo[v] is BAD for v in distinct):
            self.slow.extend(i for i, o in enumerate(out) if o is BAD)
        return out

    # --- a block ------------------------------------------------------------------------------------

    def clean(self, block: Block) -> tuple[list[CleanRow | SourceRow], Counter, Counter]:
        # Tens of thousands of new objects and no cycles among them: the cyclic garbage collector would
        # walk the whole heap several times per block for nothing, so it waits until the block is built.
        with _gc_paused():
            return self._clean(block)

    def _clean(self, block: Block) -> tuple[list[CleanRow | SourceRow], Counter, Counter]:
        prepared = self.prepare(block)
        return assemble(self.file, prepared), prepared.present, prepared.valid

    def prepare(self, block: Block) -> Prepared:
        """Everything but building the row objects: the outcome of every value, the rows for the row cleaner,
        the counts. What a cleaning process sends back (the outcomes are shared objects, so it pickles small)."""
        n = len(block)
        cols = self.cols
        self.slow = sorted(block.problems)
        out: dict[str, list[Any]] = {}
        for key, col in cols.items():
            if col is not None:
                out[key] = self._outcomes(key, block.columns[col], self.fns[key])
        labs: list[Any] | None = None
        if cols["test"] is not None:
            parts = [out[k] if cols[k] is not None else repeat(None, n) for k in _LAB_KEYS]
            labs = self._outcomes("lab", list(zip(*parts, strict=False)), self._labs)
        wides = [self._outcomes("wide:" + c, block.columns[c], self.fns["wide:" + c]) for c, _ in self.wide]
        hashes = self._hashes(block)

        # the cross-checks of the identity columns (RowCleaner.clean): rows that fail one go to the row cleaner
        slow_rows = set(self.slow)  # unreadable rows and rows with an invalid value
        none: list[None] = [None] * n
        rids, names, pids = out.get("id_number", none), out.get("name", none), out.get("patient_id", none)
        births, sexes = out.get("birth_date", none), out.get("sex", none)
        for i, rid in enumerate(rids):
            if rid is None:
                if names[i] is None and pids[i] is None and i not in slow_rows:
                    slow_rows.add(i)  # no_identity
                continue
            if i in slow_rows:
                continue
            born, sex = births[i], sexes[i]
            if born is not None and born != rid.birth_date:
                slow_rows.add(i)  # id_birth_date_mismatch
            # (a male or female Sex differs from the ID number's exactly when its GB code does)
            elif sex is not None and sex.fhir in ("male", "female") and sex.gb != rid.sex.gb:
                slow_rows.add(i)  # id_sex_mismatch
        slow = sorted(slow_rows)
        present, valid = self._counts(block, out, labs, wides, slow)
        return Prepared(
            block.numbers,
            block.segments,
            hashes,
            {k: out[k] for k in (*_PERSON_KEYS, *_ROW_KEYS) if k in out},
            labs,
            wides,
            slow,
            block.source_rows(slow),
            present,
            valid,
        )

    def _counts(
        self, block: Block, out: dict[str, list[Any]], labs: list[Any] | None, wides: list[list[Any]], slow: list[int]
    ) -> tuple[Counter, Counter]:
        """What the rows cleaned here add to ``present`` and ``valid`` (the row cleaner counts the others)."""
        present: Counter = Counter()
        valid: Counter = Counter()
        for key, values in out.items():
            col = self.cols[key]
            assert col is not None
            k = _count_not_none(values) - sum(1 for i in slow if values[i] is not None)
            if k:
                present[col] += k
                if key not in _LAB_KEYS:
                    valid[col] += k
        if labs is not None:
            fast_labs = [lab is not None for lab in labs]
            for i in slow:
                fast_labs[i] = False
            for key in _LAB_KEYS:
                col = self.cols[key]
                if col is not None:
                    raws = list(compress(block.columns[col], fast_labs))
                    k = len(raws) - raws.count("") - _count_none(raws)
                    if k:
                        valid[col] += k
        for (col, _), values in zip(self.wide, wides, strict=True):
            k = _count_not_none(values) - sum(1 for i in slow if values[i] is not None)
            if k:
                present[col] += k
                valid[col] += k
        return present, valid

    def _hashes(self, block: Block) -> list[str]:
        """RowCleaner.row_hash of every row: SHA-256 of the JSON array of the mapped columns' values."""
        sha = hashlib.sha256
        if block.frame is not None and self.mapped and not self.hl7:
            import polars as pl

            frame = block.frame.select(self.mapped)
            needs_escape = frame.select(pl.any_horizontal(pl.all().str.contains(r'["\\\x00-\x1f]').any())).item()
            if not needs_escape:  # then the JSON that orjson writes is the values quoted and joined
                parts: list[Any] = [pl.lit('["')]
                for k, c in enumerate(self.mapped):
                    parts += [pl.lit('","'), pl.col(c)] if k else [pl.col(c)]
                parts.append(pl.lit('"]'))
                texts = frame.select(pl.concat_str(parts).cast(pl.Binary)).to_series().to_list()
                return [sha(b).hexdigest()[:32] if b is not None else "" for b in texts]
        cols = [block.columns[c] for c in self.mapped]
        if not block.text_only:
            cols = [["" if v is None else v if v.__class__ is str else str(v) for v in c] for c in cols]
        if self.hl7:
            cols.append(["" if v is None else str(v) for v in block.columns["MSH-10"]])
            cols.append([str(s) for s in (block.segments or repeat(None, len(block)))])
        dumps = orjson.dumps
        if not cols:
            return [sha(b"[]").hexdigest()[:32]] * len(block)
        return [sha(dumps(t)).hexdigest()[:32] for t in zip(*cols, strict=True)]


@dataclass(slots=True)
class Prepared:
    """A block as :meth:`BlockCleaner.prepare` leaves it; :func:`assemble` makes its entries."""

    numbers: list[int]
    segments: list[int | None] | None
    hashes: list[str]
    out: dict[str, list[Any]]  # per-row outcomes of the person and row columns
    labs: list[Any] | None
    wides: list[list[Any]]
    slow: list[int]  # rows (by index) for the row cleaner, sorted
    slow_rows: list[SourceRow]
    present: Counter
    valid: Counter

    def __len__(self) -> int:
        return len(self.numbers)


def assemble(file: str, prep: Prepared) -> list[CleanRow | SourceRow]:
    """One entry per row of a prepared block, in order: its CleanRow, or the SourceRow for the row cleaner."""
    with _gc_paused():
        return _assemble(file, prep)


def _assemble(file: str, prep: Prepared) -> list[CleanRow | SourceRow]:
    n = len(prep.numbers)
    out = prep.out
    slow_rows = set(prep.slow)
    none: list[None] = [None] * n
    entries: list[Any] = [None] * n
    person_cls, row_cls = mpi.Person, CleanRow
    wide_rows: Any = zip(*prep.wides, strict=True) if prep.wides else [()] * n
    for i, number, segment, h, rid, name, born, sex, phones, pid, addr, visit, vid, dx, obs, lab, wide in zip(
        range(n),
        prep.numbers,
        prep.segments or none,
        prep.hashes,
        *(out.get(k, none) for k in (*_PERSON_KEYS, *_ROW_KEYS)),
        prep.labs if prep.labs is not None else none,
        wide_rows,
        strict=True,
    ):
        if i in slow_rows:
            continue
        if rid is not None:
            born = rid.birth_date
            if sex is None or sex.fhir == "unknown":
                sex = rid.sex
            idn = rid.number
        else:
            idn = None
        observed = visit if obs is None else obs
        found = [] if lab is None else [(lab, observed)]
        for w in wide:
            if w is not None:
                found.append((w, observed))
        entries[i] = row_cls(
            file,
            number,
            segment,
            h,
            person_cls(name, born, sex, () if phones is None else phones, idn, pid),
            addr,
            visit,
            vid,
            [] if dx is None else list(dx),
            found,
        )
    for i, row in zip(prep.slow, prep.slow_rows, strict=True):
        entries[i] = row
    return entries


def clean_source(
    src: Source,
    profile: Profile,
    file: str,
    source: str,
    report: IngestReport,
    block_rows: int = BLOCK_ROWS,
    *,
    workers: int | None = None,
) -> Iterator[list[CleanRow | SourceRow]]:
    """Blocks of entries (see :meth:`BlockCleaner.clean`); the cleaned rows' counts are added to ``report``.

    A plain CSV/TSV of at least ``PROCESS_MIN_ROWS`` rows is cleaned by ``workers`` processes (default: one
    per core, see :func:`default_workers`), block by block: this process reads the lines and builds the row
    objects of each prepared block, in order; at most ``AHEAD`` blocks per process are in flight, so memory
    stays flat however long the file. The entries are the same either way.
    """
    if workers is None:
        workers = default_workers() if src.rows_total >= PROCESS_MIN_ROWS else 1
    if workers > 1 and src.plain and src.format in ("csv", "tsv"):
        yield from _clean_in_processes(src, profile, file, source, report, min(block_rows, PROCESS_BLOCK_ROWS), workers)
        return
    cleaner = BlockCleaner(profile, file, source)
    blocks = src.blocks(cleaner.columns(), block_rows)
    while True:
        with _gc_paused():  # reading a block makes many objects too (see BlockCleaner.clean)
            block = next(blocks, None)
            if block is None:
                return
            entries, present, valid = cleaner.clean(block)
        report.present.update(present)
        report.valid.update(valid)
        yield entries


# --------------------------------------------------------------------------------------------------
# Cleaning in several processes

PROCESS_MIN_ROWS = 50_000  # smaller files: starting the processes would cost more than it saves
PROCESS_BLOCK_ROWS = 5_000
AHEAD = 2  # blocks in flight per process
_pool: Any = None
_pool_size = 0
_worker_cleaner: tuple[str, BlockCleaner, _Encoder] | None = None  # (run key, ...) in a cleaning process
ENCODER_MAX = MEMO_MAX  # outcomes a cleaning process numbers per column before it starts again (both ends)


class _Encoder:
    """In a cleaning process: the outcomes of a column (shared objects, one per distinct value) numbered as they
    first appear, so that a block goes back as numbers plus the outcomes not sent before; :class:`_Decoder`
    keeps the other end's tables. Each process has its own numbering, and the blocks of one process are read
    back in the order it made them (in the order they were submitted)."""

    def __init__(self) -> None:
        self.numbers: dict[str, dict[int, int]] = {}  # column -> id(outcome) -> number
        self.kept: dict[str, list[Any]] = {}  # column -> outcomes by number (kept alive: their ids stay theirs)

    def encode(self, name: str, values: list[Any]) -> tuple[bool, list[Any], Any]:
        """(start again, outcomes new to the other end, the values as numbers)."""
        from array import array

        numbers = self.numbers.get(name)
        restart = numbers is None or len(numbers) > ENCODER_MAX
        if restart:
            numbers = self.numbers[name] = {}
            self.kept[name] = []
        assert numbers is not None
        kept = self.kept[name]
        first = len(kept)
        ids = list(map(id, values))
        by_id = dict(zip(ids, values, strict=True))  # (outcomes need not be hashable: their ids are)
        for key in [key for key in by_id if key not in numbers]:
            numbers[key] = len(kept)
            kept.append(by_id[key])
        return restart, kept[first:], array("I", map(numbers.__getitem__, ids))


class _Decoder:
    def __init__(self) -> None:
        self.tables: dict[tuple[int, str], list[Any]] = {}  # (process, column) -> outcomes by number

    def decode(self, process: int, name: str, restart: bool, new: list[Any], numbers: Any) -> list[Any]:
        table = self.tables.get((process, name))
        if restart or table is None:
            table = self.tables[(process, name)] = []
        table.extend(new)
        return list(map(table.__getitem__, numbers))


def _encode(encoder: _Encoder, prep: Prepared) -> tuple:
    columns = {k: encoder.encode(k, v) for k, v in prep.out.items()}
    labs = None if prep.labs is None else encoder.encode("lab", prep.labs)
    wides = [encoder.encode(f"wide:{i}", w) for i, w in enumerate(prep.wides)]
    prep.out, prep.labs, prep.wides = {}, None, []
    return os.getpid(), prep, columns, labs, wides


def _decode(decoder: _Decoder, data: tuple) -> Prepared:
    process, prep, columns, labs, wides = data
    prep.out = {k: decoder.decode(process, k, *v) for k, v in columns.items()}
    prep.labs = None if labs is None else decoder.decode(process, "lab", *labs)
    prep.wides = [decoder.decode(process, f"wide:{i}", *w) for i, w in enumerate(wides)]
    return prep


def _fast_pickling(*classes: type) -> None:
    """Pickles frozen dataclasses as (class, field values): what a cleaning process sends back is mostly these,
    and the generic state of a slotted frozen dataclass costs several times more to write and to read."""
    import copyreg
    import dataclasses
    from operator import attrgetter

    for cls in classes:
        names = [f.name for f in dataclasses.fields(cls)]
        values = attrgetter(*names)
        if len(names) == 1:
            copyreg.pickle(cls, lambda obj, cls=cls, values=values: (cls, (values(obj),)))
        else:
            copyreg.pickle(cls, lambda obj, cls=cls, values=values: (cls, values(obj)))


_fast_pickling(PersonName, Sex, ResidentId, Phone, Address, Analyte, LabValue, RefRange, LabResult)


def default_workers() -> int:
    """Cleaning processes: the ``ingest_workers`` setting, else one per core available (at most 4); 1 = none."""
    configured = get_settings().ingest_workers
    if configured is not None:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def process_pool(workers: int) -> Any:
    """The cleaning processes (started once, kept for the life of this process; see :func:`warm_up`)."""
    global _pool, _pool_size
    if _pool is not None and (_pool_size != workers or getattr(_pool, "_broken", False)):
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
    if _pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: Polars' thread pool does not survive a fork
        ctx = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
        _pool_size = workers
    return _pool


@atexit.register
def _close_pool() -> None:
    """Shuts the cleaning processes down before the interpreter tears down what the pool's threads still use."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def warm_up(workers: int | None = None) -> float:
    """Starts the cleaning processes and loads their tables now (a one-time cost); returns the seconds it took."""
    import time

    workers = workers or default_workers()
    started = time.perf_counter()
    if workers > 1:
        pool = process_pool(workers)
        for f in [pool.submit(_ready, 0.2) for _ in range(workers)]:
            f.result()
    return time.perf_counter() - started


def _init_worker() -> None:
    # one thread for Polars here: the processes share the cores already (set before this process imports it)
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from xinglin.ingest.writers import die_with_parent

    die_with_parent()
    from xinglin.ingest.normalise import analytes, province_codes, to_simplified

    analytes()
    province_codes()
    to_simplified("張")


def _ready(seconds: float) -> bool:
    import time

    time.sleep(seconds)  # holds this process so that the next task starts another one
    return True


def _prepare_lines(
    key: str,
    profile: Profile,
    file: str,
    source: str,
    headers: list[str],
    delimiter: str,
    encoding: str | None,
    lines: list[str] | bytes,
    at: int,
) -> bytes | None:
    """In a cleaning process: lines of a plain CSV after line ``at`` (bytes when ``encoding`` is given) read and
    prepared; the :class:`Prepared` block pickled (read back in the main thread, not in the pool's)."""
    global _worker_cleaner
    if _worker_cleaner is None or _worker_cleaner[0] != key:
        _worker_cleaner = (key, BlockCleaner(profile, file, source), _Encoder())
    _, cleaner, encoder = _worker_cleaner
    with _gc_paused():
        if encoding is not None:
            lines = decode_lines(lines, encoding)  # type: ignore[arg-type]
        block = plain_block(lines, at, headers, delimiter, cleaner.columns())  # type: ignore[arg-type]
        if block is None:
            return None
        return pickle.dumps(_encode(encoder, cleaner.prepare(block)), protocol=pickle.HIGHEST_PROTOCOL)


def _clean_in_processes(
    src: Source, profile: Profile, file: str, source: str, report: IngestReport, size: int, workers: int
) -> Iterator[list[CleanRow | SourceRow]]:
    import uuid
    from collections import deque

    pool = process_pool(workers)
    key = uuid.uuid4().hex
    delimiter = src.delimiter or ","
    encoding: str | None = src.encoding or "utf-8"
    cut = plain_byte_chunks(src.path, encoding, delimiter, size)  # type: ignore[arg-type]
    if cut is None:  # lines decoded here
        headers, chunks = plain_line_chunks(src.path, encoding, delimiter, size)  # type: ignore[arg-type]
        encoding = None
    else:
        headers, chunks = cut  # type: ignore[assignment]
    in_flight: deque = deque()
    decoder = _Decoder()
    try:
        while True:
            with _gc_paused():
                chunk = next(chunks, None)
            if chunk is not None:
                lines, at = chunk
                in_flight.append(
                    pool.submit(_prepare_lines, key, profile, file, source, headers, delimiter, encoding, lines, at)
                )
                if len(in_flight) < workers * AHEAD:
                    continue
            if not in_flight:
                return
            data = in_flight.popleft().result()
            if data is None:
                continue
            with _gc_paused():
                prep = _decode(decoder, pickle.loads(data))
                del data
                entries = assemble(file, prep)
            report.present.update(prep.present)
            report.valid.update(prep.valid)
            yield entries
    finally:
        for f in in_flight:
            f.cancel()
        chunks.close()


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
