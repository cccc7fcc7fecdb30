"""The `xinglin` command, run as a user would run it."""

import os
import subprocess
import sys

import pytest

from tests.conftest import Database


def run(db: Database, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XINGLIN_DATABASE_URL": db.url}
    return subprocess.run(
        [sys.executable, "-m", "xinglin.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_upgrade_is_idempotent_and_tenant_user_commands(fresh_database):
    db = fresh_database
    assert run(db, "db", "upgrade").returncode == 0
    assert run(db, "db", "upgrade").returncode == 0
    r = run(db, "tenant", "add", "ruijin", "--name", "瑞金测试医院", "--name-en", "Ruijin Test Hospital")
    assert r.returncode == 0, r.stderr
    assert "tenant created: ruijin (瑞金测试医院)" in r.stdout
    again = run(db, "tenant", "add", "ruijin", "--name", "瑞金测试医院")
    assert again.returncode == 2
    assert "Tenant ruijin already exists" in again.stderr
    r = run(
        db, "user", "add", "--tenant", "ruijin", "--username", "admin", "--password", "Admin#12345", "--role", "admin"
    )
    assert r.returncode == 0, r.stderr
    bad = run(
        db, "user", "add", "--tenant", "ruijin", "--username", "pat1", "--password", "Admin#12345", "--role", "patient"
    )
    assert bad.returncode == 2
    assert "A patient user must be linked to a Patient" in bad.stderr
    assert "(field: patient_id)" in bad.stderr
    listed = run(db, "tenant", "list")
    assert "ruijin\t瑞金测试医院\tRuijin Test Hospital\tzh-CN\tAsia/Shanghai" in listed.stdout
    assert run(db, "audit", "verify").returncode == 0


@pytest.mark.parametrize("code", ["A", "有中文", "bad code"])
def test_bad_tenant_codes(fresh_database, code):
    r = run(fresh_database, "tenant", "add", code, "--name", "x")
    assert r.returncode == 2
    assert "Tenant code must be 2-64 lower-case letters, digits or hyphens" in r.stderr
