"""Portal pages: thin routes that call one domain service each, inside the caller's unit of work.

Every page exists at /t/{tenant}/<path> and, for the default tenant (settings.default_tenant), at /<path>.
Session = the access token (JWT) in an HttpOnly, SameSite=Lax cookie; every POST form carries a CSRF token
that must equal the `xl_csrf` cookie (double submit). Language: ?lang=en|zh-CN, remembered in a cookie.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from xinglin.core.clock import utcnow
from xinglin.core.config import Settings
from xinglin.core.errors import BadRequest, Forbidden, NotAuthenticated, NotFound, XinglinError
from xinglin.portal import service
from xinglin.portal.i18n import LANGUAGES, Translator, pick_language
from xinglin.privacy import consent
from xinglin.scheduling import service as scheduling
from xinglin.security.principal import Principal
from xinglin.security.tokens import issue_token, read_token
from xinglin.store.repository import Repository, Store
from xinglin.telehealth import service as telehealth
from xinglin.telehealth.models import (
    DELIVERY_STEPS,
    IMAGE_TYPES,
    IN_PERSON_CLASSES,
    MAX_IMAGE_BYTES,
    ONLINE_PRESCRIPTION_TAG,
    TAGS,
)
from xinglin.tenancy import service as tenancy
from xinglin.tenancy.service import Tenant
from xinglin.triage import TriageInputError, assess, check_request
from xinglin.triage.api import risk_assessment
from xinglin.triage.models import DEPARTMENTS, LEVELS

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/portal"
SESSION_COOKIE = "xl_session"
CSRF_COOKIE = "xl_csrf"
LANG_COOKIE = "xl_lang"
ZLKM = "https://xinglin.dev/CodeSystem/zlkm"
CONSENT_PURPOSES = ("treatment", "online-consultation", "research")
STAFF_HOME = {"physician": "/staff/queue", "pharmacist": "/staff/prescriptions", "admin": "/admin"}
WEEKDAY_FIELDS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UPLOAD_LIMIT = MAX_IMAGE_BYTES + 1024 * 1024  # one image at most, plus the other fields of its form

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Notices shown after a redirect (?msg=...): msgids of the catalogs.
NOTICES = {
    "registered": "Your account has been created.",
    "consents": "Your choices have been saved.",
    "booked": "Your appointment is booked.",
    "cancelled": "The appointment has been cancelled.",
    "rescheduled": "The appointment has been moved.",
    "signedout": "You have signed out.",
    "branding": "The branding has been saved.",
    "slots": "The slots have been generated.",
    "approved": "The prescription has been approved.",
    "rejected": "The prescription has been rejected.",
    "dispensed": "The prescription has been dispensed.",
    "delivery": "The delivery status has been updated.",
    "user-added": "The user has been added.",
    "user-disabled": "The user has been disabled and can no longer sign in.",
    "user-enabled": "The user has been enabled.",
    "password-reset": "The password has been reset.",
}


@dataclass
class Page:
    request: Request
    store: Store
    settings: Settings
    tenant: Tenant
    base: str
    lang: str
    _: Translator
    principal: Principal | None
    csrf: str
    form: dict = field(default_factory=dict)
    set_cookies: list[tuple[str, str, int]] = field(default_factory=list)

    def url(self, path: str, **query) -> str:
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return (self.base + path) + ("?" + urlencode(q) if q else "")

    def repo(self):
        if self.principal is None:
            raise NotAuthenticated("请先登录", "Please sign in first")
        return self.store.unit_of_work(self.principal)

    def dept_name(self, code: str | None) -> str:
        d = DEPARTMENTS.get(code or "")
        return self._.pick(d.name, d.name_en) if d else (code or "")

    def time(self, value: str | None) -> str:
        return service.local_time(value, self.tenant.time_zone)

    def render(self, template: str, status: int = 200, **context) -> HTMLResponse:
        msg = self.request.query_params.get("msg")
        html = env.get_template(template).render(
            p=self,
            _=self._,
            tenant=self.tenant,
            tenant_name=self._.pick(self.tenant.name_zh, self.tenant.name_en),
            theme=service.theme(self.tenant),
            user=self.principal,
            lang=self.lang,
            notice=self._(NOTICES[msg]) if msg in NOTICES else None,
            static=STATIC_URL,
            departments=DEPARTMENTS,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, path: str, **query) -> RedirectResponse:
        return RedirectResponse(self.url(path, **query), status_code=303)

    def error(self, exc: XinglinError) -> str:
        return self._.pick(exc.zh, exc.en)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int, *, http_only=True) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _principal(request: Request, tenant: Tenant) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = read_token(token, key=request.app.state.signing_key)
    except NotAuthenticated:
        return None
    if principal.tenant_id != tenant.id:
        return None
    return principal.with_request(client_address=request.client.host if request.client else None)


def _plain_error(status: int, zh: str, en: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>Xinglin</title></head>'
        f"<body><main><h1>{zh}</h1><p lang=en>{en}</p></main></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _handle(request: Request, form, view: Callable, roles: tuple[str, ...] | None, too_large: bool = False) -> Response:
    store: Store = request.app.state.store
    settings: Settings = request.app.state.settings
    code = request.path_params.get("tenant") or settings.default_tenant
    try:
        with store.engine.connect() as conn:
            tenant = tenancy.get_tenant(conn, code)
            principal = _principal(request, tenant)
            if principal is not None and principal.user_id and not tenancy.is_active_user(conn, principal.user_id):
                principal = None  # a disabled account's session ends at once
    except NotFound:
        return _plain_error(404, "医院不存在", "No such hospital")
    base = f"/t/{tenant.code}" if "tenant" in request.path_params else ""
    query_lang = request.query_params.get("lang")
    lang = pick_language(query_lang, request.cookies.get(LANG_COOKIE), tenant.locale)
    csrf = request.cookies.get(CSRF_COOKIE) or ""
    page = Page(
        request,
        store,
        settings,
        tenant,
        base,
        lang,
        Translator(lang),
        principal,
        csrf or secrets.token_urlsafe(32),
        dict(form.items()) if form is not None else {},
    )
    if too_large:
        response = page.render(
            "error.html", status=413, message=page._("What you sent is too large. Please send a smaller file.")
        )
        return _finish(page, response, csrf_new=not csrf, query_lang=query_lang)
    if request.method == "POST":
        sent = str(page.form.get("csrf", ""))
        if not csrf or not sent or not hmac.compare_digest(csrf, sent):
            response = page.render(
                "error.html",
                status=403,
                message=page._("The form has expired or was not sent from this site. Please go back and try again."),
            )
            return _finish(page, response, csrf_new=not csrf, query_lang=query_lang)
    if roles is not None:
        if page.principal is None:
            return _finish(page, page.redirect("/signin", next=request.url.path), csrf_new=not csrf)
        if page.principal.role not in roles:
            response = page.render("error.html", status=403, message=page._("This page is not available to you."))
            return _finish(page, response, csrf_new=not csrf, query_lang=query_lang)
    args = {k: v for k, v in request.path_params.items() if k != "tenant"}
    try:
        response = view(page, **args)
    except NotAuthenticated:
        response = page.redirect("/signin", next=request.url.path)
    except XinglinError as exc:
        response = page.render("error.html", status=exc.status, message=page.error(exc))
    return _finish(page, response, csrf_new=not csrf, query_lang=query_lang)


def _finish(page: Page, response: Response, *, csrf_new: bool, query_lang: str | None = None) -> Response:
    request = page.request
    if csrf_new:
        _cookie(response, request, CSRF_COOKIE, page.csrf, 7 * 24 * 3600)
    if query_lang and query_lang in LANGUAGES:
        _cookie(response, request, LANG_COOKIE, page.lang, 365 * 24 * 3600, http_only=False)
    for name, value, age in page.set_cookies:
        if value:
            _cookie(response, request, name, value, age)
        else:
            response.delete_cookie(name, path="/")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def page(
    path: str,
    methods: tuple[str, ...] = ("GET",),
    roles: tuple[str, ...] | None = None,
    max_body: int = 2 * 1024 * 1024,
):
    """Registers a view at /t/{tenant}<path> and at <path> (default tenant). A POST body larger than
    `max_body` (by its Content-Length) is refused with 413 before it is read."""

    def decorate(view: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                too_large = int(request.headers.get("content-length") or 0) > max_body
            except ValueError:
                too_large = True
            if request.method != "POST" or too_large:
                return await run_in_threadpool(_handle, request, None, view, roles, too_large)
            form = await request.form()
            try:
                return await run_in_threadpool(_handle, request, form, view, roles)
            finally:
                await form.close()  # uploaded files are spooled to temporary files

        endpoint.__name__ = f"portal_{view.__name__}"
        for prefix in ("/t/{tenant}", ""):
            router.add_api_route(prefix + path, endpoint, methods=list(methods), name=f"{view.__name__}{prefix}")
        return view

    return decorate


PATIENT = ("patient",)
STAFF = ("physician", "pharmacist", "admin")


def _text(form: dict, name: str, limit: int = 2000) -> str:
    return str(form.get(name, "") or "").strip()[:limit]


def _ref_id(ref: dict | None, rtype: str) -> str | None:
    target = (ref or {}).get("reference", "")
    return target.split("/", 1)[1] if target.startswith(rtype + "/") else None


def _dept_of(resource: dict) -> str | None:
    for key in ("serviceType", "specialty", "type"):
        value = resource.get(key)
        for concept in value if isinstance(value, list) else [value] if value else []:
            for coding in concept.get("coding") or []:
                if coding.get("system") == ZLKM:
                    return coding.get("code")
    return None


def _concept_text(concept: dict | None) -> str:
    concept = concept or {}
    return concept.get("text") or next((c.get("display") or c.get("code") for c in concept.get("coding") or []), "")


# --- home, language, sign in -------------------------------------------------------------------------------


@page("/")
def home(p: Page) -> Response:
    if p.principal is not None and p.principal.role in STAFF_HOME:
        return p.redirect(STAFF_HOME[p.principal.role])
    return p.render("home.html")


@page("/signin", ("GET", "POST"))
def signin(p: Page) -> Response:
    next_path = str(p.form.get("next") or p.request.query_params.get("next") or "")
    if not next_path.startswith(p.base + "/") or next_path.startswith("//"):
        next_path = ""
    if p.request.method == "GET":
        return p.render("signin.html", next=next_path, username="", error=None)
    username = _text(p.form, "username", 128)
    try:
        principal = tenancy.authenticate(
            p.store.engine,
            p.settings,
            p.tenant.code,
            service.normalise_phone(username) if username.startswith("+86") else username,
            str(p.form.get("password", "")),
            client_address=p.request.client.host if p.request.client else None,
        )
    except NotAuthenticated as exc:
        return p.render("signin.html", status=401, next=next_path, username=username, error=p.error(exc))
    _start_session(p, principal)
    target = next_path or p.url(STAFF_HOME.get(principal.role, "/"))
    return RedirectResponse(target, status_code=303)


def _start_session(p: Page, principal: Principal) -> None:
    token = issue_token(principal, key=p.request.app.state.signing_key, ttl_seconds=p.settings.token_ttl_seconds)
    p.set_cookies.append((SESSION_COOKIE, token, p.settings.token_ttl_seconds))
    p.set_cookies.append((CSRF_COOKIE, secrets.token_urlsafe(32), 7 * 24 * 3600))  # a fresh token per session


@page("/signout", ("POST",))
def signout(p: Page) -> Response:
    p.set_cookies.append((SESSION_COOKIE, "", 0))
    return p.redirect("/", msg="signedout")


# --- registration and consent ------------------------------------------------------------------------------


@page("/register", ("GET", "POST"))
def register(p: Page) -> Response:
    if p.request.method == "GET":
        return p.render("register.html", reg=service.Registration(), errors={})
    reg = service.Registration.from_form(p.form)
    try:
        patient_id = service.register_patient(
            p.store, p.tenant, reg, client_address=p.request.client.host if p.request.client else None
        )
    except service.RegistrationError as exc:
        errors = {f: p._(e.message, **e.params) for f, e in exc.by_field().items()}
        reg.password = reg.password_confirm = ""
        return p.render("register.html", status=422, reg=reg, errors=errors)
    principal = tenancy.authenticate(p.store.engine, p.settings, p.tenant.code, reg.phone, reg.password)
    assert principal.patient_id == patient_id
    _start_session(p, principal)
    return p.redirect("/consent", msg="registered")


def _patient(p: Page, repo: Repository) -> dict:
    return repo.read("Patient", p.principal.patient_id).as_dict()


def _is_child(patient: dict) -> bool:
    age = consent.age_on(patient.get("birthDate"))
    return age is not None and age < consent.GUARDIAN_AGE


@page("/consent", ("GET", "POST"), roles=PATIENT)
def consent_choices(p: Page) -> Response:
    """The PIPL consent screens: one explicit, separate choice per purpose, nothing pre-selected."""
    with p.repo() as repo:
        patient = _patient(p, repo)
        current = {purpose: consent.has_consent(repo, p.principal.patient_id, purpose) for purpose in CONSENT_PURPOSES}
    child = _is_child(patient)
    if p.request.method == "GET":
        return p.render("consent.html", choices={}, current=current, child=child, errors={})
    choices = {purpose: str(p.form.get(purpose, "")) for purpose in CONSENT_PURPOSES}
    errors = {k: p._("Please choose yes or no") for k, v in choices.items() if v not in ("yes", "no")}
    guardian = None
    if child:
        guardian = {
            "name": _text(p.form, "guardian_name", 200),
            "relationship": _text(p.form, "guardian_relation", 100),
        }
        if any(v == "yes" for v in choices.values()) and not (guardian["name"] and guardian["relationship"]):
            errors["guardian"] = p._("A guardian must consent for a child under 14: give their name and relationship")
    if errors:
        return p.render("consent.html", status=422, choices=choices, current=current, child=child, errors=errors)
    with p.repo() as repo:
        for purpose, choice in choices.items():
            if choice == "yes":
                consent.grant_consent(repo, p.principal.patient_id, purpose, guardian=guardian)
            elif current[purpose]:
                consent.withdraw_consent(repo, p.principal.patient_id, purpose)
    return p.redirect("/consents", msg="consents")


@page("/consents", roles=PATIENT)
def my_consents(p: Page) -> Response:
    with p.repo() as repo:
        rows = []
        for purpose in CONSENT_PURPOSES:
            found = repo.search(
                "Consent",
                [
                    ("patient", f"Patient/{p.principal.patient_id}"),
                    ("category", f"{consent.PURPOSE_SYSTEM}|{purpose}"),
                    ("_sort", "-date"),
                    ("_count", "1"),
                ],
            ).matches
            latest = found[0].as_dict() if found else None
            rows.append(
                {
                    "purpose": purpose,
                    "active": consent.has_consent(repo, p.principal.patient_id, purpose),
                    "since": (latest or {}).get("dateTime"),
                    "ended": ((latest or {}).get("provision") or {}).get("period", {}).get("end"),
                }
            )
        child = _is_child(_patient(p, repo))
    return p.render("consents.html", rows=rows, child=child)


@page("/consents/{purpose}/withdraw", ("POST",), roles=PATIENT)
def withdraw(p: Page, purpose: str) -> Response:
    with p.repo() as repo:
        consent.withdraw_consent(repo, p.principal.patient_id, purpose)
    return p.redirect("/consents", msg="consents")


@page("/consents/{purpose}/grant", ("POST",), roles=PATIENT)
def grant(p: Page, purpose: str) -> Response:
    guardian = None
    if p.form.get("guardian_name"):
        guardian = {
            "name": _text(p.form, "guardian_name", 200),
            "relationship": _text(p.form, "guardian_relation", 100),
        }
    with p.repo() as repo:
        consent.grant_consent(repo, p.principal.patient_id, purpose, guardian=guardian)
    return p.redirect("/consents", msg="consents")


# --- profile and records -----------------------------------------------------------------------------------


@page("/profile", roles=PATIENT)
def profile(p: Page) -> Response:
    with p.repo() as repo:
        patient = _patient(p, repo)
    ident = next((i.get("value", "") for i in patient.get("identifier") or []), "")
    masked = ident[:3] + "*" * max(0, len(ident) - 7) + ident[-4:] if len(ident) > 7 else ident
    phone = next((t.get("value") for t in patient.get("telecom") or [] if t.get("system") == "phone"), "")
    name = next((n.get("text") or "".join([n.get("family", ""), *n.get("given", [])]) for n in patient["name"]), "")
    return p.render("profile.html", patient=patient, name=name, id_masked=masked, phone=phone)


def _search(repo: Repository, rtype: str, params: list[tuple[str, str]]) -> list[dict]:
    return [m.as_dict() for m in repo.search(rtype, [*params, ("_count", "500")]).matches]


@page("/records", roles=PATIENT)
def records(p: Page) -> Response:
    me = f"Patient/{p.principal.patient_id}"
    with p.repo() as repo:
        encounters = _search(repo, "Encounter", [("patient", me), ("_sort", "-date")])
        conditions = _search(repo, "Condition", [("patient", me), ("_sort", "-recorded-date")])
        labs = _search(repo, "Observation", [("patient", me), ("category", "laboratory"), ("_sort", "-date")])
        prescriptions = _search(repo, "MedicationRequest", [("patient", me), ("_sort", "-authoredon")])
        online = ONLINE_PRESCRIPTION_TAG["code"]
        deliveries = {
            rx["id"]: telehealth.prescription_status(repo, rx["id"])["delivery"]
            for rx in prescriptions
            if rx.get("status") in ("active", "completed")
            and any(t.get("code") == online for t in (rx.get("meta") or {}).get("tag") or [])
        }
    return p.render(
        "records.html",
        encounters=encounters,
        conditions=conditions,
        labs=service.lab_trends(labs),
        prescriptions=prescriptions,
        deliveries=deliveries,
        concept=_concept_text,
        online_tag=ONLINE_PRESCRIPTION_TAG["code"],
    )


# --- triage ------------------------------------------------------------------------------------------------


@page("/triage", ("GET", "POST"))
def triage(p: Page) -> Response:
    if p.request.method == "GET":
        return p.render("triage.html", result=None, values={}, error=None)
    values = {k: _text(p.form, k, 2000) for k in ("text", "age", "sex")}
    request: dict = {"text": values["text"]}
    if values["age"]:
        request["age"] = values["age"]
    if values["sex"] in ("male", "female"):
        request["sex"] = values["sex"]
    try:
        if not values["text"]:
            raise BadRequest("请描述您的症状", "Please describe your symptoms", element="text")
        if values["age"]:
            try:
                request["age"] = int(values["age"])
            except ValueError:
                raise BadRequest("年龄应为整数", "The age must be a whole number", element="age") from None
        kwargs = check_request(request)
    except (TriageInputError, BadRequest) as exc:
        return p.render("triage.html", status=422, result=None, values=values, error=(exc.element, p.error(exc)))
    result = assess(**kwargs)
    if p.principal is not None and p.principal.role == "patient":
        with p.repo() as repo:  # the advice is kept in the patient's record, written by Xinglin (machine-generated)
            repo.as_system("triage").create(risk_assessment(result, p.principal.patient_id, kwargs["text"]))
    return p.render("triage.html", result=result.to_dict(), values=values, error=None, levels=LEVELS)


# --- booking -----------------------------------------------------------------------------------------------


def _schedules(repo: Repository, dept: str | None = None) -> list[dict]:
    params = [("active", "true")]
    if dept:
        params.append(("specialty", f"{ZLKM}|{dept}"))
    found = _search(repo, "Schedule", params)
    if dept:
        found += [s for s in _search(repo, "Schedule", [("service-type", f"{ZLKM}|{dept}")]) if s not in found]
    return found


def _doctor(schedule: dict) -> dict:
    actor = next((a for a in schedule.get("actor") or [] if a.get("reference", "").startswith("Practitioner/")), {})
    return {"id": _ref_id(actor, "Practitioner"), "name": actor.get("display") or ""}


def _free_slots(repo: Repository, schedule_id: str) -> list[dict]:
    now = utcnow().isoformat(timespec="seconds").replace("+00:00", "Z")
    return _search(
        repo,
        "Slot",
        [("schedule", f"Schedule/{schedule_id}"), ("status", "free"), ("start", f"ge{now}"), ("_sort", "start")],
    )[:60]


@page("/book", ("GET", "POST"), roles=PATIENT)
def book(p: Page) -> Response:
    q = p.request.query_params
    dept, schedule_id = q.get("dept") or p.form.get("dept"), q.get("schedule") or p.form.get("schedule")
    error = None
    if p.request.method == "POST":
        slot_id = _text(p.form, "slot", 64)
        if not slot_id:
            error = p._("Please choose a time")
        else:
            try:
                with p.repo() as repo:
                    slot = repo.read("Slot", slot_id).as_dict()
                    schedule = repo.read("Schedule", _ref_id(slot.get("schedule"), "Schedule") or "").as_dict()
                    scheduling.book_slot(repo, slot_id, p.principal.patient_id, practitioner_id=_doctor(schedule)["id"])
                return p.redirect("/appointments", msg="booked")
            except XinglinError as exc:
                error = p.error(exc)
    with p.repo() as repo:
        schedules = _schedules(repo, dept)
        depts = sorted({d for s in _schedules(repo) if (d := _dept_of(s))})
        doctors = [{"schedule": s["id"], **_doctor(s), "comment": s.get("comment", "")} for s in schedules]
        slots = _free_slots(repo, schedule_id) if schedule_id else []
    chosen = next((d for d in doctors if d["schedule"] == schedule_id), None)
    return p.render(
        "book.html",
        status=409 if error else 200,
        dept=dept,
        depts=depts,
        doctors=doctors if dept else [],
        chosen=chosen,
        schedule_id=schedule_id,
        slots=slots,
        error=error,
    )


@page("/appointments", roles=PATIENT)
def appointments(p: Page) -> Response:
    with p.repo() as repo:
        found = _search(repo, "Appointment", [("patient", f"Patient/{p.principal.patient_id}"), ("_sort", "-date")])
    return p.render("appointments.html", appointments=found, dept_of=_dept_of)


@page("/appointments/{appointment_id}/cancel", ("POST",), roles=PATIENT)
def cancel(p: Page, appointment_id: str) -> Response:
    with p.repo() as repo:
        scheduling.cancel_appointment(repo, appointment_id, reason=_text(p.form, "reason", 500) or None)
    return p.redirect("/appointments", msg="cancelled")


@page("/appointments/{appointment_id}/reschedule", ("GET", "POST"), roles=PATIENT)
def move(p: Page, appointment_id: str) -> Response:
    error = None
    if p.request.method == "POST":
        slot_id = _text(p.form, "slot", 64)
        try:
            if not slot_id:
                raise BadRequest("请选择时间", "Please choose a time", element="slot")
            with p.repo() as repo:
                scheduling.reschedule(repo, appointment_id, slot_id)
            return p.redirect("/appointments", msg="rescheduled")
        except XinglinError as exc:
            error = p.error(exc)
    with p.repo() as repo:
        appointment = repo.read("Appointment", appointment_id).as_dict()
        slot_id = _ref_id((appointment.get("slot") or [{}])[0], "Slot")
        schedule_id = _ref_id(repo.read("Slot", slot_id).as_dict().get("schedule"), "Schedule") if slot_id else None
        slots = _free_slots(repo, schedule_id) if schedule_id else []
    return p.render("reschedule.html", status=409 if error else 200, appointment=appointment, slots=slots, error=error)


# --- online follow-up --------------------------------------------------------------------------------------


def _follow_up_bases(repo: Repository, patient_id: str) -> list[dict]:
    me = f"Patient/{patient_id}"
    bases = []
    for enc in _search(repo, "Encounter", [("patient", me), ("status", "finished"), ("_sort", "-date")]):
        if (enc.get("class") or {}).get("code") in IN_PERSON_CLASSES:
            bases.append(
                {
                    "ref": f"Encounter/{enc['id']}",
                    "kind": "visit",
                    "when": (enc.get("period") or {}).get("start"),
                    "text": _concept_text((enc.get("type") or [None])[0]) or _concept_text(enc.get("serviceType")),
                    "dept": _dept_of(enc),
                    "inpatient": enc["class"]["code"] == "IMP",
                }
            )
    for cond in _search(repo, "Condition", [("patient", me)]):
        verification = {c.get("code") for c in (cond.get("verificationStatus") or {}).get("coding") or []}
        if verification & {"refuted", "entered-in-error"}:
            continue
        bases.append(
            {
                "ref": f"Condition/{cond['id']}",
                "kind": "diagnosis",
                "when": cond.get("recordedDate") or cond.get("onsetDateTime"),
                "text": _concept_text(cond.get("code")),
                "dept": None,
                "inpatient": False,
            }
        )
    return bases


@page("/followup", ("GET", "POST"), roles=PATIENT, max_body=UPLOAD_LIMIT)
def follow_up(p: Page) -> Response:
    values = {
        k: _text(p.form, k)
        for k in (
            "basis",
            "department",
            "reason",
            "changed",
            "guardian_name",
            "guardian_relation",
            "record_description",
        )
    }
    error = None
    if p.request.method == "POST":
        guardian = None
        if values["guardian_name"] or values["guardian_relation"]:
            guardian = {"name": values["guardian_name"], "relationship": values["guardian_relation"]}
        try:
            with p.repo() as repo:
                basis = values["basis"] or None
                if basis == "upload":  # the record of the earlier visit, uploaded with the request
                    record = telehealth.upload_earlier_record(
                        repo,
                        patient_id=p.principal.patient_id,
                        image=_uploaded_image(p, "record"),
                        description=_text(p.form, "record_description", 500),
                    )
                    basis = f"DocumentReference/{record.id}"
                stored = telehealth.request_consult(
                    repo,
                    patient_id=p.principal.patient_id,
                    department=values["department"],
                    follow_up_of=basis,
                    condition_changed=values["changed"] == "yes",
                    guardian=guardian,
                    reason=values["reason"] or None,
                )
            return p.redirect(f"/consults/{stored.id}")
        except XinglinError as exc:
            if isinstance(exc, NotAuthenticated):
                raise
            error = (exc.element, p.error(exc), exc.status)
    with p.repo() as repo:
        bases = _follow_up_bases(repo, p.principal.patient_id)
        consented = consent.has_consent(repo, p.principal.patient_id, "online-consultation")
        patient = _patient(p, repo)
        consults = [telehealth.consult_view(s) for s in telehealth.list_consults(repo)]
    if not values["department"]:
        values["department"] = next((b["dept"] for b in bases if b["dept"]), "") or p.request.query_params.get(
            "dept", ""
        )
    age = consent.age_on(patient.get("birthDate"))
    return p.render(
        "followup.html",
        status=error[2] if error else 200,
        bases=bases,
        values=values,
        error=error,
        consented=consented,
        young_child=age is not None and age < 6,
        consults=consults,
    )


def _describe_basis(repo: Repository, ref: str | None) -> dict | None:
    """What the consult follows up, in words: the earlier visit's type and date, or the diagnosis."""
    rtype, _, rid = (ref or "").partition("/")
    if rtype not in ("Encounter", "Condition") or not rid:
        return None
    try:
        record = repo.read(rtype, rid).as_dict()
    except XinglinError:
        return None
    if rtype == "Encounter":
        text = _concept_text((record.get("type") or [None])[0]) or _concept_text(record.get("serviceType"))
        return {"kind": "visit", "text": text, "when": (record.get("period") or {}).get("start")}
    return {"kind": "diagnosis", "text": _concept_text(record.get("code")), "when": record.get("recordedDate")}


