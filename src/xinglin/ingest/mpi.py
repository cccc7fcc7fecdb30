"""Master patient index: the same person from several files or hospitals becomes one Patient.

* The same resident ID number, or the same source identifier (system = source name), is the same Patient.
* Otherwise a score over name (exact, or the same pinyin: 张伟/章玮; traditional characters folded),
  birth date, sex and phone. At or above ``match_threshold`` the row is matched; between the thresholds a
  new Patient is created *and* a review Task (code ``https://xinglin.dev/CodeSystem/ingest-task|mpi-review``)
  names both candidates. Nothing is merged silently: :func:`resolve_review` merges (source identifiers are
  linked onto the kept Patient, the other is marked ``link.type = replaced-by`` and inactive) or keeps them
  apart, on a person's decision.

Everything is FHIR in the store: candidates are found with ordinary searches, reviews are Tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from xinglin.core.clock import fhir_instant, utcnow
from xinglin.core.errors import BadRequest, Conflict
from xinglin.ingest.normalise import ID_CARD_SYSTEM, PersonName, Sex, name_key, name_pinyin
from xinglin.store.repository import Repository

TASK_SYSTEM = "https://xinglin.dev/CodeSystem/ingest-task"
REVIEW_CODE = "mpi-review"
SOURCE_SYSTEM = "https://xinglin.dev/ingest/source/"

W_NAME, W_PINYIN, W_BIRTH, W_SEX, W_PHONE = 0.35, 0.2, 0.3, 0.1, 0.25
P_BIRTH, P_SEX = -0.2, -0.3


@dataclass(slots=True)
class Person:
    """Who a row is about, normalised."""

    name: PersonName | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    phones: tuple[str, ...] = ()
    id_number: str | None = None
    source_id: tuple[str, str] | None = None  # (system, value) of the source's own record

    def identifiers(self) -> list[tuple[str, str]]:
        out = []
        if self.id_number:
            out.append((ID_CARD_SYSTEM, self.id_number))
        if self.source_id:
            out.append(self.source_id)
        return out


@dataclass
class Candidate:
    """A Patient as the index sees it."""

    id: str
    body: dict
    stored: bool  # exists in the database (False: created in the current chunk)
    identifiers: set[tuple[str, str]] = field(default_factory=set)
    name: str | None = None
    birth_date: str | None = None
    gender: str | None = None
    phones: set[str] = field(default_factory=set)
    replaced_by: str | None = None
    dirty: bool = False  # body changed (identifiers added) and must be written

    @classmethod
    def from_body(cls, body: dict, *, stored: bool) -> Candidate:
        names = body.get("name") or [{}]
        n = names[0]
        text = n.get("text") or "".join([n.get("family", ""), *n.get("given", [])]) or None
        replaced = next(
            (lk["other"]["reference"].split("/")[-1] for lk in body.get("link", []) if lk.get("type") == "replaced-by"),
            None,
        )
        return cls(
            id=body["id"],
            body=body,
            stored=stored,
            identifiers={(i.get("system", ""), i.get("value", "")) for i in body.get("identifier", [])},
            name=text,
            birth_date=body.get("birthDate"),
            gender=body.get("gender"),
            phones={t["value"] for t in body.get("telecom", []) if t.get("system") == "phone" and t.get("value")},
            replaced_by=replaced,
        )

    @property
    def id_number(self) -> str | None:
        return next((v for s, v in self.identifiers if s == ID_CARD_SYSTEM), None)

    def add_identifier(self, system: str, value: str) -> bool:
        if (system, value) in self.identifiers:
            return False
        self.identifiers.add((system, value))
        self.body.setdefault("identifier", []).append({"system": system, "value": value})
        self.dirty = True
        return True


@dataclass
class Decision:
    kind: str  # identifier | match | review | new
    candidate: Candidate | None = None
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def score(person: Person, cand: Candidate) -> tuple[float, list[str]]:
    """0..1 agreement between a row's person and a Patient, with the evidence."""
    if person.id_number and cand.id_number and person.id_number != cand.id_number:
        return 0.0, ["id_number_differs"]
    s, why = 0.0, []
    if person.name and cand.name:
        if name_key(person.name.text) == name_key(cand.name):
            s, why = s + W_NAME, [*why, "name"]
        elif name_pinyin(person.name.text) == name_pinyin(cand.name):
            s, why = s + W_PINYIN, [*why, "name_pinyin"]
    if person.birth_date and cand.birth_date:
        if person.birth_date.isoformat() == cand.birth_date:
            s, why = s + W_BIRTH, [*why, "birth_date"]
        else:
            s, why = s + P_BIRTH, [*why, "birth_date_differs"]
    if person.sex and person.sex.fhir != "unknown" and cand.gender and cand.gender != "unknown":
        if person.sex.fhir == cand.gender:
            s, why = s + W_SEX, [*why, "sex"]
        else:
            s, why = s + P_SEX, [*why, "sex_differs"]
    if person.phones and cand.phones and set(person.phones) & cand.phones:
        s, why = s + W_PHONE, [*why, "phone"]
    return round(max(0.0, min(1.0, s)), 4), why


