"""FHIR CRUD benchmark: a running Xinglin server on PostgreSQL, driven by concurrent clients.

Prints one JSON object with the figures. Everything runs on this machine: the server's workers, PostgreSQL
and the load generator share its cores, so compare ratios measured in the same run (our FHIR read vs. a
bare endpoint of the same framework and server) rather than absolute numbers across machines.

    .venv/bin/python benchmarks/fhir_crud.py [--workers 2] [--clients 16] [--seconds 15] [--patients 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import Connection, Stats, run, timed

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HOST = "127.0.0.1"
FAMILY = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜欧阳司马上官"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红梅"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


def server_pids(parent_pid: int) -> list[str]:
    """The server process and its workers (its children)."""
    return [
        c.name
        for c in Path("/proc").iterdir()
        if c.name.isdigit() and (c.name == str(parent_pid) or _ppid(c.name) == str(parent_pid))
    ]


def worker_rss_mb(parent_pid: int) -> list[float]:
    out = []
    for pid in server_pids(parent_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out.append(round(int(fields.get("VmRSS", "0 kB").split()[0]) / 1024, 1))
    return out


def _stat(pid: str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); empty once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cpu_seconds(pid: str) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0  # utime + stime


class CpuMeter:
    """CPU seconds spent by the server's processes and by the benchmark database's PostgreSQL backends, so a
    phase can report CPU per request: on a shared machine that moves far less than requests per second."""

    def __init__(self, server_pid: int, pg: str, dbname: str):
        self.server_pid, self.pg, self.dbname = server_pid, pg, dbname

    def _pids(self) -> tuple[list[str], list[str]]:
        server = server_pids(self.server_pid)
        with psycopg.connect(f"{self.pg}/postgres", autocommit=True) as c:
            backends = [
                str(r[0]) for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.dbname])
            ]
        return server, backends

    def snapshot(self) -> dict[str, dict[str, float]]:
        server, backends = self._pids()
        return {"server": {p: _cpu_seconds(p) for p in server}, "db": {p: _cpu_seconds(p) for p in backends}}

    def per_request(self, before: dict, requests: int) -> dict[str, float]:
        after = self.snapshot()
        out = {}
        for part in ("server", "db"):
            spent = sum(v - before[part].get(p, 0.0) for p, v in after[part].items())
            out[f"{part}_cpu_ms_per_request"] = round(1000 * spent / max(requests, 1), 3)
        return out


def _ppid(pid: str) -> str:
    fields = _stat(pid)
    return fields[1] if fields else ""


def wrk_run(
    port: int, path: str, seconds: float, connections: int, token: str | None = None, ids: list[str] | None = None
) -> dict | None:
    """GET load from wrk (C, cheap on the shared CPU) when it is installed; None otherwise."""
    if shutil.which("wrk") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        lines = []
        if token:
            lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
        if ids:
            (Path(tmp) / "ids.txt").write_text("\n".join(ids))
            lines += [
                f'local ids = {{}}; for l in io.lines("{tmp}/ids.txt") do ids[#ids + 1] = l end',
                f'request = function() return wrk.format("GET", "{path}" .. ids[math.random(#ids)]) end',
            ]
        script.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{int(seconds)}s",
                "--latency",
                "-s",
                str(script),
                f"http://{HOST}:{port}{path if not ids else '/'}",
            ],
            capture_output=True,
            text=True,
        ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return 0.0
        return round(float(m[1]) * {"us": 0.001, "ms": 1, "s": 1000}[m[2]], 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    return {
        "tool": "wrk",
        "requests": int(done[1]) if done else 0,
        "per_second": float(rps[1]) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": int(non2xx[1]) if non2xx else 0,
    }


def patient(i: int) -> dict:
    rnd = random.Random(i)
    family = rnd.choice(["欧阳", "司马", "上官"]) if i % 17 == 0 else rnd.choice(FAMILY[:40])
    given = "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://xinglin.dev/bench/mrn", "value": f"B{i:07d}"}],
        "name": [{"text": family + given, "family": family, "given": [given]}],
        "gender": rnd.choice(["male", "female"]),
        "birthDate": f"{1940 + i % 80}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "telecom": [{"system": "phone", "value": f"139{i:08d}"}],
    }


def observation(subject: str, i: int) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "葡萄糖"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-03-05T08:00:00+08:00",
        "valueQuantity": {
            "value": 4 + (i % 50) / 10,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def encounter(subject: str) -> dict:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
        "period": {"start": "2024-03-05T08:00:00+08:00"},
    }


def condition(subject: str) -> dict:
    return {
        "resourceType": "Condition",
        "subject": {"reference": subject},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "高血压"}]},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
    }


def transaction(start: int, patients: int, observations_each: int) -> dict:
    entries = []
    for i in range(start, start + patients):
        url = f"urn:uuid:{i:08d}-0000-4000-8000-000000000000"
        entries.append({"fullUrl": url, "resource": patient(i), "request": {"method": "POST", "url": "Patient"}})
        for k in range(observations_each):
            entries.append({"resource": observation(url, i + k), "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def scenario_bare(conn: Connection, stats: Stats, deadline: float) -> None:
    while time.perf_counter() < deadline:
        await timed(conn, stats, "GET", "/bare")


def make_read(ids: list[str]):
    async def scenario(conn: Connection, stats: Stats, deadline: float) -> None:
        rnd = random.Random(id(conn))
        while time.perf_counter() < deadline:
            await timed(conn, stats, "GET", f"/fhir/R4/Patient/{rnd.choice(ids)}")

    return scenario


def make_crud(subject: str):
    builders = {
        "Patient": lambda i: patient(10_000_000 + i),
        "Encounter": lambda i: encounter(subject),
        "Observation": lambda i: observation(subject, i),
        "Condition": lambda i: condition(subject),
    }

    async def scenario(conn: Connection, stats: Stats, deadline: float) -> None:
        i = 0
        while time.perf_counter() < deadline:
            for rtype, build in builders.items():
                i += 1
                status, headers, data = await timed(conn, stats, "POST", f"/fhir/R4/{rtype}", build(i))
                if status != 201:
                    continue
                res = orjson.loads(data)
                await timed(conn, stats, "GET", f"/fhir/R4/{rtype}/{res['id']}")
                res["meta"] = {}
                res["status" if rtype != "Patient" else "active"] = (
                    True if rtype == "Patient" else ("entered-in-error" if rtype != "Condition" else None)
                )
                if rtype == "Condition":
                    res.pop("status", None)
                    res["severity"] = {"text": "中度"}
                await timed(
                    conn, stats, "PUT", f"/fhir/R4/{rtype}/{res['id']}", res, {"If-Match": headers.get("etag", "")}
                )
                await timed(conn, stats, "DELETE", f"/fhir/R4/{rtype}/{res['id']}")

    return scenario


def make_search(count: int):
    async def scenario(conn: Connection, stats: Stats, deadline: float) -> None:
        rnd = random.Random(id(conn))
        from urllib.parse import quote

        while time.perf_counter() < deadline:
            i = rnd.randrange(count)
            p = patient(i)
            if rnd.random() < 0.5:
                path = f"/fhir/R4/Patient?identifier=https://xinglin.dev/bench/mrn|B{i:07d}"
            else:
                path = f"/fhir/R4/Patient?name={quote(p['name'][0]['text'])}&_count=20"
            await timed(conn, stats, "GET", path)

    return scenario


def make_transactions(start: int, per_bundle: int, counter: list[int]):
    async def scenario(conn: Connection, stats: Stats, deadline: float) -> None:
        nonlocal start
        while time.perf_counter() < deadline:
            first = start
            start += per_bundle
            body = orjson.dumps(transaction(first, per_bundle // 4, 3))
            status, _, _ = await timed(conn, stats, "POST", "/fhir/R4", body)
            if status == 200:
                counter[0] += per_bundle

    return scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database for inspection")
    ap.add_argument("--phases", default="bare,read,crud,search,transaction", help="comma-separated phases to run")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    dbname = "xinglin_bench_" + secrets.token_hex(3)
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "XINGLIN_DATABASE_URL": f"{args.pg}/{dbname}",
        "XINGLIN_SECRET_KEY": secret,
        "XINGLIN_DB_POOL_SIZE": str(max(4, args.clients // args.workers + 2)),
    }
    xinglin = [PY, "-m", "xinglin.cli"]
    subprocess.run([*xinglin, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*xinglin, "tenant", "add", "bench", "--name", "基准测试医院"], env=env, check=True, capture_output=True
    )
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import create_engine, select

    from xinglin.security.principal import Principal
    from xinglin.security.tokens import issue_token
    from xinglin.tenancy.models import tenant

    eng = create_engine(f"postgresql+psycopg://{args.pg.split('://', 1)[1]}/{dbname}")
    with eng.connect() as c:
        tid = c.execute(select(tenant.c.id).where(tenant.c.code == "bench")).scalar_one()
    eng.dispose()
    token = issue_token(
        Principal(
            tenant_id=tid, tenant_code="bench", username="bench-client", role="integration", scopes=("system/*.*",)
        ),
        key=secret,
        ttl_seconds=7200,
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}

    port, bare_port = free_port(), free_port()
    server = subprocess.Popen(
        [*xinglin, "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)],
        env=env,
        start_new_session=True,
    )
    bare = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--host",
            HOST,
            "--port",
            str(bare_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=Path(__file__).parent,
        start_new_session=True,
    )
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "workers": args.workers,
        "clients": args.clients,
        "seconds_per_phase": args.seconds,
        "cpus": os.cpu_count(),
    }
    try:
        wait_http(port, "/fhir/R4/metadata")
        wait_http(bare_port, "/bare")

        # 1. Load the patients through transaction bundles (also the bundle throughput figure).
        loaded = [0]
        t0 = time.perf_counter()
        per_bundle = 100

        async def load_all():
            queue = list(range(0, args.patients, per_bundle // 4))

            async def loader(conn: Connection, stats: Stats, deadline: float):
                while queue:
                    first = queue.pop()
                    n = min(per_bundle // 4, args.patients - first)
                    status, _, data = await timed(
                        conn, stats, "POST", "/fhir/R4", orjson.dumps(transaction(first, n, 3))
                    )
                    if status != 200:
                        raise RuntimeError(data[:300])
                    loaded[0] += n * 4

            return await run(HOST, port, headers, 4, 1e9, loader)

        load_stats = asyncio.run(load_all())
        load_seconds = time.perf_counter() - t0
        with psycopg.connect(f"{args.pg}/{dbname}", autocommit=True) as c:
            c.execute("ANALYZE")  # as autovacuum would soon after a bulk load
        results["load"] = {
            "patients": args.patients,
            "resources": loaded[0],
            "seconds": round(load_seconds, 1),
            "resources_per_second": round(loaded[0] / load_seconds, 1),
            "bundle_p99_ms": load_stats["p99_ms"],
        }

        # patient ids for reads
        async def collect_ids():
            conn = Connection(HOST, port, headers)
            await conn.open()
            _, _, data = await conn.request("GET", f"/fhir/R4/Patient?_count=1000&_offset={args.patients // 4}")
            conn.close()
            return [e["resource"]["id"] for e in orjson.loads(data)["entry"]]

        ids = asyncio.run(collect_ids())
        subject = f"Patient/{ids[0]}"

        phases = set(args.phases.split(","))
        meter = CpuMeter(server.pid, args.pg, dbname)

        def measured(result: dict, before: dict, requests: int | None = None) -> dict:
            return result | meter.per_request(before, requests if requests is not None else result["requests"])

        if "bare" in phases:
            results["bare_endpoint"] = wrk_run(bare_port, "/bare", args.seconds, args.clients) or asyncio.run(
                run(HOST, bare_port, {}, args.clients, args.seconds, scenario_bare)
            )
        if "read" in phases:
            before = meter.snapshot()
            results["fhir_read"] = measured(
                wrk_run(port, "/fhir/R4/Patient/", args.seconds, args.clients, token, ids)
                or asyncio.run(run(HOST, port, headers, args.clients, args.seconds, make_read(ids))),
                before,
            )
        if "bare" in phases and "read" in phases:
            results["read_vs_bare"] = round(
                results["fhir_read"]["per_second"] / results["bare_endpoint"]["per_second"], 3
            )
        if "crud" in phases:
            before = meter.snapshot()
            results["crud_mix"] = measured(
                asyncio.run(run(HOST, port, headers, args.clients, args.seconds, make_crud(subject))), before
            )
        if "search" in phases:
            results["search_identifier_or_name"] = asyncio.run(
                run(HOST, port, headers, 4, args.seconds, make_search(args.patients))
            )
        if "transaction" in phases:
            counter = [0]
            before = meter.snapshot()
            tx = asyncio.run(
                run(HOST, port, headers, 4, args.seconds, make_transactions(50_000_000, per_bundle, counter))
            )
            tx = measured(tx, before, counter[0])  # CPU per resource here
            tx["resources_per_second"] = round(counter[0] / tx["seconds"], 1)
            results["transaction_bundles_100"] = tx
        results["rss_mb_per_process"] = worker_rss_mb(server.pid)
    finally:
        for proc in (server, bare):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        if args.keep:
            print(f"kept database {dbname}", file=sys.stderr)
        else:
            with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