def _consult_page(p: Page, consult_id: str, error: str | None = None, status: int = 200) -> Response:
    with p.repo() as repo:
        view = telehealth.consult_view(telehealth.get_consult(repo, consult_id))
        messages = [m.as_dict() for m in telehealth.list_messages(repo, consult_id)]
        prescriptions = [
            telehealth.prescription_status(repo, rx.id) for rx in telehealth.consult_prescriptions(repo, consult_id)
        ]
        basis = _describe_basis(repo, view["follow_up_of"])
    enc = view["encounter"]
    me = p.principal
    mine_as_doctor = me.role == "physician" and telehealth.accepted_by(enc).get("account") == me.label
    summary_reason = _concept_text((enc.get("reasonCode") or [None])[0])
    return p.render(
        "consult.html",
        status=status,
        image_types=",".join(sorted(IMAGE_TYPES)),
        max_image_mb=MAX_IMAGE_BYTES // (1024 * 1024),
        view=view,
        enc=enc,
        messages=messages,
        prescriptions=prescriptions,
        mine_as_doctor=mine_as_doctor,
        reason=summary_reason,
        basis=basis,
        error=error,
        concept=_concept_text,
    )


@page("/consults/{consult_id}", roles=(*PATIENT, "physician", "pharmacist"))
def consult_page(p: Page, consult_id: str) -> Response:
    return _consult_page(p, consult_id)


