"""HTTP routes of the FHIR R4 API at /fhir/R4. Routes stay thin: parse, call the repository, render."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from xinglin.api.deps import CurrentPrincipal, StoreDep
from xinglin.core.clock import fhir_instant
from xinglin.core.errors import BadRequest, MethodNotAllowed, NotFound, XinglinError
from xinglin.fhir.capability import capability_statement
from xinglin.fhir.outcome import FHIR_JSON, fhir_response, outcome
from xinglin.store import bundles
from xinglin.store.indexer import date_range
from xinglin.store.repository import StoredResource, parse_etag
from xinglin.store.subsetting import apply_subset, parse_subset

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4"])

_ACCEPTED_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "text/json", "")


def base_url(request: Request) -> str:
    configured = request.app.state.settings.public_base_url
    return (configured.rstrip("/") if configured else str(request.base_url).rstrip("/")) + "/fhir/R4"


# Endpoints that must await the request body are `async def`; their database work goes to the thread pool,
# so that one request's round trips never stall the event loop the worker's other requests share.


async def _json_body(request: Request) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _ACCEPTED_TYPES:
        raise XinglinError(
            f"不支持的内容类型 {ctype}，请使用 application/fhir+json",
            f"Unsupported content type {ctype}; use application/fhir+json",
            status=415,
        )
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"请求体不是合法的 JSON（第 {exc.pos} 个字符附近）",
            f"The body is not valid JSON (near character {exc.pos})",
        ) from None


def _resource_headers(res: StoredResource, base: str, *, location: bool = False) -> dict[str, str]:
    headers = {"ETag": res.etag, "Last-Modified": _http_date(res.last_updated)}
    if location:
        headers["Location"] = f"{base}/{res.resource_type}/{res.id}/_history/{res.version_id}"
    return headers


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(tzinfo=UTC), usegmt=True)


def _written(request: Request, res: StoredResource, status: int) -> Response:
    headers = _resource_headers(res, base_url(request), location=True)
    if request.headers.get("prefer", "").replace(" ", "") == "return=minimal":
        return Response(status_code=status, headers=headers, media_type=FHIR_JSON)
    return fhir_response(res.content, status, headers)


def _strict(request: Request) -> bool:
    return "handling=lenient" not in request.headers.get("prefer", "").replace(" ", "")


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    rng = date_range(value)
    if rng is None:
        raise BadRequest(
            f"_since 的取值“{value}”不是合法的时间",
            f"_since '{value}' is not a valid instant",
            element="_since",
        )
    return rng[0]


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(f"{name} 应为非负整数", f"{name} must be a non-negative integer", element=name)
    return int(value)


@router.get("/metadata")
def metadata(request: Request) -> Response:
    return fhir_response(capability_statement(base_url(request)))


@router.post("")
async def batch_or_transaction(request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    bundle = await _json_body(request)
    kind = bundle.get("type") if isinstance(bundle, dict) else None
    base = base_url(request)
    if kind == "transaction":

        def run_transaction() -> dict:
            with store.unit_of_work(principal) as repo:
                return bundles.run_transaction(repo, bundle, base)

        return fhir_response(await run_in_threadpool(run_transaction))
    if kind == "batch":
        return fhir_response(
            await run_in_threadpool(bundles.run_batch, store.unit_of_work, principal, bundle, base, outcome)
        )
    raise BadRequest(
        "Bundle.type 应为 batch 或 transaction",
        "Bundle.type must be batch or transaction",
        element="Bundle.type",
    )


@router.get("/_history")
def system_history(request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    with store.unit_of_work(principal) as repo:
        page = repo.history(
            None,
            count=_int_param(request, "_count", None),
            offset=_int_param(request, "_offset", 0) or 0,
            since=_since(request.query_params.get("_since")),
        )
    return fhir_response(bundles.history(page, base_url(request), "_history"))


_AUDIT_ACTIONS = {"C", "R", "U", "D", "E"}
_AUDIT_OUTCOMES = {"0": "success", "4": "denied", "8": "failed"}


def _audit_query(params: list[tuple[str, str]], strict: bool, max_count: int) -> dict:
    """The AuditEvent search parameters Xinglin supports, checked like every other search's: `date` (with
    eq/ge/gt/le/lt, repeatable), `entity` (Type or Type/id), `agent` (principal as recorded), `subtype`
    (read, create ...), `action` (C R U D E), `outcome` (0 4 8), `_count`, `_offset`."""
    q: dict = {"count": 20, "offset": 0, "after": None, "before": None}
    for name, value in params:
        if name in ("_count", "_offset"):
            if not value.isdigit() or len(value) > 12:
                raise BadRequest(f"{name} 应为非负整数", f"{name} must be a non-negative integer", element=name)
            q[name.lstrip("_")] = min(int(value), max_count) if name == "_count" else int(value)
        elif name == "date":
            prefix = value[:2] if value[:2] in ("eq", "ge", "gt", "le", "lt") else "eq"
            rng = date_range(value[2:] if value[:2] == prefix else value)
            if rng is None:
                raise BadRequest(
                    f"date 的取值“{value}”不是合法的时间", f"date '{value}' is not a valid date", element="date"
                )
            low, high = rng
            if prefix in ("eq", "ge", "gt"):
                q["after"] = max(filter(None, (q["after"], high if prefix == "gt" else low)))
            if prefix in ("eq", "le", "lt"):
                q["before"] = min(filter(None, (q["before"], low if prefix == "lt" else high)))
        elif name == "entity":
            q["entity"] = value
        elif name == "agent":
            q["principal"] = value
        elif name == "subtype":
            q["action"] = value
        elif name == "action" and value in _AUDIT_ACTIONS:
            q["action_code"] = value
        elif name == "outcome" and value in _AUDIT_OUTCOMES:
            q["outcome"] = _AUDIT_OUTCOMES[value]
        elif name in ("action", "outcome"):
            raise BadRequest(f"{name} 的取值“{value}”无效", f"{name} '{value}' is not a valid code", element=name)
        elif strict and name not in ("_total", "_format"):
            raise BadRequest(
                f"AuditEvent 不支持搜索参数 {name}", f"AuditEvent has no search parameter '{name}'", element=name
            )
    return q


def _audit_search(request: Request, store, principal, params: list[tuple[str, str]]) -> Response:
    q = _audit_query(params, _strict(request), store.settings.max_page_size)
    with store.unit_of_work(principal) as repo:
        total, events = repo.audit_events(**q)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "entry": [
            {
                "fullUrl": f"{base_url(request)}/AuditEvent/{e['id']}",
                "resource": e,
                "search": {"mode": "match"},
            }
            for e in events
        ],
    }
    return fhir_response(bundle)


def _search(request: Request, store, principal, rtype: str, params: list[tuple[str, str]]) -> Response:
    if rtype == "AuditEvent":
        return _audit_search(request, store, principal, params)
    with store.unit_of_work(principal) as repo:
        page = repo.search(rtype, params, strict=_strict(request))
    return fhir_response(bundles.searchset(page, base_url(request)))


@router.get("/{rtype}")
def search(rtype: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    return _search(request, store, principal, rtype, list(request.query_params.multi_items()))


@router.post("/{rtype}/_search")
async def search_post(rtype: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    body = (await request.body()).decode("utf-8", errors="replace")
    params = list(request.query_params.multi_items()) + parse_qsl(body, keep_blank_values=True)
    return await run_in_threadpool(_search, request, store, principal, rtype, params)


def _no_audit_writes(rtype: str) -> None:
    if rtype == "AuditEvent":
        raise MethodNotAllowed("审计记录不能被创建、修改或删除", "Audit records cannot be created, changed or deleted")


@router.post("/{rtype}")
async def create(rtype: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    _no_audit_writes(rtype)
    body = await _json_body(request)
    result = await store.create_async(principal, rtype, body, if_none_exist=request.headers.get("if-none-exist"))
    return _written(request, result.resource, 201 if result.created else 200)


@router.get("/{rtype}/_history")
def type_history(rtype: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    with store.unit_of_work(principal) as repo:
        page = repo.history(
            rtype,
            count=_int_param(request, "_count", None),
            offset=_int_param(request, "_offset", 0) or 0,
            since=_since(request.query_params.get("_since")),
        )
    return fhir_response(bundles.history(page, base_url(request), f"{rtype}/_history"))


@router.get("/{rtype}/{rid}")
async def read(rtype: str, rid: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    if rtype == "AuditEvent":
        return await run_in_threadpool(_read_audit_event, request, store, principal, rid)
    subset = parse_subset(request.query_params.get("_summary"), request.query_params.get("_elements"))
    res = await store.read_async(principal, rtype, rid)
    content = res.content if subset is None else apply_subset(res.as_dict(), subset)
    return fhir_response(content, 200, _resource_headers(res, base_url(request)))


def _read_audit_event(request: Request, store, principal, rid: str) -> Response:
    lane, _, seq = rid.partition("-")
    if not (lane.isdigit() and seq.isdigit() and len(lane) < 10 and len(seq) < 19):
        raise NotFound(f"未找到 AuditEvent/{rid}", f"AuditEvent/{rid} was not found")
    with store.unit_of_work(principal) as repo:
        event = repo.audit_event(int(lane), int(seq))
    return fhir_response(event)


@router.put("/{rtype}/{rid}")
async def update(rtype: str, rid: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    _no_audit_writes(rtype)
    body = await _json_body(request)
    if_match = parse_etag(request.headers.get("if-match"))
    result = await store.update_async(principal, rtype, rid, body, if_match=if_match)
    return _written(request, result.resource, 201 if result.created else 200)


@router.delete("/{rtype}/{rid}")
async def delete(rtype: str, rid: str, store: StoreDep, principal: CurrentPrincipal) -> Response:
    _no_audit_writes(rtype)
    await store.delete_async(principal, rtype, rid)
    return Response(status_code=204)


@router.get("/{rtype}/{rid}/_history")
def instance_history(rtype: str, rid: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    with store.unit_of_work(principal) as repo:
        page = repo.history(
            rtype,
            rid,
            count=_int_param(request, "_count", None),
            offset=_int_param(request, "_offset", 0) or 0,
            since=_since(request.query_params.get("_since")),
        )
    return fhir_response(bundles.history(page, base_url(request), f"{rtype}/{rid}/_history"))


@router.get("/{rtype}/{rid}/_history/{vid}")
def vread(rtype: str, rid: str, vid: str, request: Request, store: StoreDep, principal: CurrentPrincipal) -> Response:
    if not vid.isdigit() or len(vid) > 9:
        raise NotFound(f"版本号 {vid} 无效", f"Version '{vid}' is not valid")
    with store.unit_of_work(principal) as repo:
        res = repo.vread(rtype, rid, int(vid))
    return fhir_response(res.content, 200, _resource_headers(res, base_url(request)))


@router.patch("/{rtype}/{rid}")
def patch(rtype: str, rid: str) -> Response:
    raise MethodNotAllowed("暂不支持 PATCH，请使用 PUT 更新整个资源", "PATCH is not supported; PUT the whole resource")


__all__ = ["fhir_instant", "router"]


# FastAPI tries routes in their order, and trying one costs about as much as a database round trip here: the
# busiest route (read) comes right after the one it must not shadow (`{rtype}/_history`). Sorting is stable.
_FIRST = ("/fhir/R4/{rtype}/_history", "/fhir/R4/{rtype}/{rid}")
router.routes.sort(key=lambda route: getattr(route, "path", "") not in _FIRST)
