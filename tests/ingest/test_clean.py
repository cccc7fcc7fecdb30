"""The column-wise cleaner (what ingest runs) and the row-at-a-time one agree on every row and every count."""

from __future__ import annotations

import pytest

from tests.ingest.samples import gbk_csv, hl7_file, jsonl_file, messy_csv, xlsx_file
from xinglin.ingest.clean import CleanRow, RowCleaner, RowRejected, clean_source
from xinglin.ingest.profile import Profile, infer_profile
from xinglin.ingest.readers import SourceRow, open_source
from xinglin.ingest.report import IngestReport


def _outcome(cleaner: RowCleaner, row: SourceRow):
    try:
        return cleaner.clean(row)
    except RowRejected as exc:
        return ("rejected", row.number, row.segment, exc.column, exc.reason, exc.zh, exc.en)


def _report(r: IngestReport) -> dict:
    return {
        "present": dict(r.present),
        "valid": dict(r.valid),
        "invalid_values": {k: dict(v) for k, v in r.invalid_values.items()},
        "warnings": r.warnings,
    }


def both_paths(path, profile: Profile | None = None, block_rows: int = 20_000, workers: int | None = None):
    src = open_source(path)
    prof = profile or infer_profile(src.headers, format=src.format)
    if prof.format is None:
        prof = prof.model_copy(update={"format": src.format})
    row_report, fast_report = IngestReport(), IngestReport()
    row_cleaner = RowCleaner(prof, path.name, "src", row_report)
    by_row = [_outcome(row_cleaner, row) for row in src.rows()]
    fallback = RowCleaner(prof, path.name, "src", fast_report)
    by_block, cleaned_fast = [], 0
    for entries in clean_source(src, prof, path.name, "src", fast_report, block_rows, workers=workers):
        for entry in entries:
            if isinstance(entry, CleanRow):
                cleaned_fast += 1
                by_block.append(entry)
            else:
                by_block.append(_outcome(fallback, entry))
    return src, by_row, by_block, _report(row_report), _report(fast_report), cleaned_fast


@pytest.mark.parametrize("sample", [gbk_csv, xlsx_file, jsonl_file, hl7_file])
def test_samples_agree(tmp_path, sample):
    _, by_row, by_block, row_report, fast_report, cleaned_fast = both_paths(sample(tmp_path))
    assert by_block == by_row
    assert fast_report == row_report
    assert cleaned_fast > 0


@pytest.mark.parametrize(
    ("quoted", "block_rows", "workers"),
    [(False, 20_000, 1), (False, 97, 1), (True, 500, 1), (False, 97, 2), (True, 97, 2)],
)
def test_generated_messy_export_agrees(tmp_path, quoted, block_rows, workers):
    """workers=2: a plain file is cleaned in two other processes (a quoted one stays in this process)."""
    path = messy_csv(tmp_path, 3000, quoted=quoted)
    src, by_row, by_block, row_report, fast_report, cleaned_fast = both_paths(
        path, block_rows=block_rows, workers=workers
    )
    assert src.plain is not quoted  # quoted files are read by the csv module, still cleaned column-wise
    assert len(by_row) == src.rows_total == 3000
    assert by_block == by_row
    assert fast_report == row_report
    rejected = sum(1 for r in by_row if isinstance(r, tuple))
    assert 150 < rejected < 600 and cleaned_fast > 2000  # the mess is there, and most rows take the fast path
    assert len(fast_report["warnings"]) > 20


def test_profile_value_maps_and_date_formats_agree(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "PNAME;SEXCODE;BIRTH;VISIT\n赵一;A;05/03/1990;2024-03-05\n钱二;B;bad;05/03/2024\n孙三; A ;1990-03-05;\n",
        encoding="utf-8",
    )
    profile = Profile.from_yaml(
        """
source: clinic-c
delimiter: ";"
columns:
  PNAME: Patient.name
  SEXCODE: {element: Patient.gender, value_map: {A: 男, B: 女}}
  BIRTH: {element: Patient.birthDate, date_formats: ["%d/%m/%Y"]}
  VISIT: {element: Encounter.period.start, date_formats: ["%d/%m/%Y"]}
"""
    )
    _, by_row, by_block, row_report, fast_report, _ = both_paths(path, profile)
    assert by_block == by_row
    assert fast_report == row_report


def test_values_that_json_escapes_hash_the_same(tmp_path):
    path = tmp_path / "esc.csv"
    path.write_text("姓名,诊断\n张\t三,高血压\\高脂血症\n李四,感冒\x01\n王五,咳嗽\n", encoding="utf-8", newline="")
    src, by_row, by_block, row_report, fast_report, cleaned_fast = both_paths(path)
    assert src.plain and cleaned_fast == 3
    assert by_block == by_row and fast_report == row_report


def test_outcomes_cross_processes_as_numbers(monkeypatch):
    """A cleaning process sends each distinct outcome once, then its number; both ends start again together."""
    from xinglin.ingest import clean

    monkeypatch.setattr(clean, "ENCODER_MAX", 3)
    encoder, decoder = clean._Encoder(), clean._Decoder()
    a, b, c, d = ("a",), ("b",), ("c",), ("d",)
    sent = []
    for values in ([a, b, a, None], [b, c, None, b], [d, a, d, c], [a, a, b, d]):
        restart, new, numbers = encoder.encode("x", values)
        sent.append((restart, len(new)))
        assert decoder.decode(7, "x", restart, new, numbers) == values
    assert sent == [(True, 3), (False, 1), (True, 3), (False, 1)]