def _consult_action(p: Page, consult_id: str, action: Callable[[Repository], object]) -> Response:
    try:
        with p.repo() as repo:
            action(repo)
    except (NotAuthenticated, NotFound):
        raise
    except XinglinError as exc:
        return _consult_page(p, consult_id, error=p.error(exc), status=exc.status)
    return p.redirect(f"/consults/{consult_id}")


def _uploaded_image(p: Page, field: str = "image") -> dict | None:
    """The image of a form as telehealth takes it; its type and size are checked there. At most one byte more
    than allowed is read, enough for telehealth to refuse it."""
    upload = p.form.get(field)
    if not isinstance(upload, UploadFile):
        return None
    upload.file.seek(0)
    raw = upload.file.read(MAX_IMAGE_BYTES + 1)
    if not raw:
        return None  # no file chosen
    return {
        "content_type": upload.content_type or "",
        "data": base64.b64encode(raw).decode(),
        "title": _text(p.form, "image_title", 200) or None,
    }


@page("/consults/{consult_id}/message", ("POST",), roles=(*PATIENT, "physician"), max_body=UPLOAD_LIMIT)
def message(p: Page, consult_id: str) -> Response:
    text = _text(p.form, "text", 10_000)
    image = _uploaded_image(p)
    return _consult_action(
        p, consult_id, lambda repo: telehealth.post_message(repo, consult_id, text=text, image=image)
    )


