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


# Verified tokens, so that a client's every request does not redo the HMAC and JSON decoding. The key is part
# of the cache key (a new signing key invalidates everything) and expiry is checked on every hit.
_VERIFIED: dict[tuple[str, str], tuple[Principal, int]] = {}
_VERIFIED_MAX = 10_000


def read_token(token: str, *, key: str) -> Principal:
    cached = _VERIFIED.get((key, token))
    if cached is not None:
        principal, expires = cached
        if time.time() < expires:
            return principal
        _VERIFIED.pop((key, token), None)
        raise _expired()
    principal, expires = _verify(token, key)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(key, token)] = (principal, expires)
    return principal


def _expired() -> NotAuthenticated:
    return NotAuthenticated("访问令牌已过期，请重新登录", "The access token has expired; sign in again")


def _verify(token: str, key: str) -> tuple[Principal, int]:
    try:
        # Expiry is checked below against the same clock as the cache's, not by PyJWT.
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "tid"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        raise NotAuthenticated("访问令牌无效", "The access token is not valid") from None
    if not isinstance(claims["exp"], int) or claims["exp"] <= time.time():
        raise _expired()
    principal = Principal(
        tenant_id=claims["tid"],
        tenant_code=claims.get("tnt", ""),
        username=claims["sub"],
        role=claims.get("role", ""),
        user_id=claims.get("uid"),
        patient_id=claims.get("patient"),
        practitioner_id=claims.get("practitioner"),
        scopes=tuple(claims.get("scope", "").split()),
    )
    return principal, claims["exp"]
