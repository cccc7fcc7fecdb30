"""Dependencies shared by every HTTP route: the store, the caller, the request's base URL."""

from __future__ import annotations

import time
from typing import Annotated

import anyio
from fastapi import Depends, Request

from xinglin.core.config import Settings
from xinglin.core.errors import NotAuthenticated
from xinglin.security.principal import Principal
from xinglin.security.tokens import read_token
from xinglin.store.repository import Store
from xinglin.tenancy.service import is_active_user

# The dependencies are `async def` although they rarely wait: FastAPI runs plain `def` dependencies in its
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


def _remembered_state(user_id: int) -> bool | None:
    known = _ACCOUNTS.get(user_id)
    if known is not None and time.monotonic() - known[1] < ACCOUNT_RECHECK_SECONDS:
        return known[0]
    return None


def _account_active(store: Store, user_id: int) -> bool:
    known = _remembered_state(user_id)
    if known is not None:
        return known
    with store.engine.connect() as conn:
        active = is_active_user(conn, user_id)
    if len(_ACCOUNTS) > 100_000:
        _ACCOUNTS.clear()
    _ACCOUNTS[user_id] = (active, time.monotonic())
    return active


def _token_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("需要登录：请求缺少 Bearer 访问令牌", "Sign-in required: no Bearer access token")
    return read_token(token.strip(), key=request.app.state.signing_key)


def _as_active_caller(request: Request, principal: Principal, active: bool) -> Principal:
    if not active:
        raise NotAuthenticated("该账户已停用", "This account has been disabled")
    return principal.with_request(
        client_address=client_address(request), purpose=request.headers.get("x-purpose-of-use")
    )


def current_principal(request: Request) -> Principal:
    """The caller of a request with a valid token of an active account (for synchronous callers)."""
    principal = _token_principal(request)
    active = principal.user_id is None or _account_active(request.app.state.store, principal.user_id)
    return _as_active_caller(request, principal, active)


async def _current_principal_dep(request: Request) -> Principal:
    # The account's state is usually remembered; when it must be asked again, the query runs in a worker thread
    # rather than on the event loop.
    principal = _token_principal(request)
    active = True
    if principal.user_id is not None:
        active = _remembered_state(principal.user_id)
        if active is None:
            active = await anyio.to_thread.run_sync(_account_active, request.app.state.store, principal.user_id)
    return _as_active_caller(request, principal, active)


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CurrentPrincipal = Annotated[Principal, Depends(_current_principal_dep)]
