"""Ingest: files in, FHIR resources out through the repository, with a report whose counts add up.

    report = ingest(store, "ruijin", ["export.csv"], profile=None, dry_run=False, source_name=None)

For each file: open and check it (encoding, format, truncation, required columns) before anything is
written; infer a profile from the headers unless one is given; then stream it: blocks of rows are normalised
column by column (:mod:`xinglin.ingest.clean`; a row that does not clean is rejected with its number and
reason), and in chunks of rows each row's person is matched in the master patient index and the chunk's
Patients, Encounters, Conditions, Observations and review Tasks are written with one ``create_many`` in one
unit of work (all or nothing per chunk). Re-running is safe: every Condition/Observation carries an identifier
``{source}/row|{row hash}#n``; a row whose first resource exists is skipped, and Patients and Encounters
are found again by their identifiers. A run killed mid-file loses at most the chunks in flight, which the
next run writes.

On PostgreSQL a long file's chunks are written by writer processes (:mod:`xinglin.ingest.writers`): this process
plans chunk after chunk (matching, building the resources) on top of what the chunks still in flight create,
while the writers validate, index and insert earlier ones, several at once, committing strictly in order.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from xinglin.core.errors import XinglinError
from xinglin.core.ids import new_resource_id
from xinglin.ingest import mpi
from xinglin.ingest.clean import BLOCK_ROWS, CleanRow, RowCleaner, RowRejected, clean_source, source_system
from xinglin.ingest.normalise import (
    GB2261_DISPLAY,
    GB2261_SYSTEM,
    ID_CARD_SYSTEM,
    LOINC,
    UCUM,
    LabResult,
    fhir_datetime,
    unit_display,
)
from xinglin.ingest.profile import Profile, infer_profile
from xinglin.ingest.readers import Source, SourceRow, open_source
from xinglin.ingest.report import IngestReport
from xinglin.ingest.writers import Writers
from xinglin.security.principal import system_principal
from xinglin.store.models import INDEX_TABLES
from xinglin.store.repository import Repository, Store
from xinglin.tenancy.service import get_tenant

CHUNK_ROWS = 2000
ENCOUNTER_CACHE = 200_000  # visit keys -> Encounter ids remembered across chunks of a run
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


# --------------------------------------------------------------------------------------------------
# Building resources


def _patient_body(pid: str, row: CleanRow, system: str) -> dict:
    p = row.person
    body: dict[str, Any] = {"resourceType": "Patient", "id": pid, "active": True}
    idents = []
    if p.id_number:
        idents.append(
            {
                "use": "official",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
                "system": ID_CARD_SYSTEM,
                "value": p.id_number,
            }
        )
    if p.source_id:
        idents.append({"use": "usual", "system": p.source_id[0], "value": p.source_id[1]})
    if idents:
        body["identifier"] = idents
    if p.name:
        name: dict[str, Any] = {"use": "official", "text": p.name.text}
        if p.name.family:
            name["family"] = p.name.family
        if p.name.given:
            name["given"] = [p.name.given]
        body["name"] = [name]
    if p.sex:
        body["gender"] = p.sex.fhir
        body["extension"] = [
            {
                "url": "https://xinglin.dev/StructureDefinition/gb-t-2261.1-sex",
                "valueCoding": {"system": GB2261_SYSTEM, "code": p.sex.gb, "display": GB2261_DISPLAY[p.sex.gb]},
            }
        ]
    if p.birth_date:
        body["birthDate"] = p.birth_date.isoformat()
    if p.phones:
        body["telecom"] = [
            {"system": "phone", "value": ph, "use": "mobile" if "-" not in ph and len(ph) == 11 else "home"}
            for ph in p.phones
        ]
    if row.address:
        body["address"] = [{"use": "home", **row.address.fhir()}]
    return body


def _quantity(value: float, unit: str | None, unit_text: str | None) -> dict:
    q: dict[str, Any] = {"value": value}
    if unit:
        q.update(unit=unit_display(unit), system=UCUM, code=unit)
    elif unit_text:
        q["unit"] = unit_text
    return q


def _observation(lab: LabResult, when: date | datetime | None, patient: str, encounter: str | None, offset: str):
    code: dict[str, Any] = {"text": lab.item}
    if lab.analyte:
        code["coding"] = [{"system": LOINC, "code": lab.analyte.loinc, "display": lab.analyte.display}]
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": code,
        "subject": {"reference": f"Patient/{patient}"},
    }
    if encounter:
        body["encounter"] = {"reference": f"Encounter/{encounter}"}
    if when is not None:
        body["effectiveDateTime"] = fhir_datetime(when, offset)
    v = lab.value
    if v.value is not None:
        q = _quantity(v.value, lab.unit, lab.unit_text)
        if v.comparator:
            q["comparator"] = v.comparator
        body["valueQuantity"] = q
        if lab.ref is not None and v.comparator is None:
            if lab.ref.high is not None and v.value > lab.ref.high:
                flag = ("H", "High")
            elif lab.ref.low is not None and v.value < lab.ref.low:
                flag = ("L", "Low")
            elif lab.ref.low is not None or lab.ref.high is not None:
                flag = ("N", "Normal")
            else:
                flag = None
            if flag:
                body["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag[0], "display": flag[1]}]}]
    else:
        body["valueString"] = v.text
    if lab.ref is not None:
        rr: dict[str, Any] = {"text": lab.ref.text}
        if lab.ref.low is not None:
            rr["low"] = _quantity(lab.ref.low, lab.unit, lab.unit_text)
        if lab.ref.high is not None:
            rr["high"] = _quantity(lab.ref.high, lab.unit, lab.unit_text)
        body["referenceRange"] = [rr]
    return body


# --------------------------------------------------------------------------------------------------
# Chunks


@dataclass
class _Plan:
    items: list[tuple[str, dict, str | None]] = field(default_factory=list)
    item_rows: list[int] = field(default_factory=list)  # index into the chunk's rows, per item
    updates: list[mpi.Candidate] = field(default_factory=list)
    created_patients: set[str] = field(default_factory=set)
    created_encounters: dict[str, str] = field(default_factory=dict)
    known_encounters: dict[str, str] = field(default_factory=dict)  # visit key -> Encounter id, after the chunk
    candidates: list[mpi.Candidate] = field(default_factory=list)  # Patients this chunk creates
    matched_existing: set[str] = field(default_factory=set)
    seen: set[tuple[str, str]] = field(default_factory=set)  # (source system, row hash)
    report: IngestReport = field(default_factory=IngestReport)


class _Retry(Exception):
    def __init__(self, row: CleanRow, error: XinglinError):
        super().__init__(error.en)
        self.row = row
        self.error = error


@dataclass(eq=False)
class _Flight:
    """A chunk handed to a writer process, until it has committed."""

    rows: list[CleanRow]
    profile: Profile
    system: str
    report: IngestReport  # the rows' rejections and warnings; the plan's counts join it once written
    done: Callable[[IngestReport, int], None]
    count: int  # rows of the chunk as read (for the progress bar)
    seq: int = 0
    plan: _Plan = field(default_factory=lambda: _Plan())
    future: Any = None
    new_seen: set[tuple[str, str]] = field(default_factory=set)
    new_matched: set[str] = field(default_factory=set)


DiagnosisCoder = Callable[[str], list[dict]]


class _Run:
    def __init__(self, store: Store, tenant_code: str, *, dry_run: bool, coder: DiagnosisCoder | None, offset: str):
        with store.engine.begin() as conn:
            tenant = get_tenant(conn, tenant_code)
        self.store = store
        self.principal = system_principal(tenant.id, tenant.code, name="ingest", purpose="HOPERAT")
        self.dry_run = dry_run
        self.coder = coder
        self.offset = offset
        self.existing_matched: set[str] = set()  # Patients from before the run that rows matched
        self.run_created: set[str] = set()
        self.seen_hashes: set[tuple[str, str]] = set()
        self.source_has_rows: dict[str, bool] = {}  # row-identifier system -> rows of it were stored before the run
        # dry runs write nothing, so what earlier chunks "created" is carried here
        self.pending: list[mpi.Candidate] = []
        self.pending_encounters: dict[str, str] = {}
        # Encounters this run created or found (bounded): a visit system with no Encounter stored before the run
        # needs no look-up for keys the run has not seen, as long as nothing was evicted from this cache
        self.encounter_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.encounters_evicted = False
        self.visit_has_stored: dict[str, bool] = {}
        # PostgreSQL plans the look-ups of later chunks from table statistics; after a bulk load they are stale
        # (an empty table looks like one row and the identifier searches become nested loops), so they are
        # refreshed as the run's writes double
        self.written = 0
        self.analyze_at = 1000 if store.engine.dialect.name == "postgresql" and not dry_run else None
        # chunks written by other processes (see start_writers): planned here, in order, while earlier ones are
        # written; what they create or change is known here before it is in the database
        self.writers: Writers | None = None
        self.flight: deque[_Flight] = deque()
        self.in_flight_patients: dict[str, mpi.Candidate] = {}  # Patients created or changed by chunks in flight
        self.patient_seq: dict[str, int] = {}  # ... and the last chunk that did
        # Encounters created by chunks in flight (whatever the cache keeps): (source system, visit key) -> id
        self.in_flight_encounters: dict[tuple[str, str], str] = {}
        self.encounter_seq: dict[tuple[str, str], int] = {}
        self.seq = 0
        self.last_committed = 0
        self.depth = 0

    # one chunk, retried without a row whose resources the store refuses
    def chunk(self, rows: list[CleanRow], profile: Profile, system: str, report: IngestReport) -> None:
        rows = list(rows)
        while True:
            try:
                with self.store.unit_of_work(self.principal) as repo:
                    plan = self._plan(repo, rows, profile, system)
                    if not self.dry_run:
                        try:
                            for cand in plan.updates:
                                repo.update("Patient", cand.id, {k: v for k, v in cand.body.items() if k != "meta"})
                            if plan.items:
                                repo.create_many(plan.items)
                        except XinglinError as exc:
                            bad = getattr(exc, "item_index", None)
                            if bad is None or not plan.items:
                                raise
                            raise _Retry(rows[plan.item_rows[bad]], exc) from None
            except _Retry as retry:
                row = retry.row
                report.reject(row.file, row.number, retry.error.element or "", "fhir_invalid", row.segment)
                rows = [r for r in rows if r is not row]
                continue
            break
        report.merge(plan.report)
        self._written(plan)
        self.run_created |= plan.created_patients
        self.existing_matched |= plan.matched_existing
        self.seen_hashes |= plan.seen
        if self.dry_run:
            self.pending.extend(plan.candidates)
            self.pending_encounters.update(plan.created_encounters)
        else:
            self._remember_encounters(system, plan)

    # --- chunks written in other processes ---------------------------------------------------------------

    def start_writers(self, processes: int) -> None:
        self.writers = Writers(self.store, self.principal, processes)
        self.depth = processes + 1  # chunks in flight: one waiting for each writer, one being planned

    def submit(
        self,
        rows: list[CleanRow],
        profile: Profile,
        system: str,
        report: IngestReport,
        done: Callable[[IngestReport, int], None],
        count: int,
    ) -> None:
        """Plans a chunk here and hands it to a writer; ``done(report, count)`` runs once it has committed."""
        flight = _Flight(list(rows), profile, system, report, done, count)
        self._launch(flight)
        while len(self.flight) > self.depth:
            self._settle()

    def finish(self) -> None:
        """Waits for every chunk in flight; stops the writers."""
        try:
            while self.flight:
                self._settle()
        finally:
            self.close_writers()

    def close_writers(self) -> None:
        if self.writers is not None:
            self.writers.abort_through(self.seq)  # (only chunks still in flight after an error)
            self.writers.close()
            self.writers = None

    def _launch(self, flight: _Flight) -> None:
        assert self.writers is not None
        with self.store.unit_of_work(self.principal) as repo:
            plan = self._plan(repo, flight.rows, flight.profile, flight.system)
        self.seq += 1
        flight.seq, flight.plan = self.seq, plan
        after = self.flight[-1].seq if self.flight else self.last_committed
        updates = [(c.id, {k: v for k, v in c.body.items() if k != "meta"}) for c in plan.updates]
        flight.future = self.writers.submit(flight.seq, after, plan.items, updates)
        # what the chunk changes, now (undone if it fails): the next chunks are planned on top of it
        flight.new_seen = plan.seen - self.seen_hashes
        flight.new_matched = plan.matched_existing - self.existing_matched
        self.run_created |= plan.created_patients
        self.existing_matched |= flight.new_matched
        self.seen_hashes |= flight.new_seen
        self._remember_encounters(flight.system, plan)
        for cand in itertools.chain(plan.candidates, plan.updates):
            cand.stored = True  # (stored before any later chunk commits: changes to it are updates)
            self.in_flight_patients[cand.id] = cand
            self.patient_seq[cand.id] = flight.seq
        for k, enc_id in plan.created_encounters.items():
            self.in_flight_encounters[(flight.system, k)] = enc_id
            self.encounter_seq[(flight.system, k)] = flight.seq
        self.flight.append(flight)

    def _settle(self) -> None:
        """Waits for the oldest chunk in flight; when the store refused one of its resources, that row is rejected
        and the chunks in flight are planned again (without it)."""
        flight = self.flight[0]
        try:
            outcome = flight.future.result()
        except BaseException:
            self.close_writers()
            raise
        plan = flight.plan
        if outcome[0] == "ok":
            self.flight.popleft()
            self.last_committed = flight.seq
            for pid in [pid for pid, seq in self.patient_seq.items() if seq == flight.seq]:
                del self.patient_seq[pid], self.in_flight_patients[pid]  # the database has them now
            for key in [key for key, seq in self.encounter_seq.items() if seq == flight.seq]:
                del self.encounter_seq[key], self.in_flight_encounters[key]
            flight.report.merge(plan.report)
            self._written(plan)
            flight.done(flight.report, flight.count)
            return
        assert outcome[0] == "invalid", outcome
        _, index, element, _en = outcome
        assert self.writers is not None
        self.writers.abort_through(self.seq)
        for later in list(self.flight)[1:]:
            later.future.result()  # rolled back: none of them can commit before this one
        for f in reversed(self.flight):  # forget what the chunks in flight would have written
            self.run_created -= f.plan.created_patients
            self.existing_matched -= f.new_matched
            self.seen_hashes -= f.new_seen
        again = list(self.flight)
        self.flight.clear()
        self.in_flight_patients.clear()
        self.patient_seq.clear()
        self.in_flight_encounters.clear()
        self.encounter_seq.clear()
        self.encounter_cache.clear()  # (the Encounters of the chunks that did commit are found again)
        self.encounters_evicted = True
        row = flight.rows[plan.item_rows[index]]
        flight.report.reject(row.file, row.number, element, "fhir_invalid", row.segment)
        flight.rows = [r for r in flight.rows if r is not row]
        for f in again:
            self._launch(f)

    def _written(self, plan: _Plan) -> None:
        self.written += plan.report.resources_written
        if self.analyze_at is not None and self.written >= self.analyze_at:
            self.analyze_at = self.written * 2
            self._analyze()

    def _remember_encounters(self, system: str, plan: _Plan) -> None:
        cache = self.encounter_cache
        for k, enc_id in plan.known_encounters.items():
            cache[(system, k)] = enc_id
            cache.move_to_end((system, k))
        while len(cache) > ENCOUNTER_CACHE:
            cache.popitem(last=False)
            self.encounters_evicted = True

    def _analyze(self) -> None:
        try:
            with self.store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE resource, " + ", ".join(t.name for t in INDEX_TABLES.values()))
        except Exception:  # statistics are an optimisation: a role that may not ANALYZE still ingests
            return

    def _existing_rows(self, repo: Repository, rows: list[CleanRow], row_system: str) -> set[str]:
        anchors = [f"{r.hash}#1" for r in rows if r.diagnoses or r.labs]
        if not anchors:
            return set()
        if row_system not in self.source_has_rows:  # a source never ingested before needs no per-row look-up
            self.source_has_rows[row_system] = any(
                repo.search(rtype, [("identifier", f"{row_system}|"), ("_count", "1"), ("_total", "none")]).matches
                for rtype in ("Condition", "Observation")
            )
        if not self.source_has_rows[row_system]:
            return set()
        found: set[str] = set()
        for rtype in ("Condition", "Observation"):
            for body in mpi._search_all(repo, rtype, "identifier", [f"{row_system}|{a}" for a in anchors]):
                for ident in body.get("identifier", []):
                    if ident.get("system") == row_system:
                        found.add(ident["value"].split("#")[0])
        return found

    def _encounters(self, repo: Repository, keys: list[str], visit_system: str) -> dict[str, str]:
        if not keys:
            return {}
        if visit_system not in self.visit_has_stored:  # checked before the run writes any Encounter of it
            self.visit_has_stored[visit_system] = bool(
                repo.search(
                    "Encounter", [("identifier", f"{visit_system}|"), ("_count", "1"), ("_total", "none")]
                ).matches
            )
        if not self.visit_has_stored[visit_system] and not self.encounters_evicted:
            return {}
        out = {}
        for body in mpi._search_all(repo, "Encounter", "identifier", [f"{visit_system}|{k}" for k in keys]):
            for ident in body.get("identifier", []):
                if ident.get("system") == visit_system:
                    out[ident["value"]] = body["id"]
        return out

    def _plan(self, repo: Repository, rows: list[CleanRow], profile: Profile, system: str) -> _Plan:
        plan = _Plan()
        rep = plan.report
        row_system, visit_system = system + "/row", system + "/visit"
        index = mpi.MatchIndex(profile.match_threshold, profile.review_threshold)
        for cand in itertools.chain(self.pending, self.in_flight_patients.values()):
            index.add(cand)  # (before the stored ones: these carry what the chunks in flight changed)
        mpi.load_candidates(repo, index, [r.person for r in rows])
        done = self._existing_rows(repo, rows, row_system)

        def visit_key(row: CleanRow, patient_key: str) -> str | None:
            if row.visit_id:
                return row.visit_id
            if row.visit is None:
                return None
            day = row.visit.date() if isinstance(row.visit, datetime) else row.visit
            return f"{patient_key}|{day.isoformat()}"

        def person_key(row: CleanRow) -> str:
            p = row.person
            if p.source_id:
                return p.source_id[1]
            basis = [p.id_number or "", p.name.text if p.name else "", str(p.birth_date or ""), *p.phones]
            return "h:" + hashlib.sha256("|".join(basis).encode()).hexdigest()[:20]

        # patient per row
        chosen: list[tuple[CleanRow, mpi.Candidate, str]] = []
        matched_existing = plan.matched_existing
        updated: set[str] = set()
        for i, row in enumerate(rows):
            p = row.person
            if p.source_id is None:
                p.source_id = (system, person_key(row))
            decision = index.decide(p)
            if decision.kind in ("identifier", "match"):
                cand = decision.candidate
                assert cand is not None
                outcome = "matched"
                if cand.stored and cand.id not in self.run_created:
                    matched_existing.add(cand.id)
                for sysname, value in p.identifiers():
                    if sysname == mpi.ID_CARD_SYSTEM and cand.id_number:
                        continue
                    if cand.add_identifier(sysname, value):
                        index.reindex_identifiers(cand)
                        if cand.stored and cand.id not in updated:
                            updated.add(cand.id)
                            plan.updates.append(cand)
            else:
                pid = new_resource_id()
                body = _patient_body(pid, row, system)
                cand = index.add(mpi.Candidate.from_body(body, stored=False))
                plan.items.append(("Patient", body, pid))
                plan.item_rows.append(i)
                plan.created_patients.add(pid)
                plan.candidates.append(cand)
                rep.patients_created += 1
                rep.resources_by_type["Patient"] += 1
                outcome = "stored"
                if decision.kind == "review":
                    assert decision.candidate is not None
                    origin = f"{row.file} row {row.number}" + (f" segment {row.segment}" if row.segment else "")
                    task = mpi.review_task(pid, decision.candidate.id, decision.score, decision.reasons, origin)
                    plan.items.append(("Task", task, None))
                    plan.item_rows.append(i)
                    rep.reviews_created += 1
                    rep.resources_by_type["Task"] += 1
            chosen.append((i, row, cand, outcome))
        rep.patients_matched += len(matched_existing - self.existing_matched)
        rep.patients_updated += len(plan.updates)

        # encounters, conditions, observations
        keys = {}
        for _, row, cand, _ in chosen:
            k = visit_key(row, cand.id)
            if k:
                keys[id(row)] = k
        known = dict(self.pending_encounters)
        for k in set(keys.values()) - set(known):
            enc_id = self.encounter_cache.get((system, k)) or self.in_flight_encounters.get((system, k))
            if enc_id is not None:
                known[k] = enc_id
        known.update(self._encounters(repo, sorted(set(keys.values()) - set(known)), visit_system))
        plan.known_encounters = {k: known[k] for k in set(keys.values()) if k in known}
        for i, row, cand, outcome in chosen:
            if outcome == "stored":
                rep.rows_stored += 1
            else:
                rep.rows_matched += 1
            key = (system, row.hash)
            already = row.hash in done or key in self.seen_hashes or key in plan.seen
            plan.seen.add(key)
            if already:
                rep.rows_already_ingested += 1
                continue
            enc_id = None
            k = keys.get(id(row))
            if k:
                enc_id = known.get(k)
                if enc_id is None:
                    enc_id = new_resource_id()
                    known[k] = enc_id
                    plan.created_encounters[k] = enc_id
                    enc: dict[str, Any] = {
                        "resourceType": "Encounter",
                        "identifier": [{"system": visit_system, "value": k}],
                        "status": "finished",
                        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
                        "subject": {"reference": f"Patient/{cand.id}"},
                    }
                    if row.visit is not None:
                        enc["period"] = {"start": fhir_datetime(row.visit, self.offset)}
                    plan.items.append(("Encounter", enc, enc_id))
                    plan.item_rows.append(i)
                    rep.resources_by_type["Encounter"] += 1
            n = 0
            for text in row.diagnoses:
                n += 1
                cond: dict[str, Any] = {
                    "resourceType": "Condition",
                    "identifier": [{"system": row_system, "value": f"{row.hash}#{n}"}],
                    "category": [{"coding": [{"system": COND_CATEGORY, "code": "encounter-diagnosis"}]}],
                    "code": {"text": text},
                    "subject": {"reference": f"Patient/{cand.id}"},
                }
                codes = self._code(text, profile)
                if codes:
                    cond["code"]["coding"] = codes
                    rep.diagnoses_coded += 1
                else:
                    rep.unmapped_value("diagnosis", text)
                if enc_id:
                    cond["encounter"] = {"reference": f"Encounter/{enc_id}"}
                if row.visit is not None:
                    cond["recordedDate"] = fhir_datetime(row.visit, self.offset)
                plan.items.append(("Condition", cond, None))
                plan.item_rows.append(i)
                rep.resources_by_type["Condition"] += 1
            for lab, when in row.labs:
                n += 1
                obs = _observation(lab, when, cand.id, enc_id, self.offset)
                obs["identifier"] = [{"system": row_system, "value": f"{row.hash}#{n}"}]
                plan.items.append(("Observation", obs, None))
                plan.item_rows.append(i)
                rep.resources_by_type["Observation"] += 1
                if lab.converted:
                    rep.lab_units_converted += 1
                if lab.analyte is None:
                    rep.unmapped_value("lab_item", lab.item)
                if lab.unit_text:
                    rep.unmapped_value("unit", f"{lab.item} | {lab.unit_text}")
        plan.known_encounters.update(plan.created_encounters)
        rep.resources_written = len(plan.items) + len(plan.updates)
        if self.dry_run:
            rep.resources_written = 0
        return plan

    def _code(self, text: str, profile: Profile) -> list[dict]:
        if self.coder is None:
            return []
        system = next((fm.code_system for fm in profile.columns.values() if fm.key == "diagnosis"), None)
        system = system or "https://xinglin.dev/CodeSystem/icd10-cn"
        out = []
        for hit in self.coder(text) or []:
            code = hit.get("code") if isinstance(hit, dict) else getattr(hit, "code", None)
            name = hit.get("name") if isinstance(hit, dict) else getattr(hit, "name", None)
            if code:
                out.append({"system": system, "code": str(code), **({"display": str(name)} if name else {})})
        return out


def default_coder() -> DiagnosisCoder | None:
    """The diagnosis coding engine's public API when a code set is loaded; None leaves diagnoses as text."""
    try:
        from xinglin.ingest import coding
    except ImportError:
        return None
    factory = getattr(coding, "default_coder", None)
    if factory is None:
        return None
    try:
        coder = factory()
    except Exception:
        return None
    if coder is None or not hasattr(coder, "code"):
        return None
    return coder.code


