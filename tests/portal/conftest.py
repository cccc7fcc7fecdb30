"""Portal test helpers. The portal router and its static files are mounted on the shared session app here
until app.py includes them (guarded, so it happens once per app)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from xinglin.portal import api as portal_api
from xinglin.store.repository import Store
from xinglin.tenancy import service as tenancy

PASSWORD = "correct-horse-battery"


def mount_portal(app) -> None:
    if getattr(app.state, "portal_mounted", False) or any(
        getattr(r, "name", "") == "home/t/{tenant}" for r in app.router.routes
    ):
        return
    app.state.portal_mounted = True
    app.include_router(portal_api.router)
    app.mount(portal_api.STATIC_URL, StaticFiles(directory=portal_api.STATIC_DIR), name="portal-static")


@pytest.fixture(autouse=True)
def portal_routes(app):
    mount_portal(app)
    return app


def resident_id(birth: str = "19900517", sex: str = "female", region: str | None = None) -> str:
    """A valid GB 11643 number for the birth date (YYYYMMDD) and sex; random region and sequence, so two
    test patients practically never share one."""
    from xinglin.core.identity import id_check_char

    region = region or str(110000 + secrets.randbelow(540000))
    seq = secrets.randbelow(499) * 2 + (1 if sex == "male" else 2)
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + id_check_char(first17)


def phone() -> str:
    return "139" + f"{secrets.randbelow(10**8):08d}"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class Portal:
    """A browser-like client (its own cookie jar) on one hospital's portal."""

    client: TestClient
    hospital: object
    store: Store

    @property
    def base(self) -> str:
        return f"/t/{self.hospital.code}"

    def get(self, path: str, **kw):
        return self.client.get(self.base + path, **kw)

    def post(self, path: str, data: dict, *, form_page: str | None = None, **kw):
        page = self.client.get(self.base + (form_page or path.split("?")[0]))
        token = csrf_of(page.text) if 'name="csrf"' in page.text else self.client.cookies.get("xl_csrf")
        return self.client.post(self.base + path, data={"csrf": token, **data}, follow_redirects=False, **kw)

    def register(self, **fields) -> tuple[dict, object]:
        birth = fields.pop("birth", "19900517")
        sex = fields.get("sex", "female")
        data = {
            "name": "王小明",
            "id_number": resident_id(birth, sex),
            "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            "sex": sex,
            "phone": phone(),
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            **fields,
        }
        return data, self.post("/register", data)

    def sign_in(self, username: str, password: str = PASSWORD):
        return self.post("/signin", {"username": username, "password": password})


def new_portal(app, hospital, database) -> Portal:
    return Portal(TestClient(app), hospital, Store(database.engine, database.settings))


@pytest.fixture
def portal(app, hospital, database) -> Portal:
    return new_portal(app, hospital, database)


def add_staff(database, hospital, role: str, *, practitioner_id: str | None = None) -> str:
    username = f"{role}-{secrets.token_hex(3)}"
    with database.engine.begin() as conn:
        tenancy.create_user(conn, hospital.code, username, PASSWORD, role, practitioner_id=practitioner_id)
    return username
