"""POST /auth/token: OAuth2 password and client-credentials grants."""

from __future__ import annotations

import base64

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from xinglin.api.deps import SettingsDep, StoreDep, client_address
from xinglin.core.errors import BadRequest
from xinglin.security.tokens import issue_token
from xinglin.tenancy import service as tenancy

router = APIRouter(tags=["auth"])


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None, None
    return user, secret


@router.post("/auth/token")
def token(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    grant_type: str = Form(...),
    tenant: str = Form(""),
    username: str | None = Form(None),
    password: str | None = Form(None),
    client_id: str | None = Form(None),
    client_secret: str | None = Form(None),
    scope: str | None = Form(None),
) -> Response:
    tenant = tenant or settings.default_tenant
    if grant_type == "password":
        if not username or not password:
            raise BadRequest(
                "password 授权需要 username 和 password",
                "The password grant needs username and password",
                element="username",
            )
        principal = tenancy.authenticate(
            store.engine, settings, tenant, username, password, client_address=client_address(request)
        )
    elif grant_type == "client_credentials":
        basic_id, basic_secret = _basic_credentials(request)
        cid, secret = client_id or basic_id, client_secret or basic_secret
        if not cid or not secret:
            raise BadRequest(
                "client_credentials 授权需要 client_id 和 client_secret",
                "The client_credentials grant needs client_id and client_secret",
                element="client_id",
            )
        principal = tenancy.authenticate(
            store.engine,
            settings,
            tenant,
            cid,
            secret,
            client_address=client_address(request),
            clients_only=True,
        )
    else:
        raise BadRequest(
            f"不支持的 grant_type：{grant_type}",
            f"Unsupported grant_type '{grant_type}'",
            element="grant_type",
        )
    access = issue_token(principal, key=request.app.state.signing_key, ttl_seconds=settings.token_ttl_seconds)
    body = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": settings.token_ttl_seconds,
        "scope": " ".join(principal.scopes),
        "role": principal.role,
    }
    if principal.patient_id:
        body["patient"] = principal.patient_id
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
