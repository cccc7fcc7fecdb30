"""Killed with SIGKILL mid-file, ``xinglin ingest`` run again loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import text

from tests.ingest.samples import messy_csv
from xinglin.ingest.service import ingest
from xinglin.security.principal import system_principal
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy

ROWS = 2400
CHUNK = 100
EXPECTED = {"Condition": 2270, "Encounter": 2217, "Observation": 2213, "Patient": 422, "Task": 15}


def _counts(database, tenant_id: int) -> Counter:
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT resource_type, count(*) FROM resource WHERE tenant_id = :t AND NOT deleted GROUP BY 1"),
            {"t": tenant_id},
        ).all()
    return Counter({rtype: n for rtype, n in rows})


def _ingest_cli(database, path, code: str, tmp_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "XINGLIN_DATABASE_URL": database.url,
        "XINGLIN_SECRET_KEY": database.settings.secret_key,
        "XINGLIN_CODESET_DIR": str(tmp_path / "no-code-sets"),  # diagnoses stay text: no model to load
    }
    cmd = [sys.executable, "-c", "from xinglin.cli import main; main()", "ingest", str(path), "--tenant", code]
    return subprocess.Popen(
        [*cmd, "--chunk-rows", str(CHUNK)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _identifiers(database, tenant, rtype: str) -> list[tuple[str, str]]:
    store = Store(database.engine, database.settings)
    with store.unit_of_work(system_principal(tenant.id, tenant.code)) as repo:
        return [
            (i.get("system", ""), i.get("value", ""))
            for m in repo.search_all(rtype, [])
            for i in m.as_dict().get("identifier", [])
        ]


@pytest.mark.slow
def test_kill_9_mid_file_then_resume(fresh_database, tmp_path):
    db = fresh_database
    path = messy_csv(tmp_path, ROWS, seed=5, people=400)
    with db.engine.begin() as conn:
        reference = tenancy.create_tenant(conn, "ref-" + secrets.token_hex(3), "参照医院")
        tenant = tenancy.create_tenant(conn, "kill-" + secrets.token_hex(3), "测试医院")
    store = Store(db.engine, db.settings)
    # what an uninterrupted run writes (a dry run writes nothing but counts the same)
    dry = ingest(store, reference.code, [path], dry_run=True, chunk_rows=CHUNK, coder=lambda _text: [])
    expected = dict(dry.resources_by_type)
    assert expected == EXPECTED
    assert (dry.rows_read, dry.rows_rejected) == (ROWS, 156)

    proc = _ingest_cli(db, path, tenant.code, tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if _counts(db, tenant.id)["Observation"] >= expected["Observation"] // 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed: make the file bigger"
    partial = _counts(db, tenant.id)
    assert 0 < partial["Observation"] < expected["Observation"]

    again = _ingest_cli(db, path, tenant.code, tmp_path)
    _out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert _counts(db, tenant.id) == Counter(expected)
    for rtype in ("Patient", "Encounter", "Observation", "Condition"):
        idents = _identifiers(db, tenant, rtype)
        assert len(idents) == len(set(idents)), f"duplicate {rtype} identifiers"

    # and a third run writes nothing
    third = ingest(store, tenant.code, [path], chunk_rows=CHUNK, coder=lambda _text: [])
    assert third.resources_written == 0 and third.patients_created == 0
    assert _counts(db, tenant.id) == Counter(expected)
