"""Signing in: password and client-credentials grants, lockout, expiry, tenant separation."""

import time

import jwt
import pytest

from tests.conftest import patient_body
from xinglin.security.principal import Principal
from xinglin.security.tokens import issue_token
from xinglin.tenancy import service as tenancy

FHIR = "/fhir/R4"


@pytest.fixture
def staff(database, hospital):
    with database.engine.begin() as conn:
        tenancy.create_user(conn, hospital.code, "dr.wang", "Correct#Horse1", "physician", display_name="王医生")
        tenancy.create_user(conn, hospital.code, "lis-feed", "Client#Secret1", "integration", scopes="system/*.read")
    return hospital


def _token(client, **form):
    return client.post("/auth/token", data=form)


def test_password_grant_returns_a_working_token(client, staff, app):
    r = _token(client, grant_type="password", username="dr.wang", password="Correct#Horse1", tenant=staff.code)
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], app.state.signing_key, algorithms=["HS256"], issuer="xinglin")
    assert claims["role"] == "physician"
    assert claims["scope"] == "user/*.*"
    assert claims["tnt"] == staff.code
    assert claims["exp"] - claims["iat"] == 3600
    h = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).status_code == 201


def test_wrong_password_wrong_user_and_wrong_tenant_look_the_same(client, staff, other_hospital):
    for form in (
        {"username": "dr.wang", "password": "nope-nope", "tenant": staff.code},
        {"username": "nobody", "password": "Correct#Horse1", "tenant": staff.code},
        {"username": "dr.wang", "password": "Correct#Horse1", "tenant": other_hospital.code},
        {"username": "dr.wang", "password": "Correct#Horse1", "tenant": "no-such-tenant"},
    ):
        r = _token(client, grant_type="password", **form)
        assert r.status_code == 401, form
        assert r.json()["issue"][0]["diagnostics"] == "Wrong username or password"


def test_lockout_after_repeated_failures(client, staff):
    for _ in range(3):  # the test settings lock after 3
        assert (
            _token(
                client, grant_type="password", username="dr.wang", password="bad-pass", tenant=staff.code
            ).status_code
            == 401
        )
    locked = _token(client, grant_type="password", username="dr.wang", password="Correct#Horse1", tenant=staff.code)
    assert locked.status_code == 401
    assert locked.json()["issue"][0]["diagnostics"].startswith("Too many failed sign-ins; the account is locked for")
    assert "账户已锁定" in locked.json()["issue"][0]["details"]["text"]


def test_success_resets_the_failure_count(client, staff):
    for _ in range(2):
        _token(client, grant_type="password", username="dr.wang", password="bad-pass", tenant=staff.code)
    ok = _token(client, grant_type="password", username="dr.wang", password="Correct#Horse1", tenant=staff.code)
    assert ok.status_code == 200
    for _ in range(2):
        _token(client, grant_type="password", username="dr.wang", password="bad-pass", tenant=staff.code)
    assert (
        _token(
            client, grant_type="password", username="dr.wang", password="Correct#Horse1", tenant=staff.code
        ).status_code
        == 200
    )


def test_client_credentials(client, staff):
    r = _token(
        client, grant_type="client_credentials", client_id="lis-feed", client_secret="Client#Secret1", tenant=staff.code
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "system/*.read"
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get(f"{FHIR}/Patient", headers=h).status_code == 200
    assert client.post(f"{FHIR}/Patient", json=patient_body(), headers=h).status_code == 403
    # basic auth works too; people cannot use the client grant, clients cannot use the password grant
    basic = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "tenant": staff.code},
        auth=("lis-feed", "Client#Secret1"),
    )
    assert basic.status_code == 200
    assert (
        _token(
            client,
            grant_type="client_credentials",
            client_id="dr.wang",
            client_secret="Correct#Horse1",
            tenant=staff.code,
        ).status_code
        == 401
    )
    assert (
        _token(
            client, grant_type="password", username="lis-feed", password="Client#Secret1", tenant=staff.code
        ).status_code
        == 401
    )