class MatchIndex:
    """Candidates of one chunk: loaded from the store by identifier, phone and birth date, plus new ones."""

    def __init__(self, match_threshold: float = 0.9, review_threshold: float = 0.6):
        self.match_threshold = match_threshold
        self.review_threshold = review_threshold
        self.by_id: dict[str, Candidate] = {}
        self.by_identifier: dict[tuple[str, str], list[Candidate]] = {}
        self.blocks: dict[str, list[Candidate]] = {}

    def add(self, cand: Candidate) -> Candidate:
        if cand.id in self.by_id:
            return self.by_id[cand.id]
        self.by_id[cand.id] = cand
        for ident in cand.identifiers:
            self.by_identifier.setdefault(ident, []).append(cand)
        for key in self._block_keys(cand.birth_date, cand.phones):
            self.blocks.setdefault(key, []).append(cand)
        return cand

    def reindex_identifiers(self, cand: Candidate) -> None:
        for ident in cand.identifiers:
            bucket = self.by_identifier.setdefault(ident, [])
            if cand not in bucket:
                bucket.append(cand)

    @staticmethod
    def _block_keys(birth: str | None, phones: Iterable[str]) -> list[str]:
        return ([f"b:{birth}"] if birth else []) + [f"p:{p}" for p in phones]

    def _live(self, cand: Candidate) -> Candidate:
        seen = set()
        while cand.replaced_by and cand.replaced_by in self.by_id and cand.id not in seen:
            seen.add(cand.id)
            cand = self.by_id[cand.replaced_by]
        return cand

    def decide(self, person: Person) -> Decision:
        for ident in person.identifiers():
            hits = [self._live(c) for c in self.by_identifier.get(ident, [])]
            live = [c for c in hits if not c.replaced_by]
            if live:
                return Decision(
                    "identifier", live[0], 1.0, ["id_number" if ident[0] == ID_CARD_SYSTEM else "source_id"]
                )
        keys = self._block_keys(person.birth_date.isoformat() if person.birth_date else None, person.phones)
        seen: set[str] = set()
        scored: list[tuple[float, list[str], Candidate]] = []
        for key in keys:
            for cand in self.blocks.get(key, []):
                if cand.id in seen or cand.replaced_by:
                    continue
                seen.add(cand.id)
                s, why = score(person, cand)
                if s >= self.review_threshold:
                    scored.append((s, why, cand))
        if not scored:
            return Decision("new")
        scored.sort(key=lambda t: (-t[0], t[2].id))
        best_s, why, best = scored[0]
        if best_s >= self.match_threshold and (len(scored) == 1 or scored[1][0] < self.match_threshold):
            return Decision("match", best, best_s, why)
        return Decision("review", best, best_s, why)


# --------------------------------------------------------------------------------------------------
# Loading candidates from the store


def _search_all(repo: Repository, rtype: str, param: str, values: list[str], batch: int = 200) -> list[dict]:
    out: list[dict] = []
    values = sorted(set(values))
    for i in range(0, len(values), batch):
        joined = ",".join(v.replace(",", "\\,") for v in values[i : i + batch])
        out.extend(m.as_dict() for m in repo.search_all(rtype, [(param, joined)]))
    return out


def load_candidates(repo: Repository, index: MatchIndex, persons: list[Person]) -> None:
    """Adds to the index every stored Patient that could match one of the persons."""
    idents = [f"{s}|{v}" for p in persons for s, v in p.identifiers()]
    phones = [ph for p in persons for ph in p.phones]
    births = [p.birth_date.isoformat() for p in persons if p.birth_date]
    bodies = _search_all(repo, "Patient", "identifier", idents) if idents else []
    if phones:
        bodies += _search_all(repo, "Patient", "phone", phones)
    if births:
        bodies += _search_all(repo, "Patient", "birthdate", births)
    for body in bodies:
        index.add(Candidate.from_body(body, stored=True))
    # follow replaced-by links to the kept Patients
    missing = {c.replaced_by for c in list(index.by_id.values()) if c.replaced_by and c.replaced_by not in index.by_id}
    if missing:
        for body in _search_all(repo, "Patient", "_id", sorted(missing)):
            index.add(Candidate.from_body(body, stored=True))


# --------------------------------------------------------------------------------------------------
# The review queue (FHIR Task)