@page("/consults/{consult_id}/messages/{message_id}/image", roles=(*PATIENT, "physician", "pharmacist"))
def message_image(p: Page, consult_id: str, message_id: str) -> Response:
    """An image of a consult message, for those who may see the consult; never cached or framed elsewhere."""
    try:
        index = int(p.request.query_params.get("n") or 0)
    except ValueError:
        index = -1
    with p.repo() as repo:
        image = telehealth.message_image(repo, consult_id, message_id, index)
    known = image["content_type"] in IMAGE_TYPES
    return Response(
        image["data"],
        media_type=image["content_type"] if known else "application/octet-stream",
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": "inline" if known else "attachment",
        },
    )


@page("/consults/{consult_id}/cancel", ("POST",), roles=PATIENT)
def cancel_consult(p: Page, consult_id: str) -> Response:
    return _consult_action(p, consult_id, lambda repo: telehealth.cancel_consult(repo, consult_id))


@page("/consults/{consult_id}/accept", ("POST",), roles=("physician",))
def accept(p: Page, consult_id: str) -> Response:
    """Real-name re-authentication (password again, its own audited transaction), then acceptance."""
    try:
        verified = telehealth.reauthenticate(p.store, p.principal, str(p.form.get("password", "")))
    except (NotAuthenticated, Forbidden) as exc:
        return _consult_page(p, consult_id, error=p.error(exc), status=exc.status)

    def act(repo: Repository) -> None:
        telehealth.confirm_real_name(repo, consult_id, verified)
        telehealth.accept_consult(repo, consult_id)

    return _consult_action(p, consult_id, act)


