"""OperationOutcome: how every error leaves the FHIR API."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from xinglin.core.errors import XinglinError

FHIR_JSON = "application/fhir+json"


def outcome(error: XinglinError, severity: str = "error") -> dict:
    issue = {"severity": severity, "code": error.code, "details": {"text": error.zh}, "diagnostics": error.en}
    if error.element:
        issue["expression"] = [error.element]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(error: XinglinError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="xinglin"'} if error.status == 401 else None
    return Response(orjson.dumps(outcome(error)), status_code=error.status, media_type=FHIR_JSON, headers=headers)


def fhir_response(body, status: int = 200, headers: dict | None = None) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)
