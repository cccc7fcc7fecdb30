"""Signed, expiring access tokens (JWT, HS256) with SMART-style scopes."""

from __future__ import annotations

import secrets
import time

import jwt

from xinglin.core.errors import NotAuthenticated
from xinglin.security.principal import Principal

ALGORITHM = "HS256"
ISSUER = "xinglin"


def issue_token(principal: Principal, *, key: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": principal.username,
        "uid": principal.user_id,
        "tid": principal.tenant_id,
        "tnt": principal.tenant_code,
        "role": principal.role,
        "scope": " ".join(principal.scopes),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": secrets.token_hex(8),
    }
    if principal.patient_id:
        claims["patient"] = principal.patient_id
    if principal.practitioner_id:
        claims["practitioner"] = principal.practitioner_id
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read_token(token: str, *, key: str) -> Principal:
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "tid"]}
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("访问令牌已过期，请重新登录", "The access token has expired; sign in again") from None
    except jwt.PyJWTError:
        raise NotAuthenticated("访问令牌无效", "The access token is not valid") from None
    return Principal(
        tenant_id=claims["tid"],
        tenant_code=claims.get("tnt", ""),
        username=claims["sub"],
        role=claims.get("role", ""),
        user_id=claims.get("uid"),
        patient_id=claims.get("patient"),
        practitioner_id=claims.get("practitioner"),
        scopes=tuple(claims.get("scope", "").split()),
    )