def ingest(
    store: Store,
    tenant_code: str,
    files: Iterable[str | Path],
    *,
    profile: Profile | None = None,
    dry_run: bool = False,
    source_name: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    coder: DiagnosisCoder | None = None,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    writers: int | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingests files into a tenant; returns the report (rows_read = stored + matched + rejected).

    ``writers``: processes that write the chunks (see :mod:`xinglin.ingest.writers`) while this one plans the
    next; 0 writes here. By default two on PostgreSQL for files of several chunks, none on SQLite (where every
    unit of work takes the one write lock, so planning and writing could not overlap).
    ``workers``: processes that clean the rows of a big plain CSV (see :func:`xinglin.ingest.clean.clean_source`);
    by default none (the ``ingest_workers`` setting or the argument asks for them).
    """
    started = time.perf_counter()
    report = IngestReport(dry_run=dry_run)
    coder = coder if coder is not None else default_coder()
    run = _Run(store, tenant_code, dry_run=dry_run, coder=coder, offset=(profile.utc_offset if profile else "+08:00"))
    # open and check every file first: nothing is written when one of them cannot be read
    opened: list[tuple[Source, Profile, str]] = []
    for f in files:
        path = Path(f)
        src = open_source(
            path,
            format=profile.format if profile else None,
            encoding=encoding or (profile.encoding if profile else None),
            delimiter=profile.delimiter if profile else None,
        )
        prof = profile or infer_profile(src.headers, format=src.format)
        if prof.format is None:
            prof = prof.model_copy(update={"format": src.format})
        prof.check_columns(src.headers, path.name)
        source = source_name or prof.source or path.stem
        opened.append((src, prof, source))
    total = sum(src.rows_total for src, _, _ in opened)
    if on_total:
        on_total(total)
    processes = writer_processes(store, writers, total, chunk_rows, dry_run)
    if processes:
        run.start_writers(processes)
    if workers is None and store.settings.ingest_workers is None:
        # cleaning is a few per cent of a row's cost end to end: cleaning processes would cost the writers (or
        # the matching and writing here) more CPU than they take off this process
        workers = 1
    try:
        _stream(run, report, opened, chunk_rows, progress, workers)
        run.finish()
    finally:
        run.close_writers()
    report.seconds = time.perf_counter() - started
    report.check()
    return report


def writer_processes(store: Store, writers: int | None, rows: int, chunk_rows: int, dry_run: bool) -> int:
    """How many writer processes ``ingest`` starts (0: it writes itself); see :func:`ingest`."""
    url = store.engine.url
    if dry_run or (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")):
        return 0
    if writers is None:
        if store.settings.ingest_writers is not None:
            writers = store.settings.ingest_writers
        elif url.get_backend_name() == "postgresql" and rows >= 4 * chunk_rows:
            writers = 2
        else:
            writers = 0
    if url.get_backend_name() != "postgresql":
        # SQLite writers take turns for the whole unit of work: a second one would wait for the lock that the
        # first holds while it waits for its turn to commit
        writers = min(writers, 1)
    return max(0, writers)


def _stream(
    run: _Run,
    report: IngestReport,
    opened: list[tuple[Source, Profile, str]],
    chunk_rows: int,
    progress: Callable[[int], None] | None,
    workers: int | None,
) -> None:
    def done(chunk_report: IngestReport, count: int) -> None:
        report.merge(chunk_report)
        if progress:
            progress(count)

    for src, prof, source in opened:
        file = src.path.name
        report.files.append(file)
        if source not in report.sources:
            report.sources.append(source)
        report.columns.update({c: fm.element for c, fm in prof.columns.items()})
        system = source_system(source)
        chunk_report = IngestReport()
        cleaner = RowCleaner(prof, file, source, chunk_report)
        pending: list[CleanRow | SourceRow] = []
        block_rows = max(chunk_rows, BLOCK_ROWS // chunk_rows * chunk_rows)
        blocks = clean_source(src, prof, file, source, report, block_rows, workers=workers)
        for entries in itertools.chain(blocks, [None]):  # (None: the end, write what is left)
            if entries is not None:
                pending.extend(entries)
            start = 0
            while len(pending) - start >= chunk_rows or (entries is None and start < len(pending)):
                batch = pending[start : start + chunk_rows]
                start += len(batch)
                clean: list[CleanRow] = []
                for entry in batch:
                    report.rows_read += 1
                    if entry.__class__ is CleanRow:
                        clean.append(entry)  # type: ignore[arg-type]
                        continue
                    row: SourceRow = entry  # type: ignore[assignment]
                    try:  # a row with an invalid value or a failed cross-check: the row cleaner says why
                        clean.append(cleaner.clean(row))
                    except RowRejected as exc:
                        chunk_report.reject(file, row.number, exc.column, exc.reason, row.segment, exc.zh, exc.en)
                if run.writers is not None:
                    run.submit(clean, prof, system, chunk_report, done, len(batch))
                else:
                    run.chunk(clean, prof, system, chunk_report)
                    done(chunk_report, len(batch))
                chunk_report = IngestReport()
                cleaner.report = chunk_report
            del pending[:start]
