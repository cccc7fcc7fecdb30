"""Ingest throughput: a generated messy GBK CSV (20,000 rows by default) into a fresh SQLite database.

    .venv/bin/python benchmarks/ingest_bench.py [--rows 20000] [--database-url URL] [--pg [SERVER_URL]]
    .venv/bin/python benchmarks/ingest_bench.py --rows 5000000 --normalise-only

Prints JSON: rows/second of reading + normalising alone -- the column-wise path spread over cleaning processes
(what ingest runs on a big plain CSV) and in this one process, alternately ``--repeat`` times, with the CPU
seconds of each (the machine is shared: the wall clock also counts other processes), and the row-at-a-time
reference path; per database, rows/second end to end (read, normalise, match, write through the repository) and
resources/second; peak resident memory (MB).
``--pg`` also runs against a scratch database created on the PostgreSQL server and dropped afterwards, twice:
as ingest does by default (chunks written by two writer processes while this one plans the next) and with
everything in this process (``postgresql_one_process``).
``--normalise-only`` skips the databases and measures reading + normalising in a child process of its own, so
its peak resident memory is that of streaming the file (checking it, then cleaning it block by block); the
generated file goes to the temporary folder (``/tmp``) and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars  # noqa: F401  (imported up front: a library's import is not throughput)

from xinglin.core.config import Settings
from xinglin.ingest.clean import PROCESS_MIN_ROWS, RowCleaner, RowRejected, clean_source, default_workers, warm_up
from xinglin.ingest.normalise import id_check_char
from xinglin.ingest.profile import infer_profile
from xinglin.ingest.readers import SourceRow, open_source
from xinglin.ingest.report import IngestReport
from xinglin.ingest.service import CHUNK_ROWS, ingest, writer_processes
from xinglin.store.db import make_engine
from xinglin.store.migrate import upgrade
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅"
LABS = [
    ("GLU", "mg/dL", 70, 140, "70-110"),
    ("血糖", "mmol/L", 3.5, 9.0, "3.9～6.1"),
    ("肌酐", "umol/L", 50, 130, "44-133"),
    ("TC", "mmol/L", 3.0, 7.0, "<5.2"),
    ("ALT", "U/L", 5, 80, "9-50"),
    ("HGB", "g/L", 100, 170, "115-150"),
    ("WBC", "10^9/L", 3.0, 12.0, "3.5-9.5"),
    ("钾", "mmol/L", 3.0, 5.8, "3.5-5.3"),
]
# CPU seconds (all threads of the process) of the last normalising run: on a shared machine wall-clock time
# also counts the time other processes hold the cores
LAST_CPU_SECONDS = [0.0]
WARM_UP_SECONDS = [0.0]  # starting the cleaning processes of the last normalising run (outside its timing)
WORKERS_CPU_SECONDS = [0.0]  # ... and the CPU seconds of its cleaning processes
DATES = ["{y}年{m}月{d}日", "{y}/{m}/{d}", "{y}{m:02d}{d:02d}", "{y}.{m}.{d}", "{y}-{m:02d}-{d:02d}"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Written in batches: memory stays small however many rows."""
    rnd = random.Random(seed)
    people = []
    for i in range(max(1, min(rows // 4, 250_000))):  # about four lab rows per person (at most 250,000 people)
        y, m, d = rnd.randint(1940, 2010), rnd.randint(1, 12), rnd.randint(1, 28)
        first17 = f"{rnd.choice(['110101', '440305', '320102', '330106'])}{y}{m:02d}{d:02d}{i % 1000:03d}"
        idn = first17 + id_check_char(first17) if rnd.random() < 0.7 else ""
        sex = ("男" if int(first17[16]) % 2 else "女") if idn else rnd.choice(["男", "女", "M", "F", "1", "2"])
        name = rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.randint(1, 2)))
        phone = f"1{rnd.randint(3, 9)}{rnd.randint(0, 999999999):09d}"
        people.append((name, sex, rnd.choice(DATES).format(y=y, m=m, d=d), idn, phone))
    with path.open("wb") as fh:
        lines = ["姓名,性别,出生日期,身份证号,联系电话,就诊日期,诊断,检验项目,结果,单位,参考范围"]
        for n in range(rows):
            name, sex, born, idn, phone = people[n // 4 % len(people)]
            item, unit, lo, hi, ref = rnd.choice(LABS)
            visit = rnd.choice(DATES).format(y=2024, m=rnd.randint(1, 12), d=rnd.randint(1, 28))
            dx = rnd.choice(["", "", "高血压", "2型糖尿病", "高血压；高脂血症"])
            result = f"{rnd.uniform(lo, hi):.1f}"
            lines.append(f"{name},{sex},{born},{idn},{phone},{visit},{dx},{item},{result},{unit},{ref}")
            if len(lines) >= 100_000:
                fh.write(("\r\n".join(lines) + "\r\n").encode("gb18030"))
                lines = []
        if lines:
            fh.write(("\r\n".join(lines) + "\r\n").encode("gb18030"))


def load_tables() -> None:
    """One-time loads both paths need (the analyte table, the region table, OpenCC's dictionaries): not throughput."""
    from xinglin.ingest.normalise import analytes, province_codes, to_simplified

    analytes()
    province_codes()
    to_simplified("張")


def normalise_only(path: Path, *, row_path: bool = False, workers: int | None = None) -> tuple[int, float]:
    """Reading + normalising every row (the file check of open_source excluded, as before); rows and seconds.

    The column-wise path is what ``ingest`` runs: rows it cannot clean itself go to the row cleaner here too.
    ``row_path`` runs the row-at-a-time reference cleaner on every row instead. ``workers``: cleaning processes
    (1: all in this process; None: as ``ingest`` decides, one per core for a big plain CSV). Starting them is a
    one-time cost like loading the tables (see ``warm_up``), outside the timing.
    """
    src = open_source(path)
    load_tables()
    if not row_path:
        return normalise_only_source(src, path, workers)
    prof = infer_profile(src.headers, format=src.format)
    cleaner = RowCleaner(prof, path.name, "bench", IngestReport())
    started = time.perf_counter()
    cpu_started = time.process_time()
    n = 0
    for row in src.rows():
        n += 1
        with contextlib.suppress(RowRejected):
            cleaner.clean(row)
    LAST_CPU_SECONDS[0] = time.process_time() - cpu_started
    return n, time.perf_counter() - started


def stream_file(path: Path, workers: int | None = None) -> dict:
    """Checks and normalises a file as ``ingest`` streams it; run in a process of its own for its peak RSS."""
    started = time.perf_counter()
    src = open_source(path)
    checked = time.perf_counter() - started
    load_tables()
    n, seconds = normalise_only_source(src, path, workers)
    return {
        "rows": n,
        "workers": workers or default_workers(),
        "check_seconds": round(checked, 1),
        "normalise_seconds": round(seconds, 1),
        "normalise_rows_per_second": round(n / seconds, 1),
        "normalise_rows_per_cpu_second": round(n / LAST_CPU_SECONDS[0], 1),
        "peak_rss_mb": peak_rss_mb(),
        "workers_peak_rss_mb": workers_peak_rss_mb(),
    }


def workers_peak_rss_mb() -> list[float]:
    """Peak resident memory of each cleaning process (Linux: /proc)."""
    from xinglin.ingest import clean

    out = []
    for pid in list(getattr(clean._pool, "_processes", None) or {}):
        with contextlib.suppress(OSError, StopIteration):
            line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
            out.append(round(int(line.split()[1]) / 1024, 1))
    return out


def normalise_only_source(src, path: Path, workers: int | None = None) -> tuple[int, float]:
    prof = infer_profile(src.headers, format=src.format)
    report = IngestReport()
    cleaner = RowCleaner(prof, path.name, "bench", report)
    if workers is None:
        workers = default_workers() if src.rows_total >= PROCESS_MIN_ROWS else 1
    WARM_UP_SECONDS[0] = warm_up(workers)
    started = time.perf_counter()
    cpu_started = time.process_time()
    workers_started = workers_cpu_seconds() if workers > 1 else 0.0
    n = 0
    for entries in clean_source(src, prof, path.name, "bench", report, workers=workers):
        n += len(entries)
        for entry in entries:
            if entry.__class__ is SourceRow:
                with contextlib.suppress(RowRejected):
                    cleaner.clean(entry)  # type: ignore[arg-type]
    LAST_CPU_SECONDS[0] = time.process_time() - cpu_started
    WORKERS_CPU_SECONDS[0] = workers_cpu_seconds() - workers_started if workers > 1 else 0.0
    return n, time.perf_counter() - started


def workers_cpu_seconds() -> float:
    """CPU seconds the cleaning processes have used so far (Linux: /proc)."""
    from xinglin.ingest import clean

    total = 0.0
    for pid in list(getattr(clean._pool, "_processes", None) or {}):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def end_to_end(url: str, data: Path, writers: int | None = None) -> dict:
    """One ingest into a fresh tenant; ``writers`` as :func:`ingest` takes it (None: its default, 0: in-process)."""
    settings = Settings(database_url=url, secret_key="bench-" + secrets.token_hex(16))
    engine = make_engine(url)
    try:
        upgrade(engine, settings)
        code = "bench-" + secrets.token_hex(3)
        with engine.begin() as conn:
            tenancy.create_tenant(conn, code, "基准医院")
        started = time.perf_counter()
        cpu = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        store = Store(engine, settings)
        processes = writer_processes(store, writers, sum(1 for _ in data.open("rb")) - 1, CHUNK_ROWS, False)
        report = ingest(store, code, [data], source_name="bench", writers=writers)
        seconds = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # (the writers, once they have exited)
        cpu_main = time.process_time() - cpu[0]
        cpu_writers = children.ru_utime + children.ru_stime - cpu[1].ru_utime - cpu[1].ru_stime
    finally:
        engine.dispose()
    return {
        "rows": report.rows_read,
        "seconds": round(seconds, 2),
        "rows_per_second": round(report.rows_read / seconds, 1),
        "resources_written": report.resources_written,
        "resources_per_second": round(report.resources_written / seconds, 1),
        "patients_created": report.patients_created,
        "rows_rejected": report.rows_rejected,
        "reviews_created": report.reviews_created,
        "writer_processes": processes,
        "cpu_seconds_main": round(cpu_main, 1),
        "cpu_seconds_writers": round(cpu_writers, 1),
    }


@contextlib.contextmanager
def scratch_postgres(server: str):
    """A fresh database on the server (dropped afterwards)."""
    from sqlalchemy import create_engine, text

    name = "xl_ingest_bench_" + secrets.token_hex(4)
    admin = create_engine(server.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temporary folder")
    ap.add_argument(
        "--pg",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        default=None,
        help="also ingest into a scratch PostgreSQL database on this server (created and dropped)",
    )
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the normalising A/B (best of each is reported)")
    ap.add_argument("--no-e2e", action="store_true", help="normalising only (the A/B), no database")
    ap.add_argument("--normalise-only", action="store_true", help="reading + normalising only, with its peak RSS")
    ap.add_argument("--stream-file", type=Path, default=None, help=argparse.SUPPRESS)  # the child of --normalise-only
    args = ap.parse_args()
    if args.stream_file:
        print(json.dumps(stream_file(args.stream_file)))
        return
    out: dict = {"benchmark": "ingest_csv", "rows": args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        data = tmpdir / "export.csv"
        started = time.perf_counter()
        generate(data, args.rows)
        if args.normalise_only:
            out["file_mb"] = round(data.stat().st_size / 1e6, 1)
            out["generate_seconds"] = round(time.perf_counter() - started, 1)
            child = subprocess.run(
                [sys.executable, __file__, "--stream-file", str(data)], capture_output=True, text=True, check=True
            )
            out["streaming"] = json.loads(child.stdout)
            print(json.dumps(out))
            return
        # the same file through each path, alternately (the machine is shared: its load drifts)
        workers = max(2, default_workers())
        one, many, cpu_one, cpu_many = [], [], [], []
        for _ in range(args.repeat):
            one.append(normalise_only(data, workers=1))
            cpu_one.append(LAST_CPU_SECONDS[0])
            many.append(normalise_only(data, workers=workers))
            cpu_many.append((LAST_CPU_SECONDS[0], WORKERS_CPU_SECONDS[0]))
        warm = WARM_UP_SECONDS[0]
        n_one, t_one = min(one, key=lambda r: r[1])
        n_norm, t_norm = min(many, key=lambda r: r[1])
        n_row, t_row = normalise_only(data, row_path=True)
        out["normalise_workers"] = workers
        out["normalise_rows_per_second"] = round(n_norm / t_norm, 1)
        out["normalise_one_process_rows_per_second"] = round(n_one / t_one, 1)
        out["normalise_speedup"] = round(t_one / t_norm, 2)
        out["normalise_rounds"] = [[round(n_one / a[1]), round(n_norm / b[1])] for a, b in zip(one, many, strict=True)]
        out["normalise_warm_up_seconds"] = round(warm, 2)
        # CPU per row, which the load of other processes on a shared machine changes less than the wall clock:
        # in one process; and with cleaning processes, in this one (the critical path when the cores are free)
        # and in all of them together
        out["normalise_one_process_rows_per_cpu_second"] = round(n_one / min(cpu_one), 1)
        out["normalise_main_rows_per_cpu_second"] = round(n_norm / min(c for c, _ in cpu_many), 1)
        out["normalise_all_rows_per_cpu_second"] = round(n_norm / min(c + w for c, w in cpu_many), 1)
        out["normalise_row_path_rows_per_second"] = round(n_row / t_row, 1)
        out["normalise_row_path_rows_per_cpu_second"] = round(n_row / LAST_CPU_SECONDS[0], 1)
        if args.no_e2e:
            pass
        elif args.database_url:
            out[args.database_url.split(":", 1)[0].split("+")[0]] = end_to_end(args.database_url, data)
        elif not args.no_sqlite:
            out["sqlite"] = end_to_end(f"sqlite:///{tmpdir / 'bench.db'}", data)
        if args.pg and not args.no_e2e:
            # the default (writer processes) and everything in this process, in the same run
            with scratch_postgres(args.pg) as url:
                out["postgresql"] = end_to_end(url, data)
            with scratch_postgres(args.pg) as url:
                out["postgresql_one_process"] = end_to_end(url, data, writers=0)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
