"""Errors that carry an HTTP status and a message in Chinese and English.

Every failure a person may read is one of these. The FHIR API renders them as OperationOutcome,
the CLI prints both languages. Messages never contain personal data.
"""

from __future__ import annotations


class XinglinError(Exception):
    status = 400
    code = "invalid"  # FHIR issue-type code

    def __init__(self, zh: str, en: str, *, element: str | None = None, status: int | None = None):
        super().__init__(en)
        self.zh = zh
        self.en = en
        self.element = element
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        where = f" [{self.element}]" if self.element else ""
        return f"{self.zh} / {self.en}{where}"


class BadRequest(XinglinError):
    status = 400
    code = "invalid"


class InvalidResource(XinglinError):
    status = 422
    code = "invalid"


class NotAuthenticated(XinglinError):
    status = 401
    code = "login"


class Forbidden(XinglinError):
    status = 403
    code = "forbidden"


class NotFound(XinglinError):
    status = 404
    code = "not-found"


class MethodNotAllowed(XinglinError):
    status = 405
    code = "not-supported"


class Conflict(XinglinError):
    status = 409
    code = "conflict"


class Gone(XinglinError):
    status = 410
    code = "deleted"


class PreconditionFailed(XinglinError):
    status = 412
    code = "conflict"