@page("/consults/{consult_id}/prescribe", ("POST",), roles=("physician",))
def prescribe(p: Page, consult_id: str) -> Response:
    quantity = None
    raw = _text(p.form, "quantity", 20)
    if raw:
        try:
            quantity = {"value": float(raw), "unit": _text(p.form, "unit", 20) or None}
        except ValueError:
            return _consult_page(p, consult_id, error=p._("The quantity must be a number"), status=422)
        quantity = {k: v for k, v in quantity.items() if v is not None}
    medication = {"text": _text(p.form, "medication", 200)} if _text(p.form, "medication", 200) else {}
    return _consult_action(
        p,
        consult_id,
        lambda repo: telehealth.prescribe(
            repo,
            consult_id,
            medication=medication,
            dosage=_text(p.form, "dosage"),
            quantity=quantity,
            note=_text(p.form, "note") or None,
            signing_secret=p.request.app.state.signing_key,
        ),
    )


@page("/consults/{consult_id}/close", ("POST",), roles=("physician",))
def close(p: Page, consult_id: str) -> Response:
    days = _text(p.form, "follow_up_days", 4)
    try:
        follow_up_days = int(days) if days else None
    except ValueError:
        return _consult_page(p, consult_id, error=p._("The number of days must be a whole number"), status=422)
    return _consult_action(
        p,
        consult_id,
        lambda repo: telehealth.close_consult(
            repo, consult_id, summary=_text(p.form, "summary", 50_000), follow_up_days=follow_up_days
        ),
    )


