"""Builds the web application from the pieces."""

from __future__ import annotations

import logging
import traceback
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from xinglin import __version__
from xinglin.core.config import Settings, get_settings
from xinglin.core.errors import BadRequest, MethodNotAllowed, NotFound, XinglinError
from xinglin.fhir import api as fhir_api
from xinglin.fhir.outcome import outcome_response
from xinglin.ingest import api as ingest_api
from xinglin.portal import api as portal_api
from xinglin.privacy import api as privacy_api
from xinglin.security import api as auth_api
from xinglin.security.keys import signing_key
from xinglin.share import api as share_api
from xinglin.store.db import make_engine
from xinglin.store.repository import Store
from xinglin.telehealth import api as telehealth_api
from xinglin.tenancy import api as tenancy_api
from xinglin.triage import api as triage_api

log = logging.getLogger("xinglin")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    # Route handlers run in a thread pool. Many more threads than cores only make them fight over the GIL
    # and the connection pool; a small pool per worker keeps latency low and throughput high.
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.worker_threads
    await app.state.store.open_async_pool()
    try:
        yield
    finally:
        await app.state.store.close_async_pool()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Xinglin 杏林",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.store = Store(engine, settings)
    app.state.signing_key = signing_key(engine, settings)

    app.include_router(fhir_api.router)  # first: see the end of this function
    app.include_router(auth_api.router)
    app.include_router(privacy_api.router)
    app.include_router(tenancy_api.router)
    app.include_router(telehealth_api.router)
    app.include_router(share_api.router)
    app.include_router(ingest_api.router)
    app.include_router(portal_api.router)
    app.mount(portal_api.STATIC_URL, StaticFiles(directory=portal_api.STATIC_DIR), name="portal-static")
    app.include_router(triage_api.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    # Routes are tried in order, so the FHIR API goes first and FastAPI's documentation pages (added when the app
    # was made) last.
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    app.router.routes.sort(key=lambda route: getattr(route, "path", None) in docs)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(XinglinError)
    async def _xinglin_error(_request: Request, exc: XinglinError):
        return outcome_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        err = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in err.get("loc", ())[1:]) or None
        return outcome_response(
            BadRequest(f"请求参数无效：{field}", f"Invalid request: {field}: {err.get('msg', '')}", element=field)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return outcome_response(NotFound("地址不存在", "No such endpoint"))
        if exc.status_code == 405:
            return outcome_response(MethodNotAllowed("不支持该 HTTP 方法", "Method not allowed"))
        return outcome_response(XinglinError("请求无法处理", str(exc.detail), status=exc.status_code))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        # Log the type and where it happened, not the message: messages may carry clinical data.
        frames = traceback.extract_tb(exc.__traceback__)[-6:]
        where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
        log.error("unexpected %s at %s", type(exc).__name__, where)
        return outcome_response(XinglinError("服务器内部错误", "Internal server error", status=500))
