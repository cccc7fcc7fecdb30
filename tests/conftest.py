"""Shared fixtures: every database test runs on SQLite and on the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from xinglin.app import create_app
from xinglin.core.config import Settings
from xinglin.security.policy import ROLE_SCOPES
from xinglin.security.principal import Principal
from xinglin.security.tokens import issue_token
from xinglin.store.db import make_engine
from xinglin.store.migrate import upgrade
from xinglin.tenancy import service as tenancy

PG_ADMIN_URL = os.environ.get("XINGLIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin():
    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


class Database:
    """A fresh, migrated database of one backend; dropped at the end."""

    def __init__(self, backend: str, tmp: Path):
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite:///{tmp / ('x' + secrets.token_hex(4) + '.db')}"
            self.name = None
        else:
            self.name = "xinglin_test_" + secrets.token_hex(5)
            with _pg_admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            base = PG_ADMIN_URL.rsplit("/", 1)[0]
            self.url = f"{base}/{self.name}".replace("postgresql://", "postgresql+psycopg://")
        self.settings = Settings(
            database_url=self.url, secret_key="test-" + secrets.token_hex(16), lockout_threshold=3, lockout_minutes=15
        )
        self.engine = make_engine(self.url)
        upgrade(self.engine, self.settings)

    def drop(self) -> None:
        self.engine.dispose()
        if self.name:
            with _pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def database(request, tmp_path_factory) -> Iterator[Database]:
    db = Database(request.param, tmp_path_factory.mktemp(request.param))
    yield db
    db.drop()


@pytest.fixture(params=BACKENDS)
def fresh_database(request, tmp_path) -> Iterator[Database]:
    """A database of its own, for tests that look at everything in it (audit chain, counts)."""
    db = Database(request.param, tmp_path)
    yield db
    db.drop()


@pytest.fixture(scope="session")
def app(database):
    return create_app(database.settings)


@pytest.fixture(scope="session")
def client(app) -> TestClient:
    return TestClient(app)


@dataclass
class Hospital:
    """A tenant of its own for one test, with a way to act as any role in it."""

    id: int
    code: str
    app: object

    def token(
        self,
        role: str,
        *,
        patient_id: str | None = None,
        username: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> str:
        principal = Principal(
            tenant_id=self.id,
            tenant_code=self.code,
            username=username or f"{role}-user",
            role=role,
            patient_id=patient_id,
            scopes=scopes or ROLE_SCOPES.get(role, ()),
        )
        return issue_token(principal, key=self.app.state.signing_key, ttl_seconds=600)

    def headers(self, role: str = "admin", **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **kw)}", "Content-Type": "application/fhir+json"}


def make_hospital(app, database, code: str | None = None) -> Hospital:
    code = code or "h-" + secrets.token_hex(5)
    with database.engine.begin() as conn:
        t = tenancy.create_tenant(conn, code, "测试医院 " + code, name_en="Test hospital " + code)
    return Hospital(t.id, t.code, app)


@pytest.fixture
def hospital(app, database) -> Hospital:
    return make_hospital(app, database)


@pytest.fixture
def other_hospital(app, database) -> Hospital:
    return make_hospital(app, database)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The app served over real HTTP, for clients such as fhirpy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def patient_body(**extra) -> dict:
    body = {
        "resourceType": "Patient",
        "name": [{"text": "欧阳娜娜", "family": "欧阳", "given": ["娜娜"]}],
        "gender": "female",
        "birthDate": "1990-05-17",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "110101199005170024"}],
        "telecom": [{"system": "phone", "value": "13912345678"}],
    }
    body.update(extra)
    return body