# --- staff -------------------------------------------------------------------------------------------------


@page("/staff/queue", roles=("physician",))
def queue(p: Page) -> Response:
    dept = p.request.query_params.get("dept") or ""
    with p.repo() as repo:
        waiting = (
            telehealth.list_consults(repo, queue=dept) if dept else telehealth.list_consults(repo, state="requested")
        )
        ongoing = telehealth.list_consults(repo, state="in-progress")
    me = f"Practitioner/{p.principal.practitioner_id}"
    mine = [v for v in map(telehealth.consult_view, ongoing) if v["physician"] == me]
    return p.render("queue.html", dept=dept, waiting=[telehealth.consult_view(s) for s in waiting], mine=mine)


@page("/staff/prescriptions", roles=("pharmacist",))
def review_queue(p: Page) -> Response:
    tag = f"{TAGS}|{ONLINE_PRESCRIPTION_TAG['code']}"
    with p.repo() as repo:
        drafts = [
            telehealth.prescription_status(repo, m.id)
            for m in repo.search("MedicationRequest", [("status", "draft"), ("_tag", tag), ("_count", "200")]).matches
        ]
        approved = [
            telehealth.prescription_status(repo, m.id)
            for m in repo.search("MedicationRequest", [("status", "active"), ("_tag", tag), ("_count", "200")]).matches
        ]
    delivering = [a for a in approved if a["delivery"] and a["delivery"]["status"] != DELIVERY_STEPS[-1]]
    return p.render(
        "review.html",
        drafts=drafts,
        approved=[a for a in approved if not a["dispense"]],
        delivering=delivering,
        error=None,
    )


