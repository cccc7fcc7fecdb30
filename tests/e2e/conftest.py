"""Browser tests: Playwright (sync API) driving Debian's Chromium against the live server."""

from __future__ import annotations

import pytest

from tests.portal.conftest import mount_portal

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def portal_server(app, live_server):
    mount_portal(app)
    return live_server