def test_bad_grant_requests(client, staff):
    r = _token(client, grant_type="magic", tenant=staff.code)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["grant_type"]
    r = _token(client, grant_type="password", tenant=staff.code, username="dr.wang")
    assert r.status_code == 400
    r = client.post("/auth/token", data={})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["grant_type"]


def test_expired_token_is_401(client, app, hospital):
    principal = Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="x", role="admin", scopes=("user/*.*",)
    )
    token = issue_token(principal, key=app.state.signing_key, ttl_seconds=-10)
    r = client.get(f"{FHIR}/Patient", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["issue"][0]["diagnostics"] == "The access token has expired; sign in again"


def test_a_token_that_worked_stops_working_when_it_expires(client, app, hospital, monkeypatch):
    from xinglin.security import tokens

    principal = Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="x", role="admin", scopes=("user/*.*",)
    )
    token = issue_token(principal, key=app.state.signing_key, ttl_seconds=60)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{FHIR}/Patient", headers=headers).status_code == 200
    assert client.get(f"{FHIR}/Patient", headers=headers).status_code == 200  # verified once, then remembered
    later = tokens.time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    r = client.get(f"{FHIR}/Patient", headers=headers)
    assert r.status_code == 401
    assert r.json()["issue"][0]["diagnostics"] == "The access token has expired; sign in again"


def test_token_signed_with_another_key_is_401(client, hospital):
    principal = Principal(
        tenant_id=hospital.id, tenant_code=hospital.code, username="x", role="admin", scopes=("user/*.*",)
    )
    token = issue_token(principal, key="not-the-server-key-but-long-enough-for-hs256", ttl_seconds=600)
    assert client.get(f"{FHIR}/Patient", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_user_validation(database, hospital):
    from xinglin.core.errors import BadRequest, Conflict

    with database.engine.begin() as conn:
        with pytest.raises(BadRequest) as e:
            tenancy.create_user(conn, hospital.code, "p1", "long-enough-1", "patient")
        assert e.value.element == "patient_id"
        with pytest.raises(BadRequest) as e:
            tenancy.create_user(conn, hospital.code, "x1", "short", "nurse")
        assert e.value.element == "password"
        with pytest.raises(BadRequest) as e:
            tenancy.create_user(conn, hospital.code, "x1", "long-enough-1", "wizard")
        assert e.value.element == "role"
        tenancy.create_user(conn, hospital.code, "x1", "long-enough-1", "nurse")
        with pytest.raises(Conflict):
            tenancy.create_user(conn, hospital.code, "x1", "long-enough-1", "nurse")


def test_passwords_are_argon2_hashed(database, hospital):
    from sqlalchemy import select

    from xinglin.tenancy.models import user_account

    with database.engine.begin() as conn:
        tenancy.create_user(conn, hospital.code, "hashcheck", "Plain#Text99", "nurse")
        stored = conn.execute(
            select(user_account.c.password_hash).where(user_account.c.username == "hashcheck")
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "Plain#Text99" not in stored
    time.sleep(0)


def test_a_disabled_accounts_tokens_stop_working(client, staff, monkeypatch):
    from xinglin.api import deps

    r = _token(client, grant_type="password", username="dr.wang", password="Correct#Horse1", tenant=staff.code)
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get(f"{FHIR}/Patient", headers=h).status_code == 200
    with staff.app.state.store.engine.begin() as conn:
        tenancy.set_user_active(conn, staff.code, "dr.wang", False, actor="cli")
    # each worker remembers an account's state for ACCOUNT_RECHECK_SECONDS; here that time has passed
    monkeypatch.setattr(deps, "ACCOUNT_RECHECK_SECONDS", 0.0)
    refused = client.get(f"{FHIR}/Patient", headers=h)
    assert refused.status_code == 401
    assert refused.json()["issue"][0]["diagnostics"] == "This account has been disabled"
    with staff.app.state.store.engine.begin() as conn:
        tenancy.set_user_active(conn, staff.code, "dr.wang", True, actor="cli")
    assert client.get(f"{FHIR}/Patient", headers=h).status_code == 200