def _review_action(p: Page, action: Callable[[Repository], object], msg: str) -> Response:
    try:
        with p.repo() as repo:
            action(repo)
    except (NotAuthenticated, NotFound):
        raise
    except XinglinError as exc:
        return p.render("error.html", status=exc.status, message=p.error(exc), back=p.url("/staff/prescriptions"))
    return p.redirect("/staff/prescriptions", msg=msg)


@page("/prescriptions/{rx_id}/approve", ("POST",), roles=("pharmacist",))
def approve(p: Page, rx_id: str) -> Response:
    key = p.request.app.state.signing_key
    return _review_action(p, lambda repo: telehealth.approve_prescription(repo, rx_id, signing_secret=key), "approved")


@page("/prescriptions/{rx_id}/reject", ("POST",), roles=("pharmacist",))
def reject(p: Page, rx_id: str) -> Response:
    reason = _text(p.form, "reason")
    return _review_action(p, lambda repo: telehealth.reject_prescription(repo, rx_id, reason=reason), "rejected")


@page("/prescriptions/{rx_id}/dispense", ("POST",), roles=("pharmacist",))
def dispense(p: Page, rx_id: str) -> Response:
    return _review_action(p, lambda repo: telehealth.dispense(repo, rx_id), "dispensed")


@page("/prescriptions/{rx_id}/delivery", ("POST",), roles=("pharmacist",))
def delivery(p: Page, rx_id: str) -> Response:
    step, note = _text(p.form, "status", 40), _text(p.form, "note", 500) or None
    return _review_action(p, lambda repo: telehealth.update_delivery(repo, rx_id, step=step, note=note), "delivery")


# --- admin -------------------------------------------------------------------------------------------------


def _admin_page(p: Page, *, status: int = 200, branding_error=None, slots_error=None, slot_values=None) -> Response:
    with p.repo() as repo:
        schedules = [{"id": s["id"], "doctor": _doctor(s), "dept": _dept_of(s)} for s in _search(repo, "Schedule", [])]
    today = utcnow().date()
    defaults = {"first_day": today.isoformat(), "last_day": (today + timedelta(days=13)).isoformat(), "minutes": "30"}
    return p.render(
        "admin.html",
        status=status,
        schedules=schedules,
        branding_error=branding_error,
        slots_error=slots_error,
        sv=slot_values or defaults,
        weekdays=WEEKDAY_FIELDS,
    )


@page("/admin", roles=("admin",))
def admin(p: Page) -> Response:
    return _admin_page(p)


@page("/admin/branding", ("POST",), roles=("admin",))
def branding(p: Page) -> Response:
    changes = {k: _text(p.form, k, 500) for k in tenancy.BRANDING_FIELDS}
    changes = {k: v for k, v in changes.items() if v or k == "logo_url"}
    changes["logo_url"] = changes.get("logo_url") or None
    try:
        with p.store.engine.begin() as conn:
            tenancy.update_branding(conn, p.tenant.code, changes, actor=p.principal.label)
    except XinglinError as exc:
        return _admin_page(p, status=exc.status, branding_error=(exc.element, p.error(exc)))
    return p.redirect("/admin", msg="branding")


