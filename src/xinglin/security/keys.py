"""The key that signs access tokens, shared by every worker through the database."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from xinglin.core.config import Settings
from xinglin.store.models import server_setting

_NAME = "token_signing_key"


def signing_key(engine: Engine, settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    with engine.begin() as conn:
        key = conn.execute(select(server_setting.c.value).where(server_setting.c.name == _NAME)).scalar()
        if key:
            return key
    try:
        with engine.begin() as conn:
            conn.execute(insert(server_setting).values(name=_NAME, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another worker created it first; use theirs
    with engine.begin() as conn:
        return conn.execute(select(server_setting.c.value).where(server_setting.c.name == _NAME)).scalar_one()
