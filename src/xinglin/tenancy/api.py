"""Tenant branding over HTTP: public to read (the portal needs it before sign-in), admins change it."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.core.errors import Forbidden
from xinglin.tenancy import service

router = APIRouter(prefix="/api/tenants", tags=["tenants"])


class Branding(BaseModel):
    name_zh: str | None = None
    name_en: str | None = None
    logo_url: str | None = None
    primary_color: str | None = None
    accent_color: str | None = None
    locale: str | None = None
    time_zone: str | None = None


def _public(t: service.Tenant) -> dict:
    data = asdict(t)
    data.pop("id")
    return data


@router.get("/{code}")
def read_branding(code: str, store: StoreDep) -> dict:
    with store.engine.connect() as conn:
        return _public(service.get_tenant(conn, code))


@router.patch("/{code}")
def change_branding(code: str, body: Branding, principal: CurrentPrincipal, store: StoreDep) -> dict:
    if principal.role != "admin" or principal.tenant_code != code:
        raise Forbidden(
            "只有本租户的管理员可以修改品牌设置", "Only this tenant's administrators may change its branding"
        )
    with store.engine.begin() as conn:
        t = service.update_branding(conn, code, body.model_dump(exclude_none=True), actor=principal.label)
    return _public(t)