def review_task(new_id: str, existing_id: str, score_: float, reasons: list[str], origin: str) -> dict:
    def code(c: str) -> dict:
        return {"coding": [{"system": TASK_SYSTEM, "code": c}]}

    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "proposal",
        "priority": "routine",
        "code": {
            "coding": [{"system": TASK_SYSTEM, "code": REVIEW_CODE, "display": "患者匹配复核 / Patient match review"}]
        },
        "description": "可能是同一患者，请复核 / Possibly the same patient: please review",
        "focus": {"reference": f"Patient/{new_id}"},
        "for": {"reference": f"Patient/{existing_id}"},
        "authoredOn": fhir_instant(utcnow()),
        "input": [
            {"type": code("candidate"), "valueReference": {"reference": f"Patient/{existing_id}"}},
            {"type": code("candidate"), "valueReference": {"reference": f"Patient/{new_id}"}},
            {"type": code("score"), "valueDecimal": score_},
            {"type": code("evidence"), "valueString": ",".join(reasons)},
            {"type": code("origin"), "valueString": origin},
        ],
    }


@dataclass
class Review:
    task_id: str
    status: str
    candidates: list[str]  # Patient ids: [existing, new]
    score: float | None
    evidence: list[str]
    origin: str | None
    decision: str | None


def _review_of(task: dict) -> Review:
    cands, score_, evidence, origin = [], None, [], None
    for item in task.get("input", []):
        kind = item.get("type", {}).get("coding", [{}])[0].get("code")
        if kind == "candidate":
            cands.append(item["valueReference"]["reference"].split("/")[-1])
        elif kind == "score":
            score_ = float(item["valueDecimal"])
        elif kind == "evidence":
            evidence = [e for e in item.get("valueString", "").split(",") if e]
        elif kind == "origin":
            origin = item.get("valueString")
    decision = (task.get("businessStatus") or {}).get("text")
    return Review(task["id"], task["status"], cands, score_, evidence, origin, decision)


def list_reviews(repo: Repository, *, status: str | None = "requested") -> list[Review]:
    """Review Tasks of the tenant (open ones by default; status=None lists all)."""
    params = [("code", f"{TASK_SYSTEM}|{REVIEW_CODE}")]
    if status:
        params.append(("status", status))
    return [_review_of(m.as_dict()) for m in repo.search_all("Task", params)]


def resolve_review(repo: Repository, task_id: str, decision: str, *, keep: str | None = None) -> Review:
    """``merge``: the other Patient's identifiers and phones are linked onto the kept one (default: the Patient
    that existed first), the other becomes inactive with ``link.type = replaced-by``. ``separate``: both stay.
    """
    if decision not in ("merge", "separate"):
        raise BadRequest("decision 应为 merge 或 separate", "decision must be merge or separate", element="decision")
    task = repo.read("Task", task_id).as_dict()
    codes = {(c.get("system"), c.get("code")) for c in task.get("code", {}).get("coding", [])}
    if (TASK_SYSTEM, REVIEW_CODE) not in codes:
        raise BadRequest(f"Task/{task_id} 不是患者匹配复核任务", f"Task/{task_id} is not a patient-match review")
    if task["status"] != "requested":
        raise Conflict(f"Task/{task_id} 已处理（{task['status']}）", f"Task/{task_id} is already {task['status']}")
    review = _review_of(task)
    if len(review.candidates) != 2:
        raise BadRequest(f"Task/{task_id} 应有两个候选患者", f"Task/{task_id} must name two candidate patients")
    output = []
    if decision == "merge":
        keep_id = keep or review.candidates[0]
        if keep_id not in review.candidates:
            raise BadRequest("keep 应为候选患者之一", "keep must be one of the candidates", element="keep")
        other_id = next(c for c in review.candidates if c != keep_id)
        kept = repo.read("Patient", keep_id).as_dict()
        other = repo.read("Patient", other_id).as_dict()
        have = {(i.get("system"), i.get("value")) for i in kept.get("identifier", [])}
        for ident in other.get("identifier", []):
            if (ident.get("system"), ident.get("value")) not in have:
                kept.setdefault("identifier", []).append(ident)
        phones = {t.get("value") for t in kept.get("telecom", [])}
        kept.setdefault("telecom", []).extend(t for t in other.get("telecom", []) if t.get("value") not in phones)
        if not kept["telecom"]:
            del kept["telecom"]
        kept.setdefault("link", []).append({"other": {"reference": f"Patient/{other_id}"}, "type": "replaces"})
        other["active"] = False
        other["link"] = [
            *[lk for lk in other.get("link", []) if lk.get("type") != "replaced-by"],
            {"other": {"reference": f"Patient/{keep_id}"}, "type": "replaced-by"},
        ]
        for body in (kept, other):
            body.pop("meta", None)
        repo.update("Patient", keep_id, kept)
        repo.update("Patient", other_id, other)
        output.append({"type": {"text": "kept"}, "valueReference": {"reference": f"Patient/{keep_id}"}})
    task["status"] = "completed"
    task["businessStatus"] = {"text": "merged" if decision == "merge" else "kept-separate"}
    task["lastModified"] = fhir_instant(utcnow())
    if output:
        task["output"] = output
    task.pop("meta", None)
    repo.update("Task", task_id, task)
    return _review_of(task)
