"""Dependencies shared by every HTTP route: the store, the caller, the request's base URL."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from xinglin.core.config import Settings
from xinglin.core.errors import NotAuthenticated
from xinglin.security.principal import Principal
from xinglin.security.tokens import read_token
from xinglin.store.repository import Store
from xinglin.tenancy.service import is_active_user

# The dependencies are `async def` although they never wait: FastAPI runs plain `def` dependencies in its
# thread pool, and the hop there and back costs more than all they do.


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


# A disabled account's tokens stop working within this many seconds on every worker (each worker remembers
# the account's state that long, so that a busy client does not cost a query per request).
ACCOUNT_RECHECK_SECONDS = 30.0
_ACCOUNTS: dict[int, tuple[bool, float]] = {}


def _account_active(store: Store, user_id: int) -> bool:
    now = time.monotonic()
    known = _ACCOUNTS.get(user_id)
    if known is not None and now - known[1] < ACCOUNT_RECHECK_SECONDS:
        return known[0]
    with store.engine.connect() as conn:
        active = is_active_user(conn, user_id)
    if len(_ACCOUNTS) > 100_000:
        _ACCOUNTS.clear()
    _ACCOUNTS[user_id] = (active, now)
    return active


def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("需要登录：请求缺少 Bearer 访问令牌", "Sign-in required: no Bearer access token")
    principal = read_token(token.strip(), key=request.app.state.signing_key)
    if principal.user_id is not None and not _account_active(request.app.state.store, principal.user_id):
        raise NotAuthenticated("该账户已停用", "This account has been disabled")
    return principal.with_request(
        client_address=client_address(request), purpose=request.headers.get("x-purpose-of-use")
    )


async def _current_principal_dep(request: Request) -> Principal:
    return current_principal(request)


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CurrentPrincipal = Annotated[Principal, Depends(_current_principal_dep)]