@page("/admin/slots", ("POST",), roles=("admin",))
def slots(p: Page) -> Response:
    values = {k: _text(p.form, k, 200) for k in ("schedule", "first_day", "last_day", "minutes", *WEEKDAY_FIELDS)}
    try:
        spec = {
            day: [r.strip() for r in values[day].replace("，", ",").split(",") if r.strip()]
            for day in WEEKDAY_FIELDS
            if values[day]
        }
        if not spec:
            raise BadRequest(
                "请至少填写一天的出诊时段", "Give the sessions of at least one weekday", element="template"
            )
        try:
            first, last = date.fromisoformat(values["first_day"]), date.fromisoformat(values["last_day"])
        except ValueError:
            raise BadRequest("日期格式应为 YYYY-MM-DD", "Dates must be YYYY-MM-DD", element="first_day") from None
        try:
            minutes = int(values["minutes"] or 30)
        except ValueError:
            raise BadRequest(
                "号源时长应为整数", "slot minutes must be a whole number", element="slot_minutes"
            ) from None
        template = scheduling.parse_template(spec, slot_minutes=minutes)
        with p.repo() as repo:
            made = scheduling.generate_slots(repo, values["schedule"], first, last, template, p.tenant.time_zone)
    except (NotAuthenticated, Forbidden):
        raise
    except XinglinError as exc:
        return _admin_page(p, status=exc.status, slots_error=(exc.element, p.error(exc)), slot_values=values)
    return p.redirect("/admin", msg="slots", made=str(len(made)))


# --- admin: users ------------------------------------------------------------------------------------------


def _practitioners(p: Page) -> dict[str, str]:
    """The tenant's Practitioners, id -> name, for linking staff accounts to their real-name record."""
    with p.repo() as repo:
        found = _search(repo, "Practitioner", [])
    names = {}
    for r in found:
        name = (r.get("name") or [{}])[0]
        names[r["id"]] = name.get("text") or "".join([name.get("family", ""), *name.get("given", [])]) or r["id"]
    return names


def _users_page(p: Page, *, status: int = 200, error=None, values=None) -> Response:
    q = p.request.query_params
    role, query = q.get("role") or "", (q.get("q") or "").strip()[:128]
    if role not in tenancy.ROLES:
        role = ""
    with p.store.engine.connect() as conn:
        users = tenancy.list_users(conn, p.tenant.code, role=role or None, query=query, actor=p.principal)
    return p.render(
        "users.html",
        status=status,
        users=users,
        role=role,
        query=query,
        roles=tenancy.ROLES,
        staff_roles=tenancy.STAFF_ROLES,
        practitioners=_practitioners(p),
        error=error,
        values=values or {"role": "physician"},
        min_password=tenancy.MIN_PASSWORD,
    )


@page("/admin/users", ("GET", "POST"), roles=("admin",))
def users(p: Page) -> Response:
    if p.request.method == "GET":
        return _users_page(p)
    values = {k: _text(p.form, k, 200) for k in ("username", "display_name", "role", "practitioner")}
    try:
        if values["practitioner"]:
            with p.repo() as repo:  # the real-name record exists in this hospital (a read, audited)
                try:
                    repo.read("Practitioner", values["practitioner"])
                except NotFound:
                    raise BadRequest(
                        "所选医务人员不存在", "The chosen practitioner does not exist", element="practitioner_id"
                    ) from None
        with p.store.engine.begin() as conn:
            tenancy.add_staff_user(
                conn,
                p.tenant.code,
                values["username"],
                str(p.form.get("password", "")),
                values["role"],
                display_name=values["display_name"],
                practitioner_id=values["practitioner"] or None,
                actor=p.principal,
            )
    except (NotAuthenticated, Forbidden):
        raise
    except XinglinError as exc:
        return _users_page(p, status=exc.status, error=(exc.element, p.error(exc)), values=values)
    return p.redirect("/admin/users", msg="user-added")


def _user_page(p: Page, username: str, *, status: int = 200, error=None) -> Response:
    with p.store.engine.connect() as conn:
        account = tenancy.get_user(conn, p.tenant.code, username)
    return p.render(
        "user.html",
        status=status,
        account=account,
        practitioners=_practitioners(p),
        error=error,
        min_password=tenancy.MIN_PASSWORD,
    )


@page("/admin/users/{username}", roles=("admin",))
def user_detail(p: Page, username: str) -> Response:
    return _user_page(p, username)


def _user_change(p: Page, username: str, change: Callable, msg: str) -> Response:
    try:
        with p.store.engine.begin() as conn:
            change(conn)
    except (NotAuthenticated, Forbidden, NotFound):
        raise
    except XinglinError as exc:
        return _user_page(p, username, status=exc.status, error=(exc.element, p.error(exc)))
    return p.redirect(f"/admin/users/{quote(username, safe='')}", msg=msg)


@page("/admin/users/{username}/disable", ("POST",), roles=("admin",))
def disable_user(p: Page, username: str) -> Response:
    return _user_change(
        p,
        username,
        lambda conn: tenancy.set_user_active(conn, p.tenant.code, username, False, actor=p.principal),
        "user-disabled",
    )


@page("/admin/users/{username}/enable", ("POST",), roles=("admin",))
def enable_user(p: Page, username: str) -> Response:
    return _user_change(
        p,
        username,
        lambda conn: tenancy.set_user_active(conn, p.tenant.code, username, True, actor=p.principal),
        "user-enabled",
    )


@page("/admin/users/{username}/password", ("POST",), roles=("admin",))
def reset_password(p: Page, username: str) -> Response:
    password = str(p.form.get("password", ""))
    return _user_change(
        p,
        username,
        lambda conn: tenancy.reset_password(conn, p.tenant.code, username, password, actor=p.principal),
        "password-reset",
    )
