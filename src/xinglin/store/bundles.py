"""FHIR Bundles: search and history results, and batch / transaction processing.

Stored resources go into bundles as pre-serialised JSON fragments, so a search never re-parses what
it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, XinglinError
from xinglin.core.ids import new_resource_id
from xinglin.security.principal import Principal
from xinglin.store.repository import HistoryPage, Repository, SearchPage, StoredResource, parse_etag
from xinglin.store.subsetting import Subset, apply_subset

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _fragment(res: StoredResource, subset: Subset | None = None) -> orjson.Fragment | dict:
    return orjson.Fragment(res.content) if subset is None else apply_subset(res.as_dict(), subset)


def _page_link(base: str, rtype: str, params: list[tuple[str, str]], count: int, offset: int) -> str:
    query = [(k, v) for k, v in params if k not in ("_count", "_offset")]
    query += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base}/{rtype}?{urlencode(query)}"


def searchset(page: SearchPage, base: str) -> dict:
    q = page.query
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "type": "searchset",
        "meta": {"lastUpdated": fhir_instant(utcnow())},
    }
    if page.total is not None:
        bundle["total"] = page.total
    if q.summary_count:
        bundle["link"] = [{"relation": "self", "url": _page_link(base, q.resource_type, q.params, 0, 0)}]
        return bundle
    links = [{"relation": "self", "url": _page_link(base, q.resource_type, q.params, q.count, q.offset)}]
    if q.count > 0:
        links.append({"relation": "first", "url": _page_link(base, q.resource_type, q.params, q.count, 0)})
        more = len(page.matches) == q.count and (page.total is None or q.offset + q.count < page.total)
        if more:
            links.append(
                {
                    "relation": "next",
                    "url": _page_link(base, q.resource_type, q.params, q.count, q.offset + q.count),
                }
            )
        if q.offset > 0:
            links.append(
                {
                    "relation": "previous",
                    "url": _page_link(base, q.resource_type, q.params, q.count, max(0, q.offset - q.count)),
                }
            )
    bundle["link"] = links
    entries = [
        {"fullUrl": f"{base}/{r.resource_type}/{r.id}", "resource": _fragment(r, q.subset), "search": {"mode": "match"}}
        for r in page.matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{r.resource_type}/{r.id}",
            "resource": _fragment(r, q.subset),
            "search": {"mode": "include"},
        }
        for r in page.included
    ]
    if entries:
        bundle["entry"] = entries
    return bundle


def history(page: HistoryPage, base: str, path: str) -> dict:
    entries = []
    for res, method in zip(page.versions, page.methods, strict=True):
        url = f"{res.resource_type}/{res.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if res.content:
            entry["resource"] = _fragment(res)
        entry["request"] = {"method": method, "url": url if method != "POST" else res.resource_type}
        entry["response"] = {
            "status": "204" if method == "DELETE" else ("201" if method == "POST" else "200"),
            "etag": res.etag,
            "lastModified": fhir_instant(res.last_updated),
        }
        entries.append(entry)
    links = [{"relation": "self", "url": f"{base}/{path}?_count={page.count}&_offset={page.offset}"}]
    if page.offset + page.count < page.total:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{path}?_count={page.count}&_offset={page.offset + page.count}",
            }
        )
    if page.offset > 0:
        links.append(
            {
                "relation": "previous",
                "url": f"{base}/{path}?_count={page.count}&_offset={max(0, page.offset - page.count)}",
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "type": "history",
        "total": page.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


# --- batch and transaction ------------------------------------------------------------------------------


@dataclass
class EntryResult:
    status: str
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body: Any = None  # a resource fragment, a Bundle dict or an OperationOutcome dict

    def as_entry(self) -> dict:
        response: dict[str, Any] = {"status": self.status}
        if self.location:
            response["location"] = self.location
        if self.etag:
            response["etag"] = self.etag
        if self.last_modified:
            response["lastModified"] = self.last_modified
        entry: dict[str, Any] = {}
        if self.body is not None:
            if isinstance(self.body, dict) and self.body.get("resourceType") == "OperationOutcome":
                response["outcome"] = self.body
            else:
                entry["resource"] = self.body
        entry["response"] = response
        return entry


def _written(result, status: str) -> EntryResult:
    res = result.resource
    return EntryResult(
        status=status,
        location=f"{res.resource_type}/{res.id}/_history/{res.version_id}",
        etag=res.etag,
        last_modified=fhir_instant(res.last_updated),
        body=_fragment(res),
    )


def _entry_error(index: int, zh: str, en: str, element: str | None = None) -> BadRequest:
    return BadRequest(f"Bundle 第 {index} 个条目：{zh}", f"Bundle entry {index}: {en}", element=element)


def _parse_entries(bundle: Any, kind: str) -> list[dict]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("请求体应为 Bundle 资源", "The body must be a Bundle", element="Bundle")
    if bundle.get("type") != kind:
        raise BadRequest(f"Bundle.type 应为 {kind}", f"Bundle.type must be {kind}", element="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry 应为数组", "Bundle.entry must be an array", element="Bundle.entry")
    for i, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or request.get("method") not in (
            "GET",
            "HEAD",
            "POST",
            "PUT",
            "DELETE",
        ):
            raise _entry_error(
                i,
                "缺少 request.method 或取值无效",
                "request.method is missing or invalid",
                f"Bundle.entry[{i}].request.method",
            )
        if not isinstance(request.get("url"), str) or not request["url"]:
            raise _entry_error(i, "缺少 request.url", "request.url is missing", f"Bundle.entry[{i}].request.url")
        if request["method"] in ("POST", "PUT") and not isinstance(entry.get("resource"), dict):
            raise _entry_error(i, "缺少 resource", "resource is missing", f"Bundle.entry[{i}].resource")
    return entries


def _rewrite_references(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite_references(v, mapping))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_references(v, mapping) for v in node]
    return node


def _split_url(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if "fhir/R4" in path:
        path = path.split("fhir/R4", 1)[1].strip("/")
    return [p for p in path.split("/") if p], parse_qsl(parts.query, keep_blank_values=True)


_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3, "HEAD": 3}


def _in_entry(i: int, exc: XinglinError) -> XinglinError:
    return type(exc)(
        f"Bundle 第 {i} 个条目：{exc.zh}", f"Bundle entry {i}: {exc.en}", element=exc.element, status=exc.status
    )


def run_transaction(repo: Repository, bundle: Any, base: str) -> dict:
    """All entries in one unit of work: all succeed or none does (the caller's transaction rolls back)."""
    entries = _parse_entries(bundle, "transaction")
    mapping: dict[str, str] = {}
    new_ids: dict[int, str] = {}
    existing: dict[int, StoredResource] = {}
    # Server ids for new resources first, so every urn:uuid reference can be resolved before validation.
    for i, entry in enumerate(entries):
        request = entry["request"]
        full_url = entry.get("fullUrl")
        if request["method"] != "POST":
            continue
        rtype = entry["resource"].get("resourceType")
        if request.get("ifNoneExist"):
            try:
                match = repo.find_one(rtype, request["ifNoneExist"])
            except XinglinError as exc:
                raise _in_entry(i, exc) from None
            if match is not None:
                existing[i] = match
                if full_url:
                    mapping[full_url] = f"{rtype}/{match.id}"
                continue
        new_ids[i] = new_resource_id()
        if full_url:
            mapping[full_url] = f"{rtype}/{new_ids[i]}"
    results: list[EntryResult | None] = [None] * len(entries)
    order = sorted(range(len(entries)), key=lambda n: _ORDER[entries[n]["request"]["method"]])
    for i in order:
        entry = entries[i]
        try:
            if i in new_ids:
                continue  # created together below, right after the deletions
            if i in existing:
                res = existing[i]
                results[i] = EntryResult(
                    status="200 OK",
                    location=f"{res.resource_type}/{res.id}/_history/{res.version_id}",
                    etag=res.etag,
                    last_modified=fhir_instant(res.last_updated),
                )
                continue
            if entry["request"]["method"] != "DELETE" and new_ids and results[next(iter(new_ids))] is None:
                _create_all(repo, entries, new_ids, mapping, results)
            results[i] = _run_entry(repo, entry, mapping, base)
        except XinglinError as exc:
            raise _in_entry(i, exc) from None
    if new_ids and results[next(iter(new_ids))] is None:
        _create_all(repo, entries, new_ids, mapping, results)
    return {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "type": "transaction-response",
        "entry": [r.as_entry() for r in results if r is not None],
    }


def _create_all(
    repo: Repository, entries: list[dict], new_ids: dict[int, str], mapping: dict[str, str], results: list
) -> None:
    """The POST entries of a transaction, created with multi-row statements."""
    items = []
    for i in new_ids:
        path, _ = _split_url(entries[i]["request"]["url"])
        if len(path) != 1:
            raise _in_entry(
                i,
                BadRequest(
                    "POST 的 request.url 应为资源类型", "POST request.url must be a type", element="request.url"
                ),
            )
        body = _rewrite_references(entries[i]["resource"], mapping) if mapping else entries[i]["resource"]
        items.append((path[0], body, new_ids[i]))
    try:
        created = repo.create_many(items)
    except XinglinError as exc:
        index = list(new_ids)[getattr(exc, "item_index", 0)]
        raise _in_entry(index, exc) from None
    for i, result in zip(new_ids, created, strict=True):
        results[i] = _written(result, "201 Created")


def run_batch(unit_of_work, principal: Principal, bundle: Any, base: str, outcome) -> dict:
    """Each entry in its own unit of work; a failing entry reports its OperationOutcome and the rest go on."""
    entries = _parse_entries(bundle, "batch")
    results = []
    for entry in entries:
        try:
            with unit_of_work(principal) as repo:
                results.append(_run_entry(repo, entry, {}, base))
        except XinglinError as exc:
            results.append(EntryResult(status=str(exc.status), body=outcome(exc)))
    return {
        "resourceType": "Bundle",
        "id": new_resource_id(),
        "type": "batch-response",
        "entry": [r.as_entry() for r in results],
    }


def _run_entry(repo: Repository, entry: dict, mapping: dict[str, str], base: str) -> EntryResult:
    request = entry["request"]
    method = request["method"]
    path, query = _split_url(request["url"])
    if not path:
        raise BadRequest("request.url 缺少资源类型", "request.url has no resource type", element="request.url")
    rtype = path[0]
    if method == "POST":
        body = _rewrite_references(entry["resource"], mapping) if mapping else entry["resource"]
        result = repo.create(body, rtype=rtype, if_none_exist=request.get("ifNoneExist"))
        return _written(result, "201 Created" if result.created else "200 OK")
    if method == "PUT":
        if len(path) != 2 or not _ID.match(path[1]):
            raise BadRequest(
                "PUT 的 request.url 应为 类型/id", "PUT request.url must be Type/id", element="request.url"
            )
        body = _rewrite_references(entry["resource"], mapping) if mapping else entry["resource"]
        result = repo.update(rtype, path[1], body, if_match=parse_etag(request.get("ifMatch")))
        return _written(result, "201 Created" if result.created else "200 OK")
    if method == "DELETE":
        if len(path) != 2:
            raise BadRequest(
                "DELETE 的 request.url 应为 类型/id",
                "DELETE request.url must be Type/id",
                element="request.url",
            )
        repo.delete(rtype, path[1])
        return EntryResult(status="204 No Content")
    # GET / HEAD
    if len(path) == 1:
        return EntryResult(status="200 OK", body=searchset(repo.search(rtype, query), base))
    if len(path) == 2:
        res = repo.read(rtype, path[1])
    elif len(path) == 4 and path[2] == "_history" and path[3].isdigit():
        res = repo.vread(rtype, path[1], int(path[3]))
    else:
        raise BadRequest("不支持的 request.url", "Unsupported request.url", element="request.url")
    return EntryResult(
        status="200 OK", etag=res.etag, last_modified=fhir_instant(res.last_updated), body=_fragment(res)
    )
