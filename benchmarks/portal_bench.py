"""Portal benchmark: page latency for a signed-in patient and booking throughput, on the demo hospital.

Loads the demo hospital (500 patients) into a fresh database (SQLite by default, as `make demo` does;
`--pg` for PostgreSQL), serves it with `xinglin serve`, and prints JSON figures:
- per-page latency (p50/p95) of the patient's portal pages, 4 concurrent clients;
- bookings per second over the demo's free slots (16 clients, FHIR `POST Appointment`), with 10 % of the
  attempts aimed at slots already taken, and a check that no slot holds more than one appointment.

    .venv/bin/python benchmarks/portal_bench.py [--seconds 10] [--workers 2] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from fhir_crud import HOST, free_port, wait_http
from loadgen import Connection, Stats, run, timed

PAGES = ["/", "/records", "/appointments", "/book", "/book?dept=03.04", "/triage", "/profile", "/consents", "/followup"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    if args.pg:
        import psycopg

        dbname = "xinglin_portal_bench_" + secrets.token_hex(3)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{dbname}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
    else:
        url = f"sqlite:///{tmp / 'demo.db'}"
    env = {**os.environ, "XINGLIN_DATABASE_URL": url, "XINGLIN_SECRET_KEY": secrets.token_urlsafe(32)}
    xinglin = [sys.executable, "-m", "xinglin.cli"]
    subprocess.run([*xinglin, "db", "upgrade"], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run([*xinglin, "demo-data", "--tenant", "demo"], env=env, check=True, capture_output=True)
    load_seconds = time.perf_counter() - t0
    port = free_port()
    server = subprocess.Popen(
        [*xinglin, "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)],
        env=env,
        start_new_session=True,
    )
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "database": "postgresql" if args.pg else "sqlite",
        "workers": args.workers,
        "demo_load_seconds": round(load_seconds, 1),
    }
    try:
        wait_http(port, "/healthz")
        results.update(asyncio.run(measure(port, args.seconds)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if args.pg:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


async def token(port: int, username: str, password: str) -> str:
    conn = Connection(HOST, port, {"Content-Type": "application/x-www-form-urlencoded"})
    await conn.open()
    body = f"grant_type=password&tenant=demo&username={username}&password={password.replace('#', '%23')}"
    status, _, data = await conn.request("POST", "/auth/token", body.encode())
    conn.close()
    if status != 200:
        raise RuntimeError(data[:200])
    return orjson.loads(data)["access_token"]


async def fetch_all(conn: Connection, path: str) -> list[dict]:
    out, offset = [], 0
    while True:
        _, _, data = await conn.request("GET", f"{path}&_count=1000&_offset={offset}")
        entries = orjson.loads(data).get("entry", [])
        out += [e["resource"] for e in entries]
        if len(entries) < 1000:
            return out
        offset += 1000


async def measure(port: int, seconds: float) -> dict:
    patient_token = await token(port, "patient", "Patient#2026")
    registrar_token = await token(port, "registrar", "Regist#2026")
    cookie = {"Cookie": f"xl_session={patient_token}"}
    per_page: dict[str, Stats] = {p: Stats() for p in PAGES}

    async def browse(conn: Connection, stats: Stats, deadline: float) -> None:
        i = random.randrange(len(PAGES))
        while time.perf_counter() < deadline:
            page = PAGES[i % len(PAGES)]
            t = time.perf_counter()
            status, _, _ = await conn.request("GET", page)
            elapsed = time.perf_counter() - t
            stats.add(elapsed, status, status == 200)
            per_page[page].add(elapsed, status, status == 200)
            i += 1

    overall = await run(HOST, port, cookie, 4, seconds, browse)
    pages = {
        p: {k: s.summary(seconds)[k] for k in ("requests", "p50_ms", "p95_ms", "errors")} for p, s in per_page.items()
    }

    staff = {"Authorization": f"Bearer {registrar_token}", "Content-Type": "application/fhir+json"}
    conn = Connection(HOST, port, staff)
    await conn.open()
    slots = [s["id"] for s in await fetch_all(conn, "/fhir/R4/Slot?status=free")]
    patients = [p["id"] for p in await fetch_all(conn, "/fhir/R4/Patient?_sort=_id")]
    conn.close()
    random.Random(1).shuffle(slots)
    queue = list(slots)
    taken: list[str] = []
    outcome = {"booked": 0, "conflicts": 0, "other": 0}

    async def book(conn: Connection, stats: Stats, deadline: float) -> None:
        rnd = random.Random(id(conn))
        while time.perf_counter() < deadline and queue:
            contested = taken and rnd.random() < 0.1
            slot = rnd.choice(taken) if contested else queue.pop()
            body = {
                "resourceType": "Appointment",
                "status": "booked",
                "slot": [{"reference": f"Slot/{slot}"}],
                "participant": [{"actor": {"reference": f"Patient/{rnd.choice(patients)}"}, "status": "accepted"}],
            }
            status, _, _ = await timed(conn, stats, "POST", "/fhir/R4/Appointment", body, ok=(201, 409))
            if status == 201:
                outcome["booked"] += 1
                taken.append(slot)
            elif status == 409:
                outcome["conflicts"] += 1
            else:
                outcome["other"] += 1

    booking = await run(HOST, port, staff, 16, seconds, book)
    # No slot may hold two appointments: count holding appointments per slot.
    conn = Connection(HOST, port, staff)
    await conn.open()
    appointments = await fetch_all(conn, "/fhir/R4/Appointment?status=booked")
    conn.close()
    per_slot: dict[str, int] = {}
    for a in appointments:
        for ref in a.get("slot", []):
            per_slot[ref["reference"]] = per_slot.get(ref["reference"], 0) + 1
    return {
        "pages_overall": overall,
        "pages": pages,
        "booking": {
            **booking,
            "bookings_per_second": round(outcome["booked"] / booking["seconds"], 1),
            **outcome,
            "free_slots_at_start": len(slots),
            "slots_double_booked": sum(1 for n in per_slot.values() if n > 1),
        },
    }


if __name__ == "__main__":
    main()
